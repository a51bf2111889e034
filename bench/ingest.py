"""Ingest throughput and memory on the local stack.

    .venv/bin/python -m bench.ingest [--n 1000] [--concurrency 32] [--big-gib 1]

Starts its own stack on free ports and measures:
1. throughput: N generated 640x480 JPEGs and their YOLO labels (2N objects) dropped
   at once from `concurrency` threads; the clock runs from the first upload until
   GET /datasets/<ds> reports every image, label and box indexed;
2. the ceiling: raw Firestore emulator writes (2N single-document sets from the
   same number of threads), and ingest's rate as a share of it;
3. memory: the ingest server's peak RSS while it hashes one --big-gib GiB image,
   and that the sha256 it records is the right one.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from infra.local import sample, stack as local_stack
from infra.local.client import ApiClient, upload_all, wait_for

DATASET = "bench"
BIG_DATASET = "bench-big"
POLL_SECONDS = 0.2
PROGRESS_SECONDS = 2.0
MIB = 1024 * 1024


def main() -> None:
    args = parse_args()
    stack = local_stack.Stack(state_dir=Path(tempfile.mkdtemp(prefix="yolodrop-bench-")),
                              ports=local_stack.free_ports())
    print(f"starting the local stack (logs in {stack.state_dir}) ...", flush=True)
    local_stack.start(stack)
    try:
        os.environ.update(stack.env())  # before any client is created: they read it
        api = ApiClient(stack.env()["API_URL"], stack.token)
        seconds, uploads = measure_ingest(api, args.n, args.concurrency)
        raw_per_s = measure_raw_firestore_writes(2 * args.n, args.concurrency)
        memory = measure_big_object_memory(api, stack.pids["ingest"], args.big_gib)
    finally:
        local_stack.stop(stack)
    n, events_per_s, images_per_s = args.n, 2 * args.n / seconds, args.n / seconds
    print("\n".join([
        "=" * 78,
        f"ingest: {n} images ({2 * n} events) in {seconds:.1f} s -> {images_per_s:.0f} images/s, "
        f"{events_per_s:.0f} events/s (the uploads alone took {uploads:.1f} s)",
        f"raw Firestore emulator writes ({args.concurrency} threads): {raw_per_s:.0f} writes/s",
        f"ratio: ingest events/s / raw writes/s = {100 * events_per_s / raw_per_s:.0f}%; "
        f"images/s / (raw writes/s / 2) = {100 * images_per_s / (raw_per_s / 2):.0f}%",
        memory,
        "=" * 78]))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="images (each with a label)")
    parser.add_argument("--concurrency", type=int, default=32, help="upload and raw-write threads")
    parser.add_argument("--big-gib", type=float, default=1.0, help="size of the big image, GiB")
    return parser.parse_args()


# ---- 1. ingest throughput ---------------------------------------------------

def generate_dataset(n: int) -> tuple[dict[str, bytes], int]:
    """N distinct image/label pairs as {object name: bytes}, and their total boxes."""
    files, boxes = {}, 0
    for i in range(n):
        image, label = sample.synthetic_image(seed=10_000 + i)
        files[f"datasets/{DATASET}/images/train/img_{i:06d}.jpg"] = image
        files[f"datasets/{DATASET}/labels/train/img_{i:06d}.txt"] = label.encode()
        boxes += len(label.splitlines())
    return files, boxes


def measure_ingest(api: ApiClient, n: int, concurrency: int) -> tuple[float, float]:
    """Seconds from the first upload until everything is indexed, and seconds of uploading."""
    print(f"generating {n} images and labels ...", flush=True)
    files, expected_boxes = generate_dataset(n)
    from common import storage
    bucket = storage.bucket()
    # data.yaml first, indexed before the drop: arriving midway it would re-derive
    # every label indexed so far, and the timing would depend on when it came.
    bucket.blob(f"datasets/{DATASET}/data.yaml").upload_from_string(sample.data_yaml())
    wait_for(lambda: dataset_view(api, DATASET), lambda view: view and view["classes_known"],
             60, "data.yaml indexed")

    print(f"uploading {2 * n} objects from {concurrency} threads ...", flush=True)
    started = time.monotonic()
    upload_all(bucket, files, workers=concurrency)
    uploads = time.monotonic() - started
    print(f"  uploads done in {uploads:.1f} s; waiting for the index ...", flush=True)
    expected = {"images": n, "labeled": n, "boxes": expected_boxes}
    wait_for(progress_probe(lambda: dataset_view(api, DATASET)["stats"], started),
             lambda stats: all(stats[k] == v for k, v in expected.items()),
             timeout=max(300, n / 2), what=f"{n} images indexed", interval=POLL_SECONDS)
    seconds = time.monotonic() - started
    print(f"  {seconds:6.1f} s  all indexed: {expected}", flush=True)
    return seconds, uploads


def dataset_view(api: ApiClient, dataset: str) -> dict | None:
    """GET /datasets/<dataset>, or None while it does not exist yet."""
    response = api.session.get(f"{api.url}/datasets/{dataset}", timeout=30)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def progress_probe(probe, started: float):
    """Wrap `probe` so that it prints what it sees every PROGRESS_SECONDS."""
    last_print = [0.0]

    def probe_and_report():
        result = probe()
        now = time.monotonic()
        if now - last_print[0] >= PROGRESS_SECONDS:
            last_print[0] = now
            shown = {k: result[k] for k in ("images", "labeled", "boxes", "issues")}
            print(f"  {now - started:6.1f} s  {shown}", flush=True)
        return result
    return probe_and_report


# ---- 2. the ceiling: raw Firestore writes -----------------------------------
# Raw single-document writes bound ingest from above: every event costs at least
# one transactional Firestore write (begin, reads of the entry and the dataset,
# commit; an image also reads and writes its content group), plus a guard read
# before any download; an image event also downloads the object, hashes and
# decodes it, and uploads a thumbnail. So ingest events/s can only be a fraction
# of raw writes/s, and an image (two events) of half of it.

def index_entry_like(i: int) -> dict:
    return {"key": f"train/img_{i:06d}", "split": "train", "status": "labeled", "sha256": uuid.uuid4().hex * 2,
            "n_boxes": 2, "f_image": 1, "f_labeled": 1, "issue_count": 0, "has_issues": False,
            "class_ids": [0, 2]}


def measure_raw_firestore_writes(count: int, concurrency: int) -> float:
    from common import index
    docs = index.client().collection("bench_raw").document(uuid.uuid4().hex).collection("docs")
    print(f"raw Firestore baseline: {count} single-document writes from {concurrency} threads ...", flush=True)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda i: docs.document(f"d{i:06d}").set(index_entry_like(i)), range(count)))
    seconds = time.monotonic() - started
    print(f"  {count} writes in {seconds:.1f} s", flush=True)
    return count / seconds


# ---- 3. memory while hashing a big object -----------------------------------

def write_big_file(path: Path, size: int) -> str:
    """A real small JPEG followed by random bytes up to `size`; returns its sha256."""
    digest = hashlib.sha256()
    head = sample.synthetic_image(seed=1)[0]
    with path.open("wb") as out:
        written = 0
        while written < size:
            chunk = head if written == 0 else os.urandom(min(8 * MIB, size - written))
            chunk = chunk[:size - written]
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return digest.hexdigest()


def process_group_pids(pgid: int) -> list[int]:
    """Every live process whose process group is `pgid` (/proc/<pid>/stat field 5)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) == pgid:  # after "(comm)": state, ppid, pgrp
            pids.append(int(stat.parent.name))
    return pids


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure_big_object_memory(api: ApiClient, ingest_pgid: int, gib: float) -> str:
    """Upload one big image; return the summary line on the ingest server's peak RSS."""
    from common import storage
    size = int(gib * 1024 * MIB)
    name = f"datasets/{BIG_DATASET}/images/train/huge.jpg"
    with tempfile.TemporaryDirectory() as tmp:  # on disk, so the bench itself stays small
        path = Path(tmp) / "huge.jpg"
        print(f"writing a {size / MIB:.0f} MiB image to disk ...", flush=True)
        sha256 = write_big_file(path, size)
        idle = {pid: memory_kib(pid, "VmRSS") for pid in process_group_pids(ingest_pgid)}
        for pid in idle:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
        print(f"uploading it as {name}; ingest processes' RSS (KiB): {idle} ...", flush=True)
        started = time.monotonic()
        # Resumable upload in 64 MiB chunks: bounded memory here, and few chunks, since
        # fake-gcs-server copies everything received so far on every chunk.
        blob = storage.bucket().blob(name, chunk_size=64 * MIB)
        blob.upload_from_filename(str(path), content_type="image/jpeg")
    uploaded = time.monotonic()
    print(f"  uploaded in {uploaded - started:.1f} s; waiting for the index ...", flush=True)
    no_stats = {"images": 0, "labeled": 0, "boxes": 0, "issues": 0}
    wait_for(progress_probe(lambda: (dataset_view(api, BIG_DATASET) or {"stats": no_stats})["stats"], started),
             lambda stats: stats["images"] == 1, timeout=600, what="big image indexed", interval=POLL_SECONDS)
    print(f"  indexed {time.monotonic() - uploaded:.1f} s after the upload finished", flush=True)
    peaks = {pid: memory_kib(pid, "VmHWM") for pid in process_group_pids(ingest_pgid)}
    print(f"  peak RSS (KiB) per ingest process: {peaks}", flush=True)
    [image] = api.get(f"/datasets/{BIG_DATASET}/images")["images"]
    if image["sha256"] != sha256:
        raise AssertionError(f"the index says sha256 {image['sha256']}, the upload had {sha256}")
    print(f"  sha256 matches ({sha256[:16]}...); issues: {[i['code'] for i in image['issues']]}", flush=True)
    if set(peaks) != set(idle):
        print(f"  WARNING: the ingest processes changed during the run: {sorted(idle)} -> {sorted(peaks)}")
    top = max(peaks, key=peaks.get)
    increase = f"+{(peaks[top] - idle[top]) / 1024:.0f} MiB over idle {idle[top] / 1024:.0f} MiB" \
        if top in idle else "a process started during the run"
    return (f"ingest server peak RSS while hashing a {size / 1024 / MIB:.2f} GiB object ({size} bytes): "
            f"{peaks[top] / 1024:.0f} MiB ({increase})")


if __name__ == "__main__":
    main()
