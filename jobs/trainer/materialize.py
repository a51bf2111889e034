"""Materialize a manifest to local disk: images (verified by sha256), YOLO labels, data.yaml.

Files are named by content (<sha256>.<ext>), so names from users never reach
the file system and a file already on disk with the right hash is not fetched
again (a resumed task on the same disk).

With the data bucket mounted read-only (`mount`: a Cloud Storage volume of the
Cloud Run job, /gcs/<bucket> on Vertex AI), an image whose object is its
content-store copy (a version's: immutable, named by its sha256) is a symbolic
link to the mounted object, so its bytes are read from the bucket as Ultralytics
needs them and never fill the in-memory disk. Every other image (a dataset's
object, which an upload may overwrite: a mount reads the live generation, not
the pinned one) is downloaded at its pinned generation as without a mount.
"""
from __future__ import annotations

import hashlib
import io
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import yaml
from google.api_core.exceptions import NotFound
from PIL import Image, UnidentifiedImageError

from common.cloud import storage
from common.domain import layout
from common.domain.labels import write_label
from common.platform import log

PROGRESS_EVERY = 200
SHA256 = re.compile(r"[0-9a-f]{64}")
FORMAT_EXTENSIONS = {"jpeg": "jpg", "mpo": "jpg", "tiff": "tif", "heif": "heic"}  # Pillow's format names


class MaterializeError(RuntimeError):
    pass


@dataclass(frozen=True)
class Materialized:
    data_yaml: Path
    counts: dict[str, int]  # images per split written
    skipped: list[str]      # manifest images gone from the bucket (overwritten or deleted since)
    downloaded_bytes: int
    seconds: float
    linked: int = 0         # images read through the mount (symbolic links), not downloaded


def materialize(manifest: dict, root: Path, workers: int = 16, mount: Path | None = None) -> Materialized:
    started = time.monotonic()
    images = manifest["images"]
    bucket = _Bucket(manifest["bucket"])
    done = {"n": 0}

    def fetch(image: dict):
        if mount is not None and linkable(image):
            result = _link_one(mount, image, root)
        else:
            result = _fetch_one(bucket.get(), image, root)
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
    linked = sum(1 for image in kept if mount is not None and linkable(image))
    return Materialized(data_yaml, counts, skipped, sum(size for size, _ in results),
                        time.monotonic() - started, linked)


class _Bucket:
    """The storage client's bucket, made at the first download (a set read wholly through the mount needs none)."""

    def __init__(self, name: str):
        self.name, self.bucket = name, None

    def get(self):
        if self.bucket is None:
            self.bucket = storage.client().bucket(self.name)
        return self.bucket


def linkable(image: dict) -> bool:
    """Whether the image's object can only ever hold its pinned bytes: a content-store copy, named by its
    sha256 and never overwritten, which a mount may read whatever its generation."""
    sha256 = image["sha256"]
    return bool(SHA256.fullmatch(sha256)) and image["path"] == layout.content_object(sha256)


def _link_one(mount: Path, image: dict, root: Path) -> tuple[int, bool]:
    """Link the image to its object in the mount and write its label. Returns (0 bytes downloaded, kept)."""
    source = mount / image["path"]
    try:
        with source.open("rb") as head:  # the format's header only: the pixels stay in the bucket
            target = image_file(root, image, head)
    except FileNotFoundError:
        log.warning("image gone from the content store; skipped", path=image["path"])
        return 0, False
    target.parent.mkdir(parents=True, exist_ok=True)
    link = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    link.symlink_to(source)
    link.replace(target)  # a resumed task's link, or a downloaded copy, replaced whole
    _write_label(root, image, target)
    return 0, True


def image_file(root: Path, image: dict, content: BinaryIO) -> Path:
    """<root>/images/<split>/<sha256>.<ext>: the extension of the manifest's path; a content-store copy has
    none, so its format's (Ultralytics picks image files by their extension)."""
    return root / "images" / image["split"] / f"{image['sha256']}{_extension(image, content)}"


def _extension(image: dict, content: BinaryIO) -> str:
    extension = PurePosixPath(image["path"]).suffix.lower()
    if extension:
        return extension
    try:
        with Image.open(content) as opened:
            found = (opened.format or "").lower()
    except (UnidentifiedImageError, OSError):
        found = ""
    extension = FORMAT_EXTENSIONS.get(found, found)
    if extension not in layout.IMAGE_EXTENSIONS:
        raise MaterializeError(f"{image['path']} is not an image format Ultralytics trains on ({found or 'unknown'})"
                               ": the content store or the manifest is corrupt")
    return f".{extension}"


def _on_disk(root: Path, image: dict) -> Path | None:
    """The image as an earlier attempt on this disk left it, when its bytes are the pinned ones."""
    for found in (root / "images" / image["split"]).glob(f"{image['sha256']}.*"):
        if found.is_file() and _sha256(found.read_bytes()) == image["sha256"]:
            return found
    return None


def _fetch_one(bucket, image: dict, root: Path) -> tuple[int, bool]:
    """Download one image pinned to its generation, verify it, write its label.
    Returns (bytes downloaded, kept)."""
    target = _on_disk(root, image)
    downloaded = 0
    if target is None:
        try:
            data = bucket.blob(image["path"], generation=image["generation"]).download_as_bytes()
        except NotFound:
            log.warning("image changed since the manifest; skipped", path=image["path"],
                        generation=image["generation"])
            return 0, False
        if _sha256(data) != image["sha256"]:
            raise MaterializeError(f"{image['path']} generation {image['generation']} does not match the "
                                   "sha256 in the manifest: the bucket or the manifest is corrupt")
        target = image_file(root, image, io.BytesIO(data))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # a dangling link a task with the mount left: never written through
        target.write_bytes(data)
        downloaded = len(data)
    _write_label(root, image, target)
    return downloaded, True


def _write_label(root: Path, image: dict, target: Path) -> None:
    label = root / "labels" / image["split"] / f"{target.stem}.txt"
    label.parent.mkdir(parents=True, exist_ok=True)
    label.write_bytes(write_label(image["boxes"]))


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
