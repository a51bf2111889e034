"""Training overhead on the local stack, against Ultralytics alone, in one run.

    python -m bench.train [--n 500] [--epochs 2] [--imgsz 160] [--batch 16]

Starts its own stack on free ports, drops a generated dataset of N images (no
val split: the manifest splits it by content hash), and measures:

1. overhead: from POST /training to the trainer's `started` event (validation,
   manifest, launch, interpreter and Ultralytics import, materialization),
   against the time Ultralytics alone takes to train the same data with the
   same arguments (YOLO(...).train() on the materialized copy, in a subprocess),
   as a percentage;
2. materialization (parallel pinned downloads, sha256 check, label and file
   writes) against raw downloads of the same objects at the same concurrency.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common.domain import layout
from infra.local import sample, stack as local_stack
from infra.local.client import ApiClient, upload_all, wait_for, wait_for_found

WORKERS = 16
DIRECT_TRAIN = """
import json, sys, time
from ultralytics import YOLO
args = json.loads(sys.argv[1])
model = YOLO(args.pop("model"))
started = time.monotonic()
model.train(**args)
print("DIRECT_SECONDS", time.monotonic() - started)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    with local_stack.temporary_stack("yolodrop-bench-train-") as stack:
        run(ApiClient(stack.env()["API_URL"], stack.token), args, stack.state_dir)


def run(api: ApiClient, args, state_dir: Path) -> None:
    from common.cloud import storage
    dataset = f"bench-{uuid.uuid4().hex[:6]}"
    files = sample.generated_dataset(args.n, 0, size=(320, 240))
    print(f"dropping {args.n} generated images with labels into {layout.dataset_prefix(dataset)} ...", flush=True)
    upload_all(storage.bucket(), {layout.dataset_object(dataset, k): v for k, v in files.items()})
    wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"),
             lambda d: d is not None and d["classes_known"] and d["stats"]["labeled"] == args.n,
             600, "the dataset indexed", interval=0.5)

    request = {"dataset": dataset, "model": "yolov8n.yaml", "epochs": args.epochs, "imgsz": args.imgsz,
               "batch": args.batch, "workers": 0}
    print(f"requesting training {request} ...", flush=True)
    requested = time.time()
    job_id = api.session.post(f"{api.url}/training", json=request, timeout=30).json()["job_id"]
    job = wait_for_found(lambda: api.get_or_none(f"/training/{job_id}"),
                         lambda j: j["status"] in ("completed", "failed", "cancelled"), 3600, "training",
                         interval=0.5)
    if job["status"] != "completed":
        raise SystemExit(f"training {job['status']}: {job['error']}")
    overhead = job["started_at"] - requested
    job_training = job["finished_at"] - job["started_at"]

    manifest = json.loads(storage.blob_at(job["manifest"]).download_as_bytes())
    raw_seconds, raw_bytes = raw_download(manifest)
    from jobs.trainer.materialize import materialize
    data_dir = Path(tempfile.mkdtemp(prefix="bench-data-", dir=state_dir))
    materialized = materialize(manifest, data_dir, WORKERS)

    direct = direct_training(request, materialized.data_yaml, state_dir, job["device"])
    n = len(manifest["images"])
    print(f"\nimages in the manifest: {manifest['counts']} (split by content hash)")
    print(f"request -> trainer started (manifest, launch, imports, materialization): {overhead:.2f} s")
    print(f"  request -> launched (validation, manifest, job document, launch): {job['launched_at'] - requested:.2f} s")
    print(f"  launched -> started (interpreter, imports, checkpoint check, materialization "
          f"{job['materialize_seconds']:.2f} s): {job['started_at'] - job['launched_at']:.2f} s")
    print(f"Ultralytics alone, same data and arguments ({args.epochs} epochs, imgsz {args.imgsz}): {direct:.2f} s")
    print(f"overhead / Ultralytics training time = {100 * overhead / direct:.1f}%")
    print(f"(the job itself: started -> completed {job_training:.2f} s, including the final ONNX export)")
    print(f"raw downloads ({WORKERS} threads): {n / raw_seconds:.0f} images/s, "
          f"{raw_bytes / raw_seconds / 2**20:.1f} MiB/s")
    print(f"materialization ({WORKERS} threads, sha256 + files): {n / materialized.seconds:.0f} images/s, "
          f"{materialized.downloaded_bytes / materialized.seconds / 2**20:.1f} MiB/s")
    print(f"materialization rate / raw download rate = {100 * raw_seconds / materialized.seconds:.0f}%")


def raw_download(manifest: dict) -> tuple[float, int]:
    from common.cloud import storage
    bucket = storage.client().bucket(manifest["bucket"])
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        sizes = list(pool.map(lambda i: len(bucket.blob(i["path"], generation=i["generation"]).download_as_bytes()),
                              manifest["images"]))
    return time.monotonic() - started, sum(sizes)


def direct_training(request: dict, data_yaml: Path, state_dir: Path, device: str) -> float:
    args = {"model": request["model"], "data": str(data_yaml), "epochs": request["epochs"], "imgsz": request["imgsz"],
            "batch": request["batch"], "workers": request["workers"], "plots": False, "device": device,
            "project": str(state_dir / "direct"), "name": "run", "exist_ok": True, "patience": 50}
    print("training with Ultralytics alone for the baseline ...", flush=True)
    done = subprocess.run([sys.executable, "-c", DIRECT_TRAIN, json.dumps(args)], capture_output=True, text=True)
    line = next((out for out in done.stdout.splitlines() if out.startswith("DIRECT_SECONDS")), None)
    if done.returncode or line is None:
        raise SystemExit(f"direct training failed:\n{done.stderr[-3000:]}")
    return float(line.split()[1])


if __name__ == "__main__":
    main()
