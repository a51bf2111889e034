"""The training view of a snapshot: the manifest a trainer materializes.

Pure: `build` takes the request and a pinned snapshot (common.domain.snapshot)
and returns the manifest, or raises InvalidRequest saying why the dataset
cannot be trained. It decides the train/val split: as uploaded when the
dataset has val images, else by content hash.
"""
from __future__ import annotations

import time
from typing import Any

from common.domain.layout import dataset_object
from common.domain.snapshot import Snapshot, SnapshotImage
from common.domain.training_request import InvalidRequest, TrainingRequest, in_val_split

VERSION = 2  # 2: images carry their oriented width and height


def build(request: TrainingRequest, job_id: str, bucket: str, model: dict[str, Any],
          snapshot: Snapshot) -> dict[str, Any]:
    if not snapshot.classes:
        raise InvalidRequest(f"dataset {request.dataset!r} has no classes: drop a data.yaml with `names` "
                             f"at {dataset_object(request.dataset, 'data.yaml')}")
    if not any(image.labeled for image in snapshot.images):
        raise InvalidRequest(f"dataset {request.dataset!r} has no labelled images "
                             f"(excluded: {_describe(snapshot.excluded) or 'nothing indexed'})")
    split_by_hash = splits_by_hash(snapshot)
    split_rule = f"by content hash, val_fraction {request.val_fraction}" if split_by_hash else "as uploaded"
    images = [_image(image, request.val_fraction, split_by_hash) for image in snapshot.images]
    counts = {split: sum(1 for i in images if i["split"] == split) for split in ("train", "val", "test")}
    for split in ("train", "val"):
        if not counts[split]:
            raise InvalidRequest(f"dataset {request.dataset!r} has no usable {split} images "
                                 f"(splits: {counts}); add some under images/{split}/")
    return {
        "version": VERSION, "job_id": job_id, "dataset": request.dataset, "bucket": bucket,
        "created_at": time.time(), "request_id": request.request_id,
        "model": model, "train_args": request.train_args,
        "classes": list(snapshot.classes), "split_rule": split_rule, "counts": counts,
        "excluded": snapshot.excluded, "images": images,
    }


def splits_by_hash(snapshot: Snapshot) -> bool:
    """A dataset without val images is split by content hash; one with them keeps its splits."""
    return not any(image.split == "val" for image in snapshot.images)


def split_of(image: SnapshotImage, val_fraction: float, split_by_hash: bool) -> str:
    """The split an image trains in (exports of a version use the same rule)."""
    split = image.split or "train"  # images outside a split folder train
    if split_by_hash and split != "test":
        return "val" if in_val_split(image.sha256, val_fraction) else "train"
    return split


def _image(image: SnapshotImage, val_fraction: float, split_by_hash: bool) -> dict[str, Any]:
    return {"path": image.path, "generation": image.generation, "sha256": image.sha256,
            "width": image.width, "height": image.height, "split": split_of(image, val_fraction, split_by_hash),
            "boxes": [list(row) for row in image.boxes]}


def _describe(excluded: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(excluded.items()))
