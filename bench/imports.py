"""Imports of a large archive from a URL, against raw parallel uploads of the same files, in one run.

    python -m bench.imports [--n 20000] [--inline-n 500] [--order grouped|interleaved]

(`bench.imports`, not `bench.import`: `import` is a keyword.) Builds, in a temporary
folder that is removed at the end, a zip of N generated ~100 KB JPEGs (400x300
noise: a few hundred distinct encodings, each image made unique by a JPEG
comment segment, so every file hashes differently and still decodes), their
YOLO labels and data.yaml; images stored, labels deflated, written member by
member. `grouped` lays it out as `zip -r` of an Ultralytics folder does
(images/..., then labels/..., then data.yaml); `interleaved` puts each label
after its image. Then, on a stack of its own (IMPORT_TASKS=4, the stack's
default being 2; fake-gcs-server's filesystem backend, --gcs-backend: the
memory backend finds an object by a linear scan of its bucket, so with tens
of thousands of objects it measures itself), with the zip served over
loopback with ranges (ArchiveServer):

1. the baseline: a raw parallel upload of the archive's members (read from the
   zip on disk) with the storage client, from 8 threads (one import task's
   UPLOAD_THREADS) and from 32 (four tasks'), into a scratch bucket that sends
   no events, so nothing else runs meanwhile: the machine's transfer ceiling;
2. the inline path: a smaller zip (--inline-n images) dropped at
   imports/<dataset>.zip below IMPORT_INLINE_MAX_BYTES (set to 1 GiB here),
   unpacked inside the ingest call; the clock runs from the end of the drop to
   the archive's file document saying it is unpacked: the MB/s that sets what
   fits in an ingest call's time;
3. an import with 4 tasks, then one with 1 task, each into a fresh dataset: the
   clock runs from the POST to status completed; meanwhile each task's peak RSS
   (VmHWM) and CPU time from /proc, and the CPU time of every part of the stack;
4. for the 4-task import, the time from the POST until GET /datasets/<d> says
   images == labeled == N with no job pending (the 1-task import starts only
   then, so the two do not share ingest).

--profile RAW records the 1-task import's task with py-spy (--gil: where the
thread holding the GIL spends it), writes the collapsed stacks to RAW and prints
them by component and by innermost function; py-spy takes CPU from the same two
cores, so that run's 1-task figures read low.

Unlike the baseline, the imports run while ingest handles the events of what
they write (as they do in production): the CPU lines say who used the two cores.
The temporary folder, and the stack's objects and logs, are removed at the end
(the logs are kept when the run fails).
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from common.services.archive_import import UPLOAD_THREADS  # per task; its clients are made on first use
from infra.local import sample, stack as local_stack
from infra.local.archive_server import ArchiveServer
from infra.local.client import ApiClient, wait_for, wait_for_found

MB = 1_000_000
MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]
SIZE = (400, 300)
QUALITY = 88                 # noise of 400x300 at this quality: about 100 KB a JPEG
RAW_BUCKET = "yolodrop-bench-raw"
IMPORT_TASKS = 4
RAW_WORKERS = (UPLOAD_THREADS, IMPORT_TASKS * UPLOAD_THREADS)  # one task's upload threads, four tasks'
INLINE_MAX_BYTES = 1024 ** 3
DEADLINE = 3600
PROGRESS_SECONDS = 15
STATS_POLL_SECONDS = 5  # each GET /datasets/<d> aggregates over every entry: polling every second took ~1/6 of a core
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="images in the imported archive")
    parser.add_argument("--inline-n", type=int, default=500, help="images in the archive dropped for the inline path")
    parser.add_argument("--bases", type=int, default=256, help="distinct JPEG encodings the images are made from")
    parser.add_argument("--order", choices=("grouped", "interleaved"), default="grouped")
    parser.add_argument("--gcs-backend", choices=("filesystem", "memory"), default="filesystem",
                        help="fake-gcs-server's backend (the stack's default is memory, whose calls slow down "
                        "with every object in the bucket: a linear scan)")
    parser.add_argument("--profile", metavar="RAW", help="py-spy the 1-task import's task into RAW (collapsed "
                        "stacks) and print where its CPU went")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` runs the finally blocks: the stack stops
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]} on {os.cpu_count()} cores",
          flush=True)
    folder = Path(tempfile.mkdtemp(prefix="yolodrop-bench-import-"))
    try:
        bases = base_jpegs(args.bases)
        big = build_archive(folder / "big.zip", args.n, bases, seed=1, order=args.order)
        small = build_archive(folder / "small.zip", args.inline_n, bases, seed=2, order=args.order)
        # Read by the stack's functions at start: the inline drop is unpacked inside the ingest call.
        os.environ["IMPORT_INLINE_MAX_BYTES"] = str(INLINE_MAX_BYTES)
        stack = local_stack.Stack(state_dir=Path(tempfile.mkdtemp(prefix="yolodrop-bench-import-stack-")),
                                  ports=local_stack.free_ports(), import_tasks=IMPORT_TASKS,
                                  gcs_backend=args.gcs_backend)
        print(f"starting the local stack (IMPORT_TASKS={IMPORT_TASKS}, fake-gcs-server's {args.gcs_backend} backend; "
              f"logs in {stack.state_dir}) ...", flush=True)
        local_stack.start(stack)
        succeeded = False
        try:
            os.environ.update(stack.env())  # before any client is made: they read it
            with ArchiveServer(folder) as server:
                run(stack, server, big, small, args.profile)
            succeeded = True
        finally:
            local_stack.discard(stack)
            shutil.rmtree(stack.state_dir / "gcs", ignore_errors=True)  # the filesystem backend's objects
            if succeeded:
                shutil.rmtree(stack.state_dir, ignore_errors=True)  # ~170 MB of logs at N=20,000
            else:
                print(f"the stack's logs are kept in {stack.state_dir}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"removed {folder}", flush=True)


# ---- the archives ---------------------------------------------------------------------

class Archive:
    def __init__(self, path: Path, n: int, members: int, member_bytes: int, image_bytes: int):
        self.path, self.n, self.members, self.member_bytes = path, n, members, member_bytes
        self.image_bytes = image_bytes

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def base_jpegs(count: int) -> list[bytes]:
    started = time.perf_counter()
    rng = random.Random(0)
    bases = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.frombytes("RGB", SIZE, rng.randbytes(SIZE[0] * SIZE[1] * 3)).save(buffer, "JPEG", quality=QUALITY)
        bases.append(buffer.getvalue())
    print(f"{count} distinct {SIZE[0]}x{SIZE[1]} noise JPEGs encoded in {time.perf_counter() - started:.1f} s, "
          f"{sum(map(len, bases)) / count / 1000:.0f} KB each on average", flush=True)
    return bases


def unique_image(bases: list[bytes], seed: int, i: int) -> bytes:
    """A base JPEG with a comment segment (COM, FF FE) right after SOI naming the image: unique bytes, same pixels."""
    base = bases[(seed * 7919 + i) % len(bases)]
    comment = f"yolodrop bench image {seed}-{i}".encode()
    return base[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + base[2:]


def label_of(seed: int, i: int) -> bytes:
    rng = random.Random(seed * 1_000_003 + i)
    width, height = SIZE
    boxes = []
    for _ in range(rng.randint(1, 3)):
        w, h = rng.randrange(20, width // 2), rng.randrange(20, height // 2)
        x1, y1 = rng.randrange(0, width - w), rng.randrange(0, height - h)
        boxes.append((rng.randrange(len(sample.CLASSES)), (x1, y1, x1 + w, y1 + h)))
    return sample.yolo_rows(boxes, width, height).encode()


def build_archive(path: Path, n: int, bases: list[bytes], seed: int, order: str) -> Archive:
    """The zip on disk, written member by member (never more than one image in memory)."""
    started = time.perf_counter()
    split = lambda i: "val" if i % 10 == 9 else "train"  # noqa: E731
    image = lambda i: (f"images/{split(i)}/im{i:06d}.jpg", unique_image(bases, seed, i))  # noqa: E731
    label = lambda i: (f"labels/{split(i)}/im{i:06d}.txt", label_of(seed, i))  # noqa: E731
    if order == "grouped":  # as `zip -r` of the folder lays it out: sorted paths
        names = sorted([("images", split(i), i) for i in range(n)] + [("labels", split(i), i) for i in range(n)])
        members = ((image if kind == "images" else label)(i) for kind, _, i in names)
    else:
        members = (member for i in range(n) for member in (image(i), label(i)))
    count = member_bytes = image_bytes = 0
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in itertools.chain(members, [("data.yaml", sample.data_yaml().encode())]):
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
            count += 1
            member_bytes += len(data)
            image_bytes += len(data) if name.endswith(".jpg") else 0
            if count % 10_000 == 0:
                print(f"  {path.name}: {count:,} members written", flush=True)
    check_images(path)
    built = Archive(path, n, count, member_bytes, image_bytes)
    print(f"{path.name}: {n:,} images with labels + data.yaml = {count:,} members, {member_bytes / MB:,.1f} MB "
          f"of members, zip {built.size / MB:,.1f} MB ({built.size / MIB:,.1f} MiB), {order}; built in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return built


def check_images(path: Path) -> None:
    """Pillow decodes the images with their comment segments, at the size the labels assume."""
    with zipfile.ZipFile(path) as archive:
        jpegs = [name for name in archive.namelist() if name.endswith(".jpg")]
        for name in jpegs[:3] + jpegs[-2:]:
            with Image.open(io.BytesIO(archive.read(name))) as opened:
                opened.load()
                assert opened.size == SIZE and opened.format == "JPEG", (name, opened.size, opened.format)


# ---- /proc ------------------------------------------------------------------------------

def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return b""


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after "(comm)": [2] the process group, [11] utime, [12] stime."""
    return _read(f"/proc/{pid}/stat").decode(errors="replace").rpartition(")")[2].split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if len(fields) > 12 else 0.0


def _status_kib(pid: int, field: str) -> int:
    for line in _read(f"/proc/{pid}/status").decode(errors="replace").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _pids() -> list[int]:
    return [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]


def _is_importer(pid: int) -> bool:
    return b"jobs.importer" in _read(f"/proc/{pid}/cmdline")


def _environ(pid: int) -> dict[str, str]:
    pairs = (item.decode(errors="replace").partition("=") for item in _read(f"/proc/{pid}/environ").split(b"\0"))
    return {key: value for key, _, value in pairs if key}


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot (busy: everything but idle and iowait)."""
    values = [int(v) for v in _read("/proc/stat").split(b"\n", 1)[0].split()[1:]]
    total = sum(values[:8])
    return total - values[3] - values[4], total


class CpuSnapshot:
    """CPU seconds of each part of the stack (its process group; import tasks left out), and of this process."""

    def __init__(self, stack: local_stack.Stack):
        groups = {pgid: name for name, pgid in stack.pids.items()}
        self.parts: dict[str, float] = dict.fromkeys(stack.pids, 0.0)
        for pid in _pids():
            fields = _stat_fields(pid)
            if len(fields) > 12 and int(fields[2]) in groups and not _is_importer(pid):
                self.parts[groups[int(fields[2])]] += _cpu_seconds(fields)
        self.parts["bench (archive server, polls)"] = sum(os.times()[:2])
        self.busy, self.total = machine_busy()
        self.at = time.perf_counter()


class TaskSampler:
    """Every 0.5 s, the jobs.importer processes of one import: per task, the peak of VmHWM
    (peak RSS), the CPU seconds, when it was first and last seen."""

    def __init__(self, import_id: str):
        self.import_id = import_id
        self.tasks: dict[int, dict] = {}
        self._cpu_by_pid: dict[int, tuple[int, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="task-sampler")

    def __enter__(self) -> TaskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(0.5):  # the sampling interval
                return

    def sample(self) -> None:
        now = time.perf_counter()
        for pid in _pids():
            if not _is_importer(pid):
                continue
            env = _environ(pid)
            if env.get("IMPORT_ID") != self.import_id:
                continue
            index = int(env.get("CLOUD_RUN_TASK_INDEX", "0"))
            hwm, fields = _status_kib(pid, "VmHWM"), _stat_fields(pid)
            task = self.tasks.setdefault(index, {"peak_kib": 0, "first": now, "last": now, "pids": set()})
            task["peak_kib"] = max(task["peak_kib"], hwm)
            task["last"] = now
            task["pids"].add(pid)
            if fields:
                self._cpu_by_pid[pid] = (index, _cpu_seconds(fields))

    def cpu_seconds(self, index: int) -> float:
        return sum(seconds for task, seconds in self._cpu_by_pid.values() if task == index)

    def total_cpu(self) -> float:
        return sum(seconds for _, seconds in self._cpu_by_pid.values())


def cpu_report(before: CpuSnapshot, after: CpuSnapshot, importers: float = 0.0) -> str:
    wall = after.at - before.at
    used = {name: after.parts.get(name, 0.0) - seconds for name, seconds in before.parts.items()}
    if importers:
        used["import tasks"] = importers
    busy = (after.busy - before.busy) / max(after.total - before.total, 1)
    cores = os.cpu_count() or 1
    used["not accounted (other processes of the machine, exited ones)"] = \
        (after.busy - before.busy) / CLOCK_TICKS - sum(used.values())
    shown = ", ".join(f"{name} {seconds:.0f}" for name, seconds in sorted(used.items(), key=lambda kv: -kv[1])
                      if seconds >= 0.5)
    return (f"CPU seconds over {wall:.0f} s ({cores} cores: {wall * cores:.0f} core-s; machine "
            f"{busy:.0%} busy): {shown}")


# ---- the measurements -------------------------------------------------------------------

class Measured:
    def __init__(self, what: str, seconds: float, members: int, member_bytes: int):
        self.what, self.seconds, self.members, self.member_bytes = what, seconds, members, member_bytes

    @property
    def members_per_s(self) -> float:
        return self.members / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.member_bytes / MB / self.seconds


def run(stack: local_stack.Stack, server: ArchiveServer, big: Archive, small: Archive, profile: str | None) -> None:
    from common.cloud import storage
    api = ApiClient(stack.env()["API_URL"], stack.token)
    raw = {}
    for workers in RAW_WORKERS:  # each into an empty bucket, emptied after
        raw[workers] = raw_upload(stack, big, workers)
        clear_bucket(storage.client().bucket(RAW_BUCKET))
    inline = inline_drop(api, stack, small)
    four, stats_seconds, tasks_four = import_once(api, stack, server, big, IMPORT_TASKS, wait_stats=True)
    assert stats_seconds is not None  # measured: wait_stats
    one, _, tasks_one = import_once(api, stack, server, big, 1, wait_stats=False, profile=profile)
    summary(big, small, raw, inline, four, one, stats_seconds, tasks_four, tasks_one)


def raw_upload(stack: local_stack.Stack, archive: Archive, workers: int) -> Measured:
    """Every member of the zip, read from disk in the worker and uploaded with the storage client."""
    from common.cloud import storage
    bucket = storage.client().bucket(RAW_BUCKET)
    if not bucket.exists():
        bucket.create()
    done = [0]
    lock = threading.Lock()
    print(f"raw parallel upload of {archive.members:,} members, {workers} threads, into gs://{RAW_BUCKET} "
          f"(no events) ...", flush=True)
    with zipfile.ZipFile(archive.path) as zip_file:
        names = zip_file.namelist()

        def upload(name: str) -> None:
            bucket.blob(name).upload_from_string(zip_file.read(name))
            with lock:
                done[0] += 1

        before = CpuSnapshot(stack)
        started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = [pool.submit(upload, name) for name in names]
            last = started
            for future in futures:
                future.result()
                if time.perf_counter() - last >= PROGRESS_SECONDS:
                    last = time.perf_counter()
                    print(f"  {done[0]:,}/{len(names):,} members, {last - started:.0f} s", flush=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on an interruption, what is queued is dropped
        seconds = time.perf_counter() - started
    measured = Measured(f"raw upload, {workers} threads", seconds, archive.members, archive.member_bytes)
    print(f"  {seconds:.1f} s -> {measured.members_per_s:.0f} members/s, {measured.mb_per_s:.1f} MB/s (this process's "
          f"RSS {_status_kib(os.getpid(), 'VmRSS') / 1024:.0f} MiB, "
          f"peak {_status_kib(os.getpid(), 'VmHWM') / 1024:.0f})",
          flush=True)
    print(f"  {cpu_report(before, CpuSnapshot(stack))}", flush=True)
    return measured


def clear_bucket(bucket) -> None:
    """The baseline's objects deleted, so that the next baseline starts from an empty bucket too."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda blob: blob.delete(), bucket.list_blobs()))
    print(f"  scratch bucket emptied in {time.perf_counter() - started:.0f} s", flush=True)


def inline_drop(api: ApiClient, stack: local_stack.Stack, archive: Archive) -> Measured:
    """The archive dropped at imports/<dataset>.zip; the clock runs from the end of the upload
    to the archive's file document saying how many files it unpacked."""
    from common.cloud import dataset_index, storage
    dataset = f"inline-{uuid.uuid4().hex[:6]}"
    name = f"imports/{dataset}.zip"
    print(f"inline path: dropping {archive.size / MB:.1f} MB ({archive.n} images) at {name} "
          f"(IMPORT_INLINE_MAX_BYTES={INLINE_MAX_BYTES}) ...", flush=True)
    started = time.perf_counter()
    storage.bucket().blob(name).upload_from_filename(str(archive.path))
    dropped = time.perf_counter()
    before = CpuSnapshot(stack)
    record = wait_for_found(lambda: dataset_index.read_file(dataset, name),
                            lambda doc: "unpacked" in doc or "import_id" in doc, DEADLINE, f"{name} unpacked",
                            interval=0.1)
    unpacked = time.perf_counter()
    assert "unpacked" in record, f"the drop started an import instead of unpacking inline: {record}"
    assert record["unpacked"] == archive.members, record
    measured = Measured(f"inline drop ({archive.n} images)", unpacked - dropped, archive.members,
                        archive.member_bytes)
    print(f"  upload {dropped - started:.1f} s; unpacked in the ingest call {measured.seconds:.1f} s -> "
          f"{measured.members_per_s:.0f} members/s, {archive.size / MB / measured.seconds:.1f} MB/s of zip",
          flush=True)
    print(f"  {cpu_report(before, CpuSnapshot(stack))}", flush=True)
    stats_exact(api, stack, dataset, archive.n, started, "inline drop")
    return measured


def import_once(api: ApiClient, stack: local_stack.Stack, server: ArchiveServer, archive: Archive, tasks: int,
                wait_stats: bool, profile: str | None = None) -> tuple[Measured, float | None, dict[int, dict]]:
    dataset = f"import{tasks}-{uuid.uuid4().hex[:6]}"
    answer = api.session.post(f"{api.url}/datasets", json={"id": dataset}, timeout=30)
    assert answer.status_code == 201, answer.text
    print(f"import with {tasks} task(s) of {server.url(archive.path.name)} into {dataset} ...", flush=True)
    before = CpuSnapshot(stack)
    started = time.perf_counter()
    answer = api.session.post(f"{api.url}/datasets/{dataset}/imports",
                              json={"url": server.url(archive.path.name), "tasks": tasks}, timeout=30)
    assert answer.status_code == 202, answer.text
    import_id = answer.json()["import_id"]
    with TaskSampler(import_id) as sampler:
        recorder = py_spy(sampler, profile) if profile else None
        printed = [started]
        view = wait_for(lambda: progress(api, import_id, started, printed), lambda v: v["status"] in
                        ("completed", "failed", "cancelled"), DEADLINE, f"import {import_id}", interval=0.25)
        seconds = time.perf_counter() - started
        sampler.sample()
    if recorder and profile:
        recorder.wait(timeout=120)  # it ends with the task and writes its output
        print(profile_summary(profile), flush=True)
    assert view["status"] == "completed", json.dumps(view)[:2000]
    assert (view["tasks"], view["members_done"], view["members_total"]) == (tasks, archive.members,
                                                                           archive.members), view
    measured = Measured(f"import, {tasks} task{'s' if tasks > 1 else ''}", seconds, archive.members,
                        archive.member_bytes)
    print(f"  completed: {seconds:.1f} s from the POST -> {measured.members_per_s:.0f} members/s, "
          f"{measured.mb_per_s:.1f} MB/s (the import's own started_at..finished_at: "
          f"{view['finished_at'] - view['started_at']:.1f} s); {len(view['issues'])} issues", flush=True)
    print(f"  {cpu_report(before, CpuSnapshot(stack), sampler.total_cpu())}", flush=True)
    from common.cloud import import_store
    per_task = {}
    for task in sorted(import_store.read_tasks(import_id), key=lambda t: t["index"]):
        seen = sampler.tasks.get(task["index"], {})
        info = per_task[task["index"]] = {
            "members": task["members_total"], "bytes": task["bytes_total"],
            "seconds": seen.get("last", 0) - seen.get("first", 0), "cpu": sampler.cpu_seconds(task["index"]),
            "peak_mib": seen.get("peak_kib", 0) / 1024, "processes": len(seen.get("pids", ()))}
        print(f"  task {task['index']}: {info['members']:,} members, {info['bytes'] / MB:,.0f} MB; ran "
              f"~{info['seconds']:.0f} s, CPU {info['cpu']:.1f} s ({info['cpu'] / max(info['seconds'], 1e-9):.0%} of "
              f"a core), peak RSS {info['peak_mib']:.0f} MiB, {info['processes']} process(es)", flush=True)
    stats_seconds = (stats_exact(api, stack, dataset, archive.n, started, f"import {tasks} tasks") if wait_stats
                     else None)
    return measured, stats_seconds, per_task


def py_spy(sampler: TaskSampler, raw_path: str) -> subprocess.Popen:
    """py-spy record of task 0 as soon as its process is seen."""
    pid = wait_for(lambda: next(iter(sampler.tasks.get(0, {}).get("pids", ())), None), lambda found: found,
                   120, "the import task's process", interval=0.05)
    return subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--gil",
                             "--rate", "100", "--format", "raw", "--output", raw_path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_summary(raw_path: str) -> str:
    from bench.profile import component, parse, table
    stacks = parse(Path(raw_path).read_text())
    total = sum(stacks.values()) or 1
    by_component: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    for frames, n in stacks.items():
        by_component[component(frames)] += n
        function, path = frames[-1]
        by_function[f"{function} ({path.rsplit('site-packages/', 1)[-1]})"] += n
    top = Counter(dict(by_function.most_common(15)))
    return "\n".join([f"  profile of the 1-task import's task: {total} samples holding the GIL (py-spy --gil)"]
                     + table("  by component (innermost frame that has one):", by_component, total)
                     + table("  innermost functions (top 15):", top, total))


def progress(api: ApiClient, import_id: str, started: float, printed: list[float]) -> dict:
    """The import's view; a progress line every PROGRESS_SECONDS (printed[0]: when the last one was)."""
    view = api.get(f"/imports/{import_id}")
    now = time.perf_counter()
    if now - printed[0] >= PROGRESS_SECONDS:
        printed[0] = now
        print(f"  {view['status']}: {view['members_done']:,}/{view['members_total'] or 0:,} members, "
              f"{view['bytes_done'] / MB:,.0f}/{(view['bytes_total'] or 0) / MB:,.0f} MB, {now - started:.0f} s, "
              f"{view['members_done'] / (now - started):.0f} members/s", flush=True)
    return view


def stats_exact(api: ApiClient, stack: local_stack.Stack, dataset: str, n: int, started: float, what: str) -> float:
    """Seconds from `started` until the dataset's statistics count every image and label, with no job pending."""
    before = CpuSnapshot(stack)
    last = [time.perf_counter()]

    def probe():
        view = api.get_or_none(f"/datasets/{dataset}")
        if view and time.perf_counter() - last[0] >= PROGRESS_SECONDS * 2:
            last[0] = time.perf_counter()
            print(f"  indexing {dataset}: {view['stats']['images']:,} images, {view['stats']['labeled']:,} labeled, "
                  f"{last[0] - started:.0f} s", flush=True)
        return view

    view = wait_for(probe, lambda v: v is not None and v["stats"]["images"] == n and v["stats"]["labeled"] == n
                    and v.get("pending_jobs", 0) == 0, DEADLINE, f"{dataset} statistics exact",
                    interval=STATS_POLL_SECONDS)
    seconds = time.perf_counter() - started
    print(f"  {what}: statistics exact {seconds:.1f} s after the request ({n / seconds:.0f} images/s end to end; "
          f"{view['stats']['issues']} issues, {view['stats']['duplicates']} duplicates)", flush=True)
    print(f"  meanwhile {cpu_report(before, CpuSnapshot(stack))}", flush=True)
    return seconds


def summary(big: Archive, small: Archive, raw: dict[int, Measured], inline: Measured, four: Measured,
            one: Measured, stats_seconds: float, tasks_four: dict[int, dict], tasks_one: dict[int, dict]) -> None:
    settings = json.loads((REPO / "infra" / "settings.json").read_text())
    importer, ingest = settings["importer"], settings["functions"]["ingest"]
    print()
    print(f"archive: {big.n:,} images 400x300 (~{big.image_bytes / big.n / 1000:.0f} KB each) with labels, "
          f"{big.members:,} members, {big.member_bytes / MB:,.0f} MB of members, zip {big.size / MB:,.0f} MB, "
          f"served over loopback with ranges; {os.cpu_count()} cores shared by everything")
    print(f"{'':32}{'seconds':>9}{'members/s':>11}{'MB/s':>8}")
    for measured in [*raw.values(), one, four, inline]:
        print(f"{measured.what:32}{measured.seconds:9.1f}{measured.members_per_s:11.0f}{measured.mb_per_s:8.1f}")
    print("throughput ratios (1.00 = as fast as the raw upload):")
    for measured in (one, four):
        for workers, baseline in raw.items():
            print(f"  {measured.what} / raw upload {workers} threads = "
                  f"{measured.members_per_s / baseline.members_per_s:.2f}")
    print(f"  import 4 tasks / import 1 task = {four.members_per_s / one.members_per_s:.2f}")
    print("4-task split (contiguous runs, common.domain.imports.share): members "
          + ", ".join(f"{t['members']:,}" for _, t in sorted(tasks_four.items())) + "; the tasks ran ~"
          + ", ".join(f"{t['seconds']:.0f}" for _, t in sorted(tasks_four.items()))
          + f" s of the import's {four.seconds:.0f} s")
    print(f"peak RSS of a task: 1 task {tasks_one[0]['peak_mib']:.0f} MiB; 4 tasks "
          + ", ".join(f"{t['peak_mib']:.0f}" for _, t in sorted(tasks_four.items())) + " MiB "
          f"(Cloud Run gives a task {importer['memory']})")
    print(f"request -> statistics exact (images == labeled == {big.n:,}, no job pending), 4 tasks: "
          f"{stats_seconds:.0f} s ({big.n / stats_seconds:.0f} images/s; the import itself {four.seconds:.0f} s, "
          f"the rest is ingest and the Firestore and Pub/Sub emulators catching up on the same "
          f"{os.cpu_count()} cores: see the CPU line of that wait)")
    rate = small.size / inline.seconds
    timeout = ingest["timeout_seconds"]
    print(f"inline unpack in the ingest function: {rate / MB:.1f} MB/s of zip ({inline.members_per_s:.0f} members/s "
          f"of ~100 KB images): about {rate * 60 / MIB:,.0f} MiB unpack in 60 s, {rate * timeout / MIB:,.0f} MiB in "
          f"its call's timeout ({timeout} s); "
          f"IMPORT_INLINE_MAX_BYTES is {importer['inline_max_bytes'] / MIB:.0f} MiB "
          f"({importer['inline_max_bytes'] / rate:.0f} s at this rate)")
    per_task = one.members_per_s, one.mb_per_s
    tasks = importer["tasks"]
    busy = tasks_one[0]["cpu"] / max(tasks_one[0]["seconds"], 1e-9)
    cpu_ms = tasks_one[0]["cpu"] / big.members * 1000
    print(f"Cloud Run estimate: one task here unpacks {per_task[0]:.0f} members/s ({per_task[1]:.1f} MB/s) while "
          f"sharing {os.cpu_count()} cores with ingest, fake-gcs-server and the emulators, using {busy:.0%} of a core "
          f"itself (it waits on its {UPLOAD_THREADS} upload threads' round trips, not on its CPU); each Cloud Run "
          f"task has {importer['cpu']} vCPU of its own, so {tasks} tasks (infra/settings.json) -> about "
          f"{per_task[0] * tasks:.0f} members/s, {per_task[1] * tasks:.0f} MB/s ({big.n:,} images in "
          f"~{big.members / (per_task[0] * tasks):.0f} s; "
          f"100 GB in ~{100e9 / (per_task[1] * tasks * MB) / 60:.0f} min), "
          f"unless Cloud Storage's per-object write latency or the source server's bandwidth caps it first")
    print(f"  the task spent {cpu_ms:.2f} ms of CPU per member here, so a task's {importer['cpu']} vCPU could drive "
          f"~{int(importer['cpu']) * 1000 / cpu_ms:,.0f} members/s; what bounds it is uploads in flight: "
          f"{UPLOAD_THREADS} threads / the write latency of one object (e.g. {UPLOAD_THREADS / 0.05:.0f} members/s "
          f"per task at 50 ms): on Cloud Storage, UPLOAD_THREADS is the lever, then the task count")


if __name__ == "__main__":
    main()
