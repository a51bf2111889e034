"""`yolodrop push` of N generated images (with labels) against a raw parallel
upload of the same files with the storage client, in one run on a stack of its own.

    python -m bench.push [--n 2000] [--workers 16]

Both sides upload the same 2N+1 files with the same number of threads into two
fresh datasets; `push` times the command's upload phase (--no-wait: md5s,
the upload sessions from the API, the PUTs), then a second push of the same
folder (everything already there)."""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from click.testing import CliRunner

from infra.local import stack as local_stack
from yolodrop_cli.commands import cli
from infra.local.client import upload_all
from infra.local.sample import generated_dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    running = local_stack.Stack(state_dir=Path(tempfile.mkdtemp(prefix="yolodrop-bench-push-")),
                                ports=local_stack.free_ports())
    local_stack.start(running)
    try:
        measure(running, args.n, args.workers)
    finally:
        local_stack.stop(running)


def measure(running, n: int, workers: int) -> None:
    os.environ.update(running.env())
    from common.cloud import storage
    files = generated_dataset(n, 0, size=(320, 240))
    folder = Path(tempfile.mkdtemp(prefix="push-"))
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    size = sum(len(data) for data in files.values())
    raw_dataset, push_dataset = f"raw-{uuid.uuid4().hex[:6]}", f"push-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    upload_all(storage.bucket(), {f"datasets/{raw_dataset}/{name}": data for name, data in files.items()}, workers)
    raw = time.perf_counter() - started
    pushed, again = (timed_push(running, folder, push_dataset, workers) for _ in range(2))
    print(f"{len(files)} files ({n} images 320x240 + labels + data.yaml), {size / 2**20:.1f} MiB, {workers} threads")
    print(f"raw parallel upload with the storage client: {raw:.2f} s -> {len(files) / raw:.0f} files/s")
    print(f"yolodrop push (md5, upload sessions from the API, PUTs): {pushed:.2f} s -> {len(files) / pushed:.0f} "
          f"files/s")
    print(f"yolodrop push / raw upload time = {pushed / raw:.2f}x")
    print(f"second push of the same folder (all already there, nothing sent): {again:.2f} s")


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
