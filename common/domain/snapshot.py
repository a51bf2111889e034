"""A pinned snapshot of a dataset: every usable image, as the index holds it now.

Each image is pinned by object generation and sha256, so whoever reads it later
(a trainer, an export, a frozen version) reads exactly what was indexed while
files keep arriving. Usable: a sound image (no image issues) with a label (an
empty label is a background image), one per content (identical copies would
put the same picture twice). What is left out is counted by reason. Pure: it
works on entry documents.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from common.domain import entries
from common.domain.entries import Entry
from common.domain.labels import Row, boxes_in_range

USABLE = (entries.LABELED, entries.BACKGROUND)


@dataclass(frozen=True)
class SnapshotImage:
    path: str
    generation: int
    sha256: str
    width: int | None    # as displayed: after the EXIF orientation
    height: int | None
    split: str | None    # train, val, test, or None (outside a split folder)
    boxes: tuple[Row, ...]

    @property
    def labeled(self) -> bool:
        return bool(self.boxes)


@dataclass(frozen=True)
class Snapshot:
    dataset: str
    classes: tuple[str, ...] | None  # None: no data.yaml yet
    images: tuple[SnapshotImage, ...]
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> images left out


def take(dataset: str, classes: list[str] | None, all_entries: list[Entry]) -> Snapshot:
    class_count = len(classes) if classes is not None else None
    excluded: dict[str, int] = {}
    images, seen = [], set()
    for entry in sorted(all_entries, key=lambda e: (e["image"] or {}).get("path", "")):
        reason = _exclusion(entry, seen)
        if reason:
            excluded[reason] = excluded.get(reason, 0) + 1
            continue
        seen.add(entry["image"]["sha256"])
        images.append(_image(entry, class_count))
    return Snapshot(dataset, tuple(classes) if classes is not None else None, tuple(images), excluded)


def _exclusion(entry: Entry, seen: set[str]) -> str | None:
    if not entry.get("image"):
        return "label without image" if entry.get("label") else None
    if entry["image_issues"]:
        return "image with issues"
    if entry["status"] not in USABLE:
        return "unlabelled image"
    if entry["image"]["sha256"] in seen:
        return "duplicate content"
    return None


def _image(entry: Entry, class_count: int | None) -> SnapshotImage:
    image = entry["image"]
    boxes = boxes_in_range(entries.label_boxes(entry), class_count)
    return SnapshotImage(path=image["path"], generation=image["generation"], sha256=image["sha256"],
                         width=image.get("oriented_width"), height=image.get("oriented_height"),
                         split=entry["split"], boxes=tuple(box.row() for box in boxes))
