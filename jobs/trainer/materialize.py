"""Materialize a manifest to local disk: images (verified by sha256), YOLO labels, data.yaml.

Files are named by content (<sha256>.<ext>), so names from users never reach
the file system and a file already on disk with the right hash is not fetched
again (a resumed task on the same disk).
"""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml
from google.api_core.exceptions import NotFound

from common.cloud import storage
from common.domain.labels import write_label
from common.platform import log

PROGRESS_EVERY = 200


class MaterializeError(RuntimeError):
    pass


@dataclass(frozen=True)
class Materialized:
    data_yaml: Path
    counts: dict[str, int]  # images per split written
    skipped: list[str]      # manifest images gone from the bucket (overwritten or deleted since)
    downloaded_bytes: int
    seconds: float


def materialize(manifest: dict, root: Path, workers: int = 16) -> Materialized:
    started = time.monotonic()
    images = manifest["images"]
    bucket = storage.client().bucket(manifest["bucket"])
    done = {"n": 0}

    def fetch(image: dict):
        result = _fetch_one(bucket, image, root)
        done["n"] += 1  # progress only; approximate under threads is fine
        if done["n"] % PROGRESS_EVERY == 0:
            log.info("materializing", done=done["n"], total=len(images))
        return result

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(fetch, images))
    skipped = [image["path"] for image, (_, ok) in zip(images, results) if not ok]
    kept = [image for image, (_, ok) in zip(images, results) if ok]
    counts = {split: sum(1 for i in kept if i["split"] == split) for split in ("train", "val", "test")}
    if not counts["train"] or not counts["val"]:
        raise MaterializeError(f"after skipping {len(skipped)} images changed since the manifest, "
                               f"no train or val images are left ({counts}); request training again")
    data_yaml = _write_data_yaml(root, manifest["classes"], counts)
    return Materialized(data_yaml, counts, skipped, sum(size for size, _ in results),
                        time.monotonic() - started)


def image_file(root: Path, image: dict) -> Path:
    extension = PurePosixPath(image["path"]).suffix.lower()
    return root / "images" / image["split"] / f"{image['sha256']}{extension}"


def _fetch_one(bucket, image: dict, root: Path) -> tuple[int, bool]:
    """Download one image pinned to its generation, verify it, write its label.
    Returns (bytes downloaded, kept)."""
    target = image_file(root, image)
    downloaded = 0
    if not (target.exists() and _sha256(target.read_bytes()) == image["sha256"]):
        try:
            data = bucket.blob(image["path"], generation=image["generation"]).download_as_bytes()
        except NotFound:
            log.warning("image changed since the manifest; skipped", path=image["path"],
                        generation=image["generation"])
            return 0, False
        if _sha256(data) != image["sha256"]:
            raise MaterializeError(f"{image['path']} generation {image['generation']} does not match the "
                                   "sha256 in the manifest: the bucket or the manifest is corrupt")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        downloaded = len(data)
    label = root / "labels" / image["split"] / f"{target.stem}.txt"
    label.parent.mkdir(parents=True, exist_ok=True)
    label.write_bytes(write_label(image["boxes"]))
    return downloaded, True


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_data_yaml(root: Path, classes: list[str], counts: dict[str, int]) -> Path:
    spec = {"path": str(root.resolve()), "train": "images/train", "val": "images/val",
            "names": dict(enumerate(classes))}
    if counts["test"]:
        spec["test"] = "images/test"
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
