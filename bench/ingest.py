"""Ingest throughput, CPU and memory on the local stack.

    .venv/bin/python -m bench.ingest [--n 1000] [--concurrency 32] [--big-gib 1] [--profile RAW]

Starts its own stack on free ports and measures, each time with N generated
640x480 JPEGs and their YOLO labels (2N objects, 2N events) and a clock that
runs until GET /datasets/<ds> reports every image, label and box indexed:
1a. end to end: the 2N objects uploaded at once from `concurrency` threads, the
    clock starting at the first upload; fake-gcs-server publishes the notifications
    and the push pump pushes them to the ingest function with the function's
    concurrency in flight, which acts on those that arrive together as one group
    (up to INGEST_BATCH_SIZE) while the uploads go on; its CPU over the run (/proc);
1b. ingest capacity: another dataset uploaded while the push is stopped, so its
    2N real notifications wait in the subscription, then a fresh ingest instance
    pushed them: the clock runs from its first request to its last group, its CPU
    over the same span (both from its status page), per image+label pair, against
    the floor: identify_image
    and parse_label of the same files in this process; floor / ingest is the
    efficiency. --profile records py-spy meanwhile and prints it by component
    (bench/profile.py);
2. the ceiling: raw Firestore emulator writes (2N single-document sets from the
   same number of threads), and ingest capacity (1b) as a share of it;
3. memory: the ingest function's peak RSS while it hashes one --big-gib GiB image,
   and that the sha256 it records is the right one.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common.domain import layout
from infra.local import sample, stack as local_stack
from infra.local.client import ApiClient, upload_all, wait_for

DATASET = "bench"
DIRECT_DATASET = "bench-direct"
BIG_DATASET = "bench-big"
POLL_SECONDS = 0.2
PROGRESS_SECONDS = 2.0
MIB = 1024 * 1024


def main() -> None:
    args = parse_args()
    with local_stack.temporary_stack("yolodrop-bench-") as stack:
        api = ApiClient(stack.env()["API_URL"], stack.token)
        uploaded = measure_uploaded(api, stack, args.n, args.concurrency)
        backlog, backlog_files = measure_backlog(api, stack, args.n, args.concurrency, args.profile)
        raw_per_s = measure_raw_firestore_writes(2 * args.n, args.concurrency)
        memory = measure_big_object_memory(api, stack.pids["ingest"], args.big_gib)
    floor = measure_floor(backlog_files)
    n, c = args.n, args.concurrency
    print("\n".join([
        "=" * 78,
        f"ingest capacity (a backlog of {2 * n} notifications, {n} images): " + rate(n, backlog.seconds)
        + f"; {batches_line(backlog)}",
        f"ingest CPU per image+label pair (the function's process, user+system): {cpu_line(backlog, n)}",
        f"floor: identify_image + parse_label on the same {n} pairs in one process: {1000 * floor / n:.1f} ms per pair",
        f"efficiency floor / ingest = {floor / backlog.cpu:.2f}",
        f"raw Firestore emulator writes ({c} threads): {raw_per_s:.0f} writes/s",
        f"ingest vs raw Firestore ceiling: ingest events/s / raw writes/s = "
        f"{100 * 2 * n / backlog.seconds / raw_per_s:.0f}% (= images/s / (raw writes/s / 2))",
        f"end to end ({c} upload threads, pushed to ingest as they arrive): " + rate(n, uploaded.seconds)
        + f" (the uploads alone took {uploaded.feed:.1f} s: {uploaded.seconds / uploaded.feed:.2f}x); "
        + batches_line(uploaded),
        f"  ingest CPU per pair end to end: {cpu_line(uploaded, n)}; efficiency {floor / uploaded.cpu:.2f}",
        memory,
        "=" * 78]))
    if backlog.profile:
        print(backlog.profile)


def batches_line(run: Run) -> str:
    return f"{run.batches} groups of {run.events / run.batches:.0f} notifications on average"


def cpu_line(run: Run, n: int) -> str:
    return (f"{1000 * run.cpu / n:.1f} ms ({run.cpu:.1f} CPU s, {100 * run.system_cpu / run.cpu:.0f}% of it in "
            f"the kernel, over {run.seconds:.1f} s: {100 * run.cpu / run.seconds:.0f}% of one core)")


def rate(n: int, seconds: float) -> str:
    return f"{seconds:.1f} s -> {n / seconds:.0f} images/s, {2 * n / seconds:.0f} events/s"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="images (each with a label)")
    parser.add_argument("--concurrency", type=int, default=32, help="upload and raw-write threads")
    parser.add_argument("--big-gib", type=float, default=1.0, help="size of the big image, GiB")
    parser.add_argument("--profile", metavar="RAW", help="profile the ingest function with py-spy during the "
                        "capacity run, write its collapsed stacks to RAW and print them by component "
                        "(py-spy needs root; it costs CPU, so the CPU figures of that run read high)")
    return parser.parse_args()


# ---- 1. ingest throughput: end to end (1a) and ingest capacity (1b) ---------

@dataclass
class Run:
    seconds: float  # from the first upload (or the instance's first request) until everything is indexed
    feed: float     # seconds of uploading alone
    cpu: float      # CPU seconds of the ingest function meanwhile (user + system)
    system_cpu: float  # of which in the kernel
    batches: int    # the instance's groups meanwhile (one act each)
    events: int     # the notifications in them
    profile: str = ""  # the profile summary, when asked for


def generate_dataset(dataset: str, n: int, seed: int) -> tuple[dict[str, bytes], int]:
    """N distinct image/label pairs as {object name: bytes}, and their total boxes."""
    files, boxes = {}, 0
    for i in range(n):
        image, label = sample.synthetic_image(seed=seed + i)
        files[layout.dataset_object(dataset, f"images/train/img_{i:06d}.jpg")] = image
        files[layout.dataset_object(dataset, f"labels/train/img_{i:06d}.txt")] = label.encode()
        boxes += len(label.splitlines())
    return files, boxes


def prepare(api: ApiClient, dataset: str, n: int, seed: int):
    """Generate the dataset; upload its data.yaml and wait until it is indexed:
    arriving midway it would re-derive every label indexed so far, and the timing
    would depend on when it came. Returns (bucket, files, expected stats)."""
    print(f"{dataset}: generating {n} images and labels ...", flush=True)
    files, boxes = generate_dataset(dataset, n, seed)
    from common.cloud import storage
    bucket = storage.bucket()
    bucket.blob(layout.dataset_object(dataset, "data.yaml")).upload_from_string(sample.data_yaml())
    wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"), lambda view: view and view["classes_known"],
             60, "data.yaml indexed")
    return bucket, files, {"images": n, "labeled": n, "boxes": boxes}


def wait_indexed(api: ApiClient, dataset: str, expected: dict, started: float) -> float:
    """Seconds since `started` when the dataset's stats are exactly `expected`."""
    wait_for(progress_probe(lambda: api.get(f"/datasets/{dataset}")["stats"], started),
             lambda stats: all(stats[k] == v for k, v in expected.items()),
             timeout=max(300, expected["images"] / 2), what=f"{dataset} indexed", interval=POLL_SECONDS)
    seconds = time.monotonic() - started
    print(f"  {seconds:6.1f} s  all indexed: {expected}", flush=True)
    return seconds


def measure_uploaded(api: ApiClient, stack: local_stack.Stack, n: int, concurrency: int) -> Run:
    """1a: uploads, their notifications pushed to the ingest function as they arrive."""
    bucket, files, expected = prepare(api, DATASET, n, seed=10_000)
    print(f"uploading {2 * n} objects from {concurrency} threads ...", flush=True)
    pid, before = stack.pids["ingest"], local_stack.ingest_status(stack)
    cpu_before = process_group_cpu(pid)
    started = time.monotonic()
    upload_all(bucket, files, workers=concurrency)
    uploads = time.monotonic() - started
    print(f"  uploads done in {uploads:.1f} s; waiting for the index ...", flush=True)
    seconds = wait_indexed(api, DATASET, expected, started)
    user, system = cpu_seconds_between(cpu_before, process_group_cpu(pid))
    after = local_stack.ingest_status(stack)
    return Run(seconds, uploads, user + system, system, after["batches"] - before["batches"],
               after["events"] - before["events"])


def measure_backlog(api: ApiClient, stack: local_stack.Stack, n: int, concurrency: int,
                    profile_path: str | None) -> tuple[Run, dict[str, bytes]]:
    """1b: the real notifications of an upload held in the subscription, then pushed to a fresh ingest instance;
    its time and CPU from its first request to its last group, from its status page. With the files it
    ingested."""
    bucket, files, expected = prepare(api, DIRECT_DATASET, n, seed=10_000 + n)
    local_stack.stop_part(stack, "ingest_pump")
    local_stack.stop_part(stack, "ingest")
    print(f"uploading {2 * n} objects with the ingest push stopped ...", flush=True)
    started = time.monotonic()
    upload_all(bucket, files, workers=concurrency)
    uploads = time.monotonic() - started
    print("starting a fresh ingest instance and pushing the backlog to it ...", flush=True)
    local_stack.start_function(stack, "ingest")
    local_stack.start_ingest_pump(stack)
    with profiled(stack.pids["ingest"], profile_path):
        wait_indexed(api, DIRECT_DATASET, expected, time.monotonic())
    status = local_stack.ingest_status(stack)
    start_cpu, cpu = status["cpu_before_first_request"], status["cpu"]
    system = cpu["system"] - start_cpu["system"]
    return Run(status["last_batch_at"] - status["first_request_at"], uploads,
               cpu["user"] - start_cpu["user"] + system, system, status["batches"], status["events"],
               profile_summary(profile_path) if profile_path else ""), files


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


# ---- ingest CPU, its floor, and its profile ---------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_group_pids(pgid: int) -> list[int]:
    """Every live process whose process group is `pgid` (/proc/<pid>/stat field 5)."""
    return [pid for pid, fields in _proc_stats() if int(fields[2]) == pgid]


def _proc_stats():
    """(pid, the fields of /proc/<pid>/stat after "(comm)") for every live process."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            yield int(stat.parent.name), stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile


def process_group_cpu(pgid: int) -> dict[int, tuple[float, float]]:
    """(user, system) CPU seconds, every thread, of each live process of the group."""
    return {pid: (int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS)  # stat fields 14 and 15
            for pid, fields in _proc_stats() if int(fields[2]) == pgid}


def cpu_seconds_between(before: dict[int, tuple[float, float]],
                        after: dict[int, tuple[float, float]]) -> tuple[float, float]:
    """(user, system) CPU seconds the group spent between the two readings."""
    if set(before) != set(after):
        print(f"  WARNING: the ingest processes changed during the run: {sorted(before)} -> {sorted(after)}")
    spent = [(user - before.get(pid, (0.0, 0.0))[0], system - before.get(pid, (0.0, 0.0))[1])
             for pid, (user, system) in after.items()]
    return sum(user for user, _ in spent), sum(system for _, system in spent)


def measure_floor(files: dict[str, bytes]) -> float:
    """CPU seconds of the project's own identification (hash, format, size, orientation,
    integrity, thumbnail) and label parsing of `files`, in this process."""
    from common.domain.imaging import identify_image
    from common.domain.labels import parse_label
    images = [(name, data) for name, data in files.items() if layout.classify(name).kind == "image"]
    labels = [(name, data) for name, data in files.items() if layout.classify(name).kind == "label"]
    identify_image(io.BytesIO(images[0][1]), images[0][0], "jpg")  # first use: lazy imports of Pillow plugins
    started = time.process_time()
    for name, data in images:
        identify_image(io.BytesIO(data), name, "jpg")
    for name, data in labels:
        parse_label(data, name)
    return time.process_time() - started


@contextmanager
def profiled(pgid: int, raw_path: str | None):
    """py-spy record of the ingest function's processes while the block runs (nothing without a path)."""
    if not raw_path:
        yield None
        return
    py_spy = str(Path(sys.executable).parent / "py-spy")
    recorder = subprocess.Popen([py_spy, "record", "--pid", str(pgid), "--subprocesses", "--nonblocking", "--gil",
                                 "--rate", "200", "--format", "raw", "--output", raw_path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield recorder
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        recorder.wait(timeout=60)


def profile_summary(raw_path: str) -> str:
    from bench.profile import summarize
    return summarize(Path(raw_path).read_text())


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
    from common.cloud import db
    docs = db.client().collection("bench_raw").document(uuid.uuid4().hex).collection("docs")
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


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure_big_object_memory(api: ApiClient, ingest_pgid: int, gib: float) -> str:
    """Upload one big image; return the summary line on the ingest function's peak RSS."""
    from common.cloud import storage
    size = int(gib * 1024 * MIB)
    name = layout.dataset_object(BIG_DATASET, "images/train/huge.jpg")
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

    def big_stats():
        return (api.get_or_none(f"/datasets/{BIG_DATASET}") or {"stats": no_stats})["stats"]

    wait_for(progress_probe(big_stats, started),
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
    top = max(peaks, key=lambda pid: peaks[pid])
    increase = f"+{(peaks[top] - idle[top]) / 1024:.0f} MiB over idle {idle[top] / 1024:.0f} MiB" \
        if top in idle else "a process started during the run"
    return (f"ingest function peak RSS while hashing a {size / 1024 / MIB:.2f} GiB object ({size} bytes): "
            f"{peaks[top] / 1024:.0f} MiB ({increase})")


if __name__ == "__main__":
    main()
