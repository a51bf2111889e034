"""`yolodrop push` of N generated images (with labels) against a raw parallel
upload of the same files with the storage client, in one run on a stack of its own.

    python -m bench.push [--n 2000] [--workers 16] [--runs 3] [--gcs-backend filesystem|memory]

Both sides upload the same 2N+1 files with the same number of threads into
fresh datasets; `push` times the command's upload phase (--no-wait: md5s, the
upload sessions from the API, the PUTs), then a second push of the same folder
(everything already there). Each run measures both sides on a quiet stack
(the ingest function idle, no dataset job pending, so neither pays for the
other's indexing) and alternates which goes first. fake-gcs-server's
filesystem backend by default: the memory backend finds an object by a linear
scan of its bucket, so whichever side runs second pays for the first's objects
on every call (--gcs-backend memory measures that too)."""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from click.testing import CliRunner

from infra.local import stack as local_stack
from infra.local.client import upload_all
from infra.local.sample import generated_dataset
from yolodrop_cli.api import Api, ApiFailure
from yolodrop_cli.commands import cli

QUIET_POLLS = 4          # ingest counters unchanged this many polls in a row: the stack is quiet
POLL_SECONDS = 0.5
SETTLE_SECONDS = 600


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gcs-backend", choices=("filesystem", "memory"), default="filesystem",
                        help="fake-gcs-server's backend (memory: every call scans the bucket)")
    args = parser.parse_args()
    running = local_stack.Stack(state_dir=Path(tempfile.mkdtemp(prefix="yolodrop-bench-push-")),
                                ports=local_stack.free_ports(), gcs_backend=args.gcs_backend)
    local_stack.start(running)
    try:
        measure(running, args.n, args.workers, args.runs, args.gcs_backend)
    finally:
        local_stack.discard(running)


def measure(running, n: int, workers: int, runs: int, backend: str) -> None:
    os.environ.update(running.env())
    files = generated_dataset(n, 0, size=(320, 240))
    folder = Path(tempfile.mkdtemp(prefix="push-"))
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    size = sum(len(data) for data in files.values())
    print(f"{len(files)} files ({n} images 320x240 + labels + data.yaml), {size / 2**20:.1f} MiB, {workers} threads, "
          f"fake-gcs-server's {backend} backend", flush=True)
    ratios = []
    for run in range(runs):
        raw, pushed, again = one_run(running, files, folder, workers, push_first=run % 2 == 1)
        ratios.append(pushed / raw)
        print(f"run {run + 1} ({'push' if run % 2 else 'raw'} first): raw upload {raw:.2f} s "
              f"({len(files) / raw:.0f} files/s), yolodrop push {pushed:.2f} s ({len(files) / pushed:.0f} files/s), "
              f"push / raw = {pushed / raw:.2f}x; second push (nothing sent) {again:.2f} s", flush=True)
    print(f"yolodrop push / raw upload time: {', '.join(f'{r:.2f}x' for r in ratios)}; "
          f"median {statistics.median(ratios):.2f}x")


def one_run(running, files: dict[str, bytes], folder: Path, workers: int, push_first: bool):
    """(raw upload seconds, push seconds, second push seconds), each on a quiet stack."""
    from common.cloud import storage
    raw_dataset, push_dataset = f"raw-{uuid.uuid4().hex[:6]}", f"push-{uuid.uuid4().hex[:6]}"

    def raw() -> float:
        settle(running, [])
        started = time.perf_counter()
        upload_all(storage.bucket(), {f"datasets/{raw_dataset}/{name}": data for name, data in files.items()},
                   workers)
        return time.perf_counter() - started

    def push() -> float:
        settle(running, [raw_dataset, push_dataset])
        return timed_push(running, folder, push_dataset, workers)

    if push_first:
        pushed, uploaded = push(), raw()
    else:
        uploaded, pushed = raw(), push()
    return uploaded, pushed, push()


def settle(running, datasets: list[str]) -> None:
    """Poll until the ingest function has handled every event for QUIET_POLLS polls in a row and these datasets
    (those there) have no job pending."""
    api = Api(running.env()["API_URL"], running.token)
    deadline, last, quiet = time.monotonic() + SETTLE_SECONDS, None, 0
    while quiet < QUIET_POLLS:
        status = local_stack.ingest_status(running)
        counters = (status["events"], bool(status["handling"]), pending_jobs(api, datasets))
        quiet = quiet + 1 if counters == last and not counters[1] and not counters[2] else 0
        last = counters
        if time.monotonic() > deadline:
            raise TimeoutError(f"the stack was not quiet after {SETTLE_SECONDS} s: {counters}")
        time.sleep(POLL_SECONDS)  # the polling interval, not a wait for an outcome


def pending_jobs(api: Api, datasets: list[str]) -> int:
    pending = 0
    for dataset in datasets:
        try:
            pending += api.get(f"/datasets/{dataset}").get("pending_jobs", 0)
        except ApiFailure as failure:
            if failure.status != 404:  # 404: not made yet
                raise
    return pending


def timed_push(running, folder: Path, dataset: str, workers: int) -> float:
    env = {"YOLODROP_API_URL": running.env()["API_URL"], "YOLODROP_API_KEY": running.token}
    started = time.perf_counter()
    result = CliRunner().invoke(cli,
                                ["push", str(folder), dataset, "--no-wait", "--json", "--workers", str(workers)],
                                env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
