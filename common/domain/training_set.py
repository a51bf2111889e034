"""The training manifest: a pinned snapshot of a dataset, built from its index entries.

Pure: `build` takes the request, the classes and the entry documents and returns
the manifest, or raises InvalidRequest saying why the dataset cannot be trained.
Each image is pinned by object generation and sha256, so a run reads exactly
what was indexed while files keep arriving, and a rerun reads the same.
"""
from __future__ import annotations

import time

from common.domain import entries
from common.domain.labels import boxes_in_range
from common.domain.training_request import InvalidRequest, TrainingRequest, in_val_split

VERSION = 1
USABLE = (entries.LABELED, entries.BACKGROUND)


def build(request: TrainingRequest, job_id: str, bucket: str, classes: list[str] | None,
          model: dict, all_entries: list[dict]) -> dict:
    if not classes:
        raise InvalidRequest(f"dataset {request.dataset!r} has no classes: drop a data.yaml with `names` "
                             f"at datasets/{request.dataset}/data.yaml")
    usable, excluded = _usable(all_entries)
    if not any(e["status"] == entries.LABELED for e in usable):
        raise InvalidRequest(f"dataset {request.dataset!r} has no labelled images "
                             f"(excluded: {_describe(excluded) or 'nothing indexed'})")
    split_rule = "as uploaded" if any(e["split"] == "val" for e in usable) else \
        f"by content hash, val_fraction {request.val_fraction}"
    images = [_image(e, len(classes), request.val_fraction, split_rule != "as uploaded") for e in usable]
    counts = {split: sum(1 for i in images if i["split"] == split) for split in ("train", "val", "test")}
    for split in ("train", "val"):
        if not counts[split]:
            raise InvalidRequest(f"dataset {request.dataset!r} has no usable {split} images "
                                 f"(splits: {counts}); add some under images/{split}/")
    return {
        "version": VERSION, "job_id": job_id, "dataset": request.dataset, "bucket": bucket,
        "created_at": time.time(), "request_id": request.request_id,
        "model": model, "train_args": request.train_args,
        "classes": list(classes), "split_rule": split_rule, "counts": counts, "excluded": excluded,
        "images": images,
    }


def _usable(all_entries: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """Entries with a sound image and a label (or an empty one: background), one per
    content: identical copies would put the same picture in train and val."""
    excluded: dict[str, int] = {}
    usable, seen = [], set()
    for entry in sorted(all_entries, key=lambda e: (e["image"] or {}).get("path", "")):
        reason = _exclusion(entry, seen)
        if reason:
            excluded[reason] = excluded.get(reason, 0) + 1
            continue
        seen.add(entry["image"]["sha256"])
        usable.append(entry)
    return usable, excluded


def _exclusion(entry: dict, seen: set[str]) -> str | None:
    if not entry.get("image"):
        return "label without image" if entry.get("label") else None
    if entry["image_issues"]:
        return "image with issues"
    if entry["status"] not in USABLE:
        return "unlabelled image"
    if entry["image"]["sha256"] in seen:
        return "duplicate content"
    return None


def _image(entry: dict, class_count: int, val_fraction: float, split_by_hash: bool) -> dict:
    image = entry["image"]
    split = entry["split"] if entry["split"] in ("train", "val", "test") else "train"
    if split_by_hash and split != "test":
        split = "val" if in_val_split(image["sha256"], val_fraction) else "train"
    boxes = boxes_in_range(entries.label_boxes(entry), class_count)
    return {"path": image["path"], "generation": image["generation"], "sha256": image["sha256"],
            "split": split, "boxes": [[b.class_id, b.cx, b.cy, b.w, b.h] for b in boxes]}


def _describe(excluded: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(excluded.items()))

