"""How a version's images reach the trainer: downloaded onto its disk, or read through a mount of the bucket.

    python -m bench.materialize [--n 2000] [--width 640] [--height 480]

Starts its own stack on free ports, drops N generated images with labels (a
fifth of them val), freezes a version and asks for a training on it (cancelled:
only its manifest is used), then materializes that manifest twice:

1. download (no TRAINER_DATA_MOUNT): every image downloaded at its pinned
   generation, sha256-checked and written to the job's disk;
2. mount (TRAINER_DATA_MOUNT): every image a link to its content-store object
   in the mount; the labels, as in 1, are written.

For each: the seconds it takes and the bytes it leaves on the job's disk, which
on Cloud Run is memory. The mount here is a directory mirror of the bucket (no
FUSE on this machine), so the mount's reads during the epochs are not measured
here: docs/training.md says what they cost in production.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import uuid
from pathlib import Path

from common.domain import layout
from infra.local import sample, stack as local_stack
from infra.local.client import ApiClient, upload_all, wait_for, wait_for_found

WORKERS = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    with local_stack.temporary_stack("yolodrop-bench-materialize-") as stack:
        run(ApiClient(stack.env()["API_URL"], stack.token), args, stack.state_dir)


def run(api: ApiClient, args, state_dir: Path) -> None:
    manifest = version_manifest(api, args)
    mount = state_dir / "bucket"
    mirror(manifest, mount)
    from jobs.trainer.materialize import materialize
    print(f"\n{len(manifest['images'])} images of {args.width}x{args.height} in the manifest ({manifest['counts']})")
    for mode, mounted in (("download", None), ("mount", mount)):
        root = Path(tempfile.mkdtemp(prefix=f"bench-{mode}-", dir=state_dir))
        done = materialize(manifest, root, WORKERS, mounted)
        size, allocated = disk_use(root)
        print(f"{mode:>8}: {done.seconds:6.2f} s, {len(manifest['images']) / done.seconds:6.0f} images/s, "
              f"{size / 2**20:8.2f} MiB of files on the job's disk, {allocated / 2**20:8.2f} MiB allocated "
              f"({done.linked} linked, {done.downloaded_bytes / 2**20:.1f} MiB downloaded)")


def version_manifest(api: ApiClient, args) -> dict:
    """The manifest of a training on a frozen version of N generated images."""
    from common.cloud import storage
    dataset = f"bench-{uuid.uuid4().hex[:6]}"
    n_val = args.n // 5
    files = sample.generated_dataset(args.n - n_val, n_val, size=(args.width, args.height))
    print(f"dropping {args.n} generated images with labels into {layout.dataset_prefix(dataset)} ...", flush=True)
    upload_all(storage.bucket(), {layout.dataset_object(dataset, k): v for k, v in files.items()})
    wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"),
             lambda d: d is not None and d["classes_known"] and d["stats"]["labeled"] == args.n,
             1200, "the dataset indexed", interval=0.5)
    version = api.session.post(f"{api.url}/datasets/{dataset}/versions", json={}, timeout=30).json()["version"]
    wait_for(lambda: api.get(f"/datasets/{dataset}/versions/{version}"), lambda v: v["status"] == "completed",
             1200, "the version frozen", interval=0.5)
    request = {"dataset": dataset, "version": version, "model": "yolov8n.yaml", "epochs": 1}
    job_id = api.session.post(f"{api.url}/training", json=request, timeout=30).json()["job_id"]
    job = wait_for_found(lambda: api.get_or_none(f"/training/{job_id}"), lambda j: bool(j.get("manifest")),
                         600, "the training's manifest", interval=0.5)
    api.session.post(f"{api.url}/training/{job_id}/cancel", timeout=30)
    return json.loads(storage.blob_at(job["manifest"]).download_as_bytes())


def mirror(manifest: dict, mount: Path) -> None:
    """The bucket's content-store objects as the mount shows them (not timed: in production they are there)."""
    from common.cloud import storage
    for image in manifest["images"]:
        target = mount / image["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        storage.blob(image["path"], image["generation"]).download_to_filename(str(target))


def disk_use(root: Path) -> tuple[int, int]:
    """The bytes of the files under root, and the bytes the file system allocated for them (whole blocks: an
    in-memory disk too holds a small file in a whole page); a link counts its own, not its target's."""
    found = [os.lstat(Path(folder) / name) for folder, _, names in os.walk(root) for name in names]
    return sum(stat.st_size for stat in found), sum(stat.st_blocks * 512 for stat in found)


if __name__ == "__main__":
    main()
