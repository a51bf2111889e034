"""Following what runs on the other side: any job by its ref (a training job epoch by epoch), an
export to its zip, a version until it is frozen; and the export's download."""
from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Callable

import click
from rich.progress import Progress, TaskID

from common.domain.jobs import state_of
from yolodrop_cli import show
from yolodrop_cli.api import Api, poll

DOWNLOAD_TIMEOUT = 60  # seconds without a byte before a download gives up
DOWNLOAD_CHUNK = 1024 * 1024

POLL_SECONDS = 1.0
ENDED = ("completed", "failed", "cancelled")
TRAINING = "training"
NO_LIMIT = float("inf")


def job_ref(ref: str) -> str:
    """A job's "kind/id"; a bare id is a training job's (what `yolodrop job ID` has always meant)."""
    return ref if "/" in ref else f"{TRAINING}/{ref}"


def cancel_path(ref: str) -> str:
    """Where a job of any kind is cancelled: the one job route (a training job stops after its current epoch)."""
    return f"/jobs/{job_ref(ref)}/cancel"


class Display:
    """One bar of the job's progress in its unit and a line each time its status changes (with a training job's
    device, and a line of metrics per epoch); with --json, one JSON object per event instead."""

    def __init__(self, bars: Progress, as_json: bool, say: Callable[[str], None]):
        self.bars, self.as_json, self.say = bars, as_json, say
        self.task: TaskID | None = None

    def status(self, job: dict, device: str | None = None) -> None:
        phase = f" ({job['phase']})" if job.get("phase") else ""
        where = f" on {device}" if device else ""
        self._event({"event": "status", "status": job["status"], "phase": job.get("phase"), "device": device},
                    f"{job['status']}{phase}{where}")

    def progress(self, job: dict, announce: bool) -> None:
        """Move the bar; `announce`: also say it (--json: a progress event)."""
        progress = job["progress"]
        if self.task is None:
            self.task = self.bars.add_task(progress["unit"], total=progress["total"])
        self.bars.update(self.task, total=progress["total"], completed=progress["done"])
        if announce and self.as_json:
            click.echo(json.dumps({"event": "progress", **progress}))

    def epoch(self, row: dict, epochs: int | None) -> None:
        self._event({"event": "epoch", **row}, show.epoch_line(row, epochs))

    def _event(self, data: dict, line: str) -> None:
        if self.as_json:
            click.echo(json.dumps(data, default=str))
        else:
            self.say(line)


class Follower:
    """Follows any job by its ref through GET /jobs/{kind}/{id}; a training job's epochs and device come from its
    own view, read only when it moved."""

    def __init__(self, api: Api, ref: str, display: Display):
        self.api, self.ref, self.display = api, job_ref(ref), display
        self.training = self.ref.startswith(f"{TRAINING}/")
        self.shown: set[int] = set()
        self.last_status: str | tuple[str, str | None] | None = None  # a training job's status, another's and phase
        self.last_done: int | None = None
        self.last: dict | None = None

    def probe(self) -> dict:
        job = self.api.get(f"/jobs/{self.ref}")
        # a training job's phase is its epoch, which the epoch lines say
        status = job["status"] if self.training else (job["status"], job.get("phase"))
        moved = job["progress"]["done"] != self.last_done
        details = self.api.get(job["links"]["self"]) if self.training and (moved or status != self.last_status) \
            else {}
        if status != self.last_status:
            self.display.status(job, details.get("device"))
        self.display.progress(job, announce=moved and not self.training)
        for row in sorted(details.get("history") or [], key=lambda r: r["epoch"]):
            if row["epoch"] not in self.shown:
                self.shown.add(row["epoch"])
                self.display.epoch(row, details.get("epochs"))
        self.last_status, self.last_done, self.last = status, job["progress"]["done"], job
        return job

    def run(self, confirm_cancel: Callable[[], bool]) -> dict:
        """Follow to the end. Ctrl-C asks `confirm_cancel`: True goes on following, False stops here."""
        while True:
            try:
                return poll(self.probe, lambda job: job["status"] in ENDED, NO_LIMIT, f"job {self.ref}",
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


def download(link: dict, output: Path, bars: Progress) -> int:
    """Save the bytes of a download URL the API gave ({url, filename}) to `output` through a `.part` file:
    straight from the bucket, with no function's timeout in the way. Its size."""
    import requests  # the URL is signed: it gets no API key and no retry of a half-read body
    with requests.get(link["url"], stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
        if response.status_code != 200:
            raise click.ClickException(f"the download of {link['filename']} answered {response.status_code}: "
                                       "run the command again for a fresh URL")
        size = int(response.headers.get("Content-Length") or 0) or None
        task = bars.add_task("download", total=size)
        partial = output.with_name(output.name + ".part")
        with partial.open("wb") as raw:
            for chunk in response.iter_content(DOWNLOAD_CHUNK):
                raw.write(chunk)
                bars.advance(task, len(chunk))
    partial.replace(output)
    return output.stat().st_size


