"""Versions and exports on the local stack, against raw copies of the same objects, in one run.
    python -m bench.export [--n 5000] [--size 320x240]
Starts its own stack on free ports, drops N generated images with labels,
waits until they are indexed, then measures:
1. freezing a version (snapshot + server-side copies into the content store),
   and a second version of the unchanged dataset; the storage each added;
2. a YOLO, a COCO and a Pascal VOC export of the first version, in images per second, against
   raw copies of the same image objects (download + upload, 16 threads, from
   this process);
3. the export function's peak RSS during the exports, against its RSS before.

    python -m bench.export --n 20000 --kills 2
measures instead a YOLO export undisturbed, then the same export with the
export function killed (SIGKILL) each time another 1/(kills + 1) of the images
is written, started again at once: both times, the images each resumed call
found done (from the function's outcome log), and whether the archives are
the same bytes. EXPORT_LEASE_SECONDS (here 15 s) is how long the killed
call's claim holds before a redelivery takes it over.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.ingest import memory_kib, process_group_pids
from common.domain import layout
from infra.local import sample, stack as local_stack
from infra.local.client import ApiClient, upload_all, wait_for

MIB = 1024 * 1024
WORKERS = 16
LEASE_SECONDS = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--kills", type=int, default=0, help="measure an export killed this many times instead")
    parser.add_argument("--gcs-backend", choices=("memory", "filesystem"), default="memory",
                        help="fake-gcs-server's backend (the memory one scans its bucket on every call: slow past "
                             "tens of thousands of objects)")
    args = parser.parse_args()
    os.environ.setdefault("EXPORT_LEASE_SECONDS", str(LEASE_SECONDS))  # read by the stack's functions at start
    stack = local_stack.Stack(state_dir=Path(tempfile.mkdtemp(prefix="yolodrop-bench-export-")),
                              ports=local_stack.free_ports(), gcs_backend=args.gcs_backend)
    print(f"starting the local stack (fake-gcs-server's {args.gcs_backend} backend; logs in {stack.state_dir}) ...",
          flush=True)
    local_stack.start(stack)
    try:
        os.environ.update(stack.env())  # before any client is made: they read it
        api = ApiClient(stack.env()["API_URL"], stack.token)
        if args.kills:
            run_killed(stack, api, args)
        else:
            run(api, args, stack.pids["export"])
    finally:
        local_stack.discard(stack)
        shutil.rmtree(stack.state_dir / "gcs", ignore_errors=True)  # the filesystem backend's objects


def run(api: ApiClient, args, export_pgid: int) -> None:
    dataset, files, image_bytes = dropped(api, args)

    first, seconds = timed(lambda: finished(api, f"/datasets/{dataset}/versions", {},
                                            lambda v: f"/datasets/{dataset}/versions/{v['version']}", "completed"))
    print(f"version v1 frozen: {seconds:.1f} s -> {args.n / seconds:.0f} images/s; content store +"
          f"{first['storage']['new_bytes'] / MIB:.1f} MiB for {image_bytes / MIB:.1f} MiB of images", flush=True)
    second, seconds = timed(lambda: finished(api, f"/datasets/{dataset}/versions", {},
                                             lambda v: f"/datasets/{dataset}/versions/{v['version']}", "completed"))
    print(f"version v2 of the unchanged dataset: {seconds:.1f} s; content store +"
          f"{second['storage']['new_bytes'] / MIB:.1f} MiB", flush=True)

    pids = process_group_pids(export_pgid)
    idle = max(memory_kib(pid, "VmRSS") for pid in pids) / 1024
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
    for export_format in ("yolo", "coco", "voc"):
        done, seconds = timed(lambda: finished(api, f"/datasets/{dataset}/exports",
                                               {"format": export_format, "version": first["id"]},
                                               lambda e: f"/exports/{e['export_id']}", "completed"))
        print(f"{export_format} export: {seconds:.1f} s -> {args.n / seconds:.0f} images/s, "
              f"{done['bytes'] / MIB:.1f} MiB zip", flush=True)
    peak = max(memory_kib(pid, "VmHWM") for pid in pids) / 1024
    print(f"export function peak RSS during the three exports: {peak:.0f} MiB (+{peak - idle:.0f} MiB over "
          f"{idle:.0f} MiB before them; the largest of its processes)", flush=True)

    names = [layout.dataset_object(dataset, k) for k in files if k.startswith("images/")]
    _, seconds = timed(lambda: raw_copies(names))
    print(f"raw copies of the same {len(names)} objects (download + upload, {WORKERS} threads): "
          f"{seconds:.1f} s -> {len(names) / seconds:.0f} images/s", flush=True)


def dropped(api: ApiClient, args) -> tuple[str, dict[str, bytes], int]:
    """A dataset of args.n generated images with labels, indexed."""
    from common.cloud import storage
    dataset = f"bench-{uuid.uuid4().hex[:6]}"
    width, height = map(int, args.size.split("x"))
    files = sample.generated_dataset(args.n - args.n // 5, args.n // 5, size=(width, height))
    image_bytes = sum(len(v) for k, v in files.items() if k.startswith("images/"))
    print(f"dropping {args.n} generated {args.size} images ({image_bytes / MIB:.1f} MiB) with labels ...", flush=True)
    upload_all(storage.bucket(), {layout.dataset_object(dataset, k): v for k, v in files.items()})
    wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"),
             lambda d: d is not None and d["stats"]["labeled"] == args.n, 3600, "indexed", interval=1)
    return dataset, files, image_bytes


def run_killed(stack, api: ApiClient, args) -> None:
    """An undisturbed YOLO export against the same export killed args.kills times."""
    dataset, _, _ = dropped(api, args)
    version, seconds = timed(lambda: finished(api, f"/datasets/{dataset}/versions", {},
                                              lambda v: f"/datasets/{dataset}/versions/{v['version']}", "completed"))
    print(f"version {version['id']} frozen: {seconds:.1f} s", flush=True)
    body = {"format": "yolo", "version": version["id"]}
    pids = process_group_pids(stack.pids["export"])
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
    calm, calm_seconds = timed(lambda: finished(api, f"/datasets/{dataset}/exports", body,
                                                lambda e: f"/exports/{e['export_id']}", "completed"))
    peak = max(memory_kib(pid, "VmHWM") for pid in pids) / 1024
    print(f"undisturbed yolo export: {calm_seconds:.1f} s -> {args.n / calm_seconds:.0f} images/s, "
          f"{calm['bytes'] / MIB:.1f} MiB zip; export function peak RSS {peak:.0f} MiB", flush=True)

    started, log_lines = time.monotonic(), []
    answer = api.session.post(f"{api.url}/datasets/{dataset}/exports", json=body, timeout=60)
    assert answer.status_code == 202, answer.text
    export_id = answer.json()["export_id"]
    for kill in range(1, args.kills + 1):
        at = wait_for(lambda: api.get(f"/exports/{export_id}"),
                      lambda e: (e["files_done"] or 0) >= args.n * kill // (args.kills + 1), 3600, "progress")
        local_stack.kill_part(stack, "export")
        log_lines += export_log(stack)  # a started function writes its log afresh
        print(f"kill {kill}: the export function killed at {at['files_done']} of {args.n} images written "
              f"({time.monotonic() - started:.1f} s)", flush=True)
        local_stack.start_function(stack, "export")
    killed = wait_for(lambda: api.get(f"/exports/{export_id}"), lambda e: e["status"] in ("completed", "failed"),
                      3600, "the killed export completed", interval=0.2)
    killed_seconds = time.monotonic() - started
    print(f"killed {args.kills} times, then finished: {killed_seconds:.1f} s ({killed['status']}); "
          f"{killed_seconds / calm_seconds:.2f}x the undisturbed export", flush=True)
    ended = wait_for(lambda: outcomes_of(log_lines + export_log(stack), export_id),
                     lambda found: any(o["outcome"] == "applied" and "uri" in o for o in found), 60,
                     "the last call's outcome logged")
    for outcome in ended:
        print(f"  a call: {outcome['outcome']}, {outcome.get('parts_found')} parts found done, "
              f"{outcome.get('parts_written')} written ({outcome.get('files_written')} images)", flush=True)
    same = digest(calm["uri"]) == digest(killed["uri"])
    print(f"the two archives are {'the same bytes' if same else 'DIFFERENT'}", flush=True)


def export_log(stack) -> list[str]:
    return (stack.state_dir / "export.log").read_text(errors="replace").splitlines()


def outcomes_of(lines: list[str], export_id: str) -> list[dict]:
    """The export function's outcome lines for `export_id` that report parts (those of calls that ended)."""
    records = [json.loads(line) for line in lines if line.startswith("{") and export_id in line]
    return [record for record in records if "parts_found" in record]


def digest(uri: str) -> str:
    from common.cloud import storage
    return hashlib.sha256(storage.blob_at(uri).download_as_bytes()).hexdigest()


def finished(api: ApiClient, path: str, body: dict, follow, status: str) -> dict:
    answer = api.session.post(f"{api.url}{path}", json=body, timeout=60)
    assert answer.status_code == 202, answer.text
    where = follow(answer.json())
    return wait_for(lambda: api.get(where), lambda d: d["status"] in (status, "failed"), 1800, where, interval=0.2)


def raw_copies(names: list[str]) -> None:
    from common.cloud import storage
    bucket = storage.bucket()

    def copy(name: str) -> None:
        bucket.blob(f"derived/bench/raw/{name}").upload_from_string(bucket.blob(name).download_as_bytes())
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(copy, names))


def timed(work):
    started = time.monotonic()
    result = work()
    return result, time.monotonic() - started


if __name__ == "__main__":
    main()
