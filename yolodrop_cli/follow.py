"""Following what runs on the other side: a training job epoch by epoch, an
export to its zip, a version until it is frozen; and the export's download."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import click
from rich.progress import Progress

from common.domain.jobs import state_of
from yolodrop_cli import show
from yolodrop_cli.api import Api, poll

POLL_SECONDS = 1.0
ENDED = ("completed", "failed", "cancelled")
NO_LIMIT = float("inf")


class Display:
    """A bar of epochs and a line of metrics per epoch; with --json, one JSON object per event instead."""

    def __init__(self, bars: Progress, as_json: bool, say: Callable[[str], None]):
        self.bars, self.as_json, self.say = bars, as_json, say
        self.task = None

    def status(self, job: dict) -> None:
        where = f" on {job['device']}" if job.get("device") else ""
        self._event({"event": "status", "status": job["status"], "device": job.get("device")},
                    f"{job['status']}{where}")

    def epoch(self, row: dict, job: dict) -> None:
        if self.task is None:
            self.task = self.bars.add_task("epochs", total=job.get("epochs"))
        self.bars.update(self.task, completed=row["epoch"])
        self._event({"event": "epoch", **row}, show.epoch_line(row, job.get("epochs")))

    def _event(self, data: dict, line: str) -> None:
        if self.as_json:
            click.echo(json.dumps(data, default=str))
        else:
            self.say(line)


class Follower:
    def __init__(self, api: Api, job_id: str, display: Display):
        self.api, self.job_id, self.display = api, job_id, display
        self.shown: set[int] = set()
        self.last_status = None

    def probe(self) -> dict:
        job = self.api.get(f"/training/{self.job_id}")
        if job["status"] != self.last_status:
            self.last_status = job["status"]
            self.display.status(job)
        for row in sorted(job.get("history") or [], key=lambda r: r["epoch"]):
            if row["epoch"] not in self.shown:
                self.shown.add(row["epoch"])
                self.display.epoch(row, job)
        return job

    def run(self, confirm_cancel: Callable[[], bool]) -> dict:
        """Follow to the end. Ctrl-C asks `confirm_cancel`: True goes on following, False stops here."""
        while True:
            try:
                return poll(self.probe, lambda job: job["status"] in ENDED, NO_LIMIT, f"job {self.job_id}",
                            POLL_SECONDS)
            except KeyboardInterrupt:
                if not confirm_cancel():
                    raise click.exceptions.Exit(1) from None


def export_done(api: Api, export_id: str, bars: Progress, timeout: float) -> dict:
    return _counted(api, f"/exports/{export_id}", ("files_total", "files_done"), bars, timeout)


def autolabel_done(api: Api, job_id: str, bars: Progress, timeout: float) -> dict:
    return _counted(api, f"/autolabel/{job_id}", ("images_total", "images_done"), bars, timeout)


def import_done(api: Api, import_id: str, bars: Progress, timeout: float) -> dict:
    return _counted(api, f"/imports/{import_id}", ("members_total", "members_done"), bars, timeout)


def _counted(api: Api, path: str, counts: tuple[str, str], bars: Progress, timeout: float) -> dict:
    """Poll a job with a total and a count done, as a bar, until it completes or fails."""
    task = bars.add_task(path.rsplit("/", 1)[1], total=None)

    def probe() -> dict:
        view = api.get(path)
        bars.update(task, total=view.get(counts[0]), completed=view.get(counts[1]) or 0)
        return view

    return poll(probe, lambda view: view["status"] in ENDED, timeout, path)


def version_frozen(api: Api, dataset: str, version: str, timeout: float) -> dict:
    """The version once completed or failed (an older deployment answers `ready` for completed: read alike)."""
    return poll(lambda: api.get(f"/datasets/{dataset}/versions/{version}"),
                lambda view: state_of(view)[0] in ENDED, timeout, f"version {version} of {dataset}")


def download(uri: str, output: Path, bars: Progress) -> int:
    """Download a gs:// object with the storage client (your credentials, or the local stack's emulator)."""
    from google.cloud import storage  # only here: the rest of the command line needs no Google client
    bucket_name, _, name = uri.removeprefix("gs://").partition("/")
    blob = _storage_client(storage).bucket(bucket_name).get_blob(name)
    if blob is None:
        raise click.ClickException(f"{uri} is gone")
    task = bars.add_task("download", total=blob.size)
    partial = output.with_name(output.name + ".part")
    with partial.open("wb") as raw:
        blob.download_to_file(_CountingWriter(raw, lambda n: bars.advance(task, n)))
    partial.replace(output)
    return output.stat().st_size


def _storage_client(storage):
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials
        return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "local"),
                              credentials=AnonymousCredentials())
    return storage.Client()


class _CountingWriter:
    def __init__(self, raw, counted: Callable[[int], None]):
        self.raw, self.counted = raw, counted

    def write(self, data: bytes) -> int:
        self.counted(len(data))
        return self.raw.write(data)

    def __getattr__(self, name):
        return getattr(self.raw, name)
