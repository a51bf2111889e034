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
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--size", default="320x240")
    args = parser.parse_args()
    with local_stack.temporary_stack("yolodrop-bench-export-") as stack:
        run(ApiClient(stack.env()["API_URL"], stack.token), args, stack.pids["export"])


def run(api: ApiClient, args, export_pgid: int) -> None:
    from common.cloud import storage
    dataset = f"bench-{uuid.uuid4().hex[:6]}"
    width, height = map(int, args.size.split("x"))
    files = sample.generated_dataset(args.n - args.n // 5, args.n // 5, size=(width, height))
    image_bytes = sum(len(v) for k, v in files.items() if k.startswith("images/"))
    print(f"dropping {args.n} generated {args.size} images ({image_bytes / MIB:.1f} MiB) with labels ...", flush=True)
    upload_all(storage.bucket(), {layout.dataset_object(dataset, k): v for k, v in files.items()})
    wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"),
             lambda d: d is not None and d["stats"]["labeled"] == args.n, 1800, "indexed", interval=1)

    first, seconds = timed(lambda: finished(api, f"/datasets/{dataset}/versions", {},
                                            lambda v: f"/datasets/{dataset}/versions/{v['version']}", "ready"))
    print(f"version v1 frozen: {seconds:.1f} s -> {args.n / seconds:.0f} images/s; content store +"
          f"{first['storage']['new_bytes'] / MIB:.1f} MiB for {image_bytes / MIB:.1f} MiB of images", flush=True)
    second, seconds = timed(lambda: finished(api, f"/datasets/{dataset}/versions", {},
                                             lambda v: f"/datasets/{dataset}/versions/{v['version']}", "ready"))
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
