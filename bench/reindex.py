"""A reindex timed against the ingest of the same files, in one run on the local stack.

    .venv/bin/python -m bench.reindex [--objects 20000] [--size 320x240] [--gcs-backend filesystem]

Starts its own stack and drops N/2 generated JPEGs and their YOLO labels (N objects) with the ingest push
stopped, then measures, each from its start until GET /datasets/<ds> reports every image, label and box:
1. ingest: the push started on the backlog of their N real notifications (bench.ingest's "capacity");
2. reindex of a lost index: the dataset's index deleted from the Firestore emulator (entries, files, contents and
   the dataset's document), then POST /datasets/<ds>/reindex, until the job completed and the index is whole;
3. reindex of an intact index: the same request again, nothing to change (each object's guard read only).
Prints objects/s of each, and the reindex's against ingest's.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from common.cloud import dataset_index, db, storage
from common.domain import layout
from infra.local import sample
from infra.local import stack as local_stack
from infra.local.client import ApiClient, upload_all, wait_for

DATASET = "bench-reindex"
POLL_SECONDS = 0.5


def main() -> None:
    args = parse_args()
    stack = local_stack.Stack(state_dir=Path(tempfile.mkdtemp(prefix="yolodrop-bench-reindex-")),
                              ports=local_stack.free_ports(), gcs_backend=args.gcs_backend)
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]} on {os.cpu_count()} cores; "
          f"starting the local stack (fake-gcs-server's {args.gcs_backend} backend; logs in {stack.state_dir})",
          flush=True)
    local_stack.start(stack)
    try:
        os.environ.update(stack.env())  # before any client is made: they read it
        run(ApiClient(stack.env()["API_URL"], stack.token), stack, args.objects // 2, args.size)
    finally:
        local_stack.discard(stack)
        shutil.rmtree(stack.state_dir / "gcs", ignore_errors=True)  # the filesystem backend's objects


def run(api: ApiClient, stack: local_stack.Stack, pairs: int, size: tuple[int, int]) -> None:
    files, expected = generated(pairs, size)
    objects = len(files) + 1  # and data.yaml
    bucket = storage.bucket()
    bucket.blob(layout.dataset_object(DATASET, "data.yaml")).upload_from_string(sample.data_yaml())
    wait_for(lambda: api.get_or_none(f"/datasets/{DATASET}"), lambda view: view and view["classes_known"], 60,
             "data.yaml indexed")
    local_stack.stop_part(stack, "ingest_pump")
    print(f"uploading {len(files)} objects with the ingest push stopped ...", flush=True)
    upload_all(bucket, files, workers=32)
    started = time.monotonic()
    local_stack.start_ingest_pump(stack)
    ingest = indexed(api, expected, started, "ingest")

    db.client().recursive_delete(dataset_index.dataset_ref(DATASET))
    print("index deleted; reindexing ...", flush=True)
    lost = reindexed(api, expected)
    print("reindexing again, the index whole ...", flush=True)
    intact = reindexed(api, expected)
    print(f"\n{objects:,} objects ({pairs:,} {size[0]}x{size[1]} JPEGs and their labels, data.yaml), "
          f"{os.cpu_count()} cores shared by the whole stack:")
    for name, seconds in (("ingest of the backlog", ingest), ("reindex of a lost index", lost),
                          ("reindex of an intact index", intact)):
        print(f"  {name:28} {seconds:7.1f} s  {objects / seconds:7.0f} objects/s  {ingest / seconds:5.2f}x ingest's")


def generated(pairs: int, size: tuple[int, int]) -> tuple[dict[str, bytes], dict]:
    print(f"generating {pairs:,} images and labels ...", flush=True)
    files: dict[str, bytes] = {}
    boxes = 0
    for i in range(pairs):
        image, label = sample.synthetic_image(i, size=size)
        files[layout.dataset_object(DATASET, f"images/train/r{i:06d}.jpg")] = image
        files[layout.dataset_object(DATASET, f"labels/train/r{i:06d}.txt")] = label.encode()
        boxes += len(label.splitlines())
    return files, {"images": pairs, "labeled": pairs, "boxes": boxes}


def reindexed(api: ApiClient, expected: dict) -> float:
    started = time.monotonic()
    answer = api.session.post(f"{api.url}/datasets/{DATASET}/reindex", json={}, timeout=60)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    wait_for(lambda: api.get(f"/jobs/{job['ref']}"), lambda view: view["status"] in ("completed", "failed"),
             3600, f"reindex {job['ref']}", interval=POLL_SECONDS)
    view = api.get(f"/jobs/{job['ref']}")
    assert view["status"] == "completed", view
    return indexed(api, expected, started, f"reindex {job['ref']}")


def indexed(api: ApiClient, expected: dict, started: float, what: str) -> float:
    """Seconds since `started` when the dataset's stats are `expected` and no job of it is left."""
    wait_for(lambda: api.get_or_none(f"/datasets/{DATASET}"),
             lambda view: view is not None and view.get("pending_jobs", 0) == 0
             and all(view["stats"].get(k) == v for k, v in expected.items()),
             3600, f"{what}: {expected}", interval=POLL_SECONDS)
    seconds = time.monotonic() - started
    print(f"  {what}: {seconds:.1f} s", flush=True)
    return seconds


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=20_000, help="images and labels dropped (half each)")
    parser.add_argument("--size", type=lambda text: tuple(int(v) for v in text.split("x")), default=(320, 240),
                        help="the images' WIDTHxHEIGHT")
    parser.add_argument("--gcs-backend", choices=("filesystem", "memory"), default="filesystem",
                        help="fake-gcs-server's: its memory backend scans the bucket for each object")
    return parser.parse_args()


if __name__ == "__main__":
    main()
