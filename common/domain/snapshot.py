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
from common.domain.entries import ImageRecord, IndexedEntry
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


def take(dataset: str, classes: list[str] | None, all_entries: list[IndexedEntry]) -> Snapshot:
    class_count = len(classes) if classes is not None else None
    excluded: dict[str, int] = {}
    images: list[SnapshotImage] = []
    seen: set[str] = set()
    for entry in sorted(all_entries, key=_image_path):
        image = entry.get("image")
        reason = _exclusion(entry, seen)
        if reason:
            excluded[reason] = excluded.get(reason, 0) + 1
        elif image:  # an entry with neither image nor label is no image and no exclusion
            seen.add(image["sha256"])
            images.append(_image(entry, image, class_count))
    return Snapshot(dataset, tuple(classes) if classes is not None else None, tuple(images), excluded)


def _image_path(entry: IndexedEntry) -> str:
    image = entry.get("image")
    return image.get("path", "") if image else ""


def _exclusion(entry: IndexedEntry, seen: set[str]) -> str | None:
    image = entry.get("image")
    if not image:
        return "label without image" if entry.get("label") else None
    if entry["image_issues"]:
        return "image with issues"
    if entry["status"] not in USABLE:
        return "unlabelled image"
    if image["sha256"] in seen:
        return "duplicate content"
    return None


def _image(entry: IndexedEntry, image: ImageRecord, class_count: int | None) -> SnapshotImage:
    boxes = boxes_in_range(entries.label_boxes(entry), class_count)
    return SnapshotImage(path=image["path"], generation=image["generation"], sha256=image["sha256"],
                         width=image.get("oriented_width"), height=image.get("oriented_height"),
                         split=entry["split"], boxes=tuple(box.row() for box in boxes))
