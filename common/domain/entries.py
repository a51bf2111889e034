"""The entry document: where an image and its label meet, and what follows from them.

Pure functions over plain dicts, so the rules are unit-tested without a cloud.
An entry holds primary facts (the image, the label, their tombstones, the
duplicate group) and fields derived from them and the dataset's class count.
Every derived field that statistics sum is written on every entry, because a
Firestore aggregation with several sums only counts documents that have all
the summed fields.
"""
from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any, TypedDict, cast

from common.domain import generations
from common.domain.issues import Issue
from common.domain.labels import Box, boxes_in_range, class_issues

LABELED, BACKGROUND, UNLABELED, LABEL_ONLY, ABSENT = (
    "labeled", "background", "unlabeled", "label_only", "absent")
SPLIT_FLAGS = {"train": "f_train", "val": "f_val", "test": "f_test", None: "f_nosplit"}
# Summed by statistics; present on every entry (see module docstring).
SUMMED_FIELDS = ("f_image", "f_labeled", "f_background", "f_unlabeled", "f_label_only",
                 "f_train", "f_val", "f_test", "f_nosplit", "f_duplicate", "n_boxes", "issue_count")
# The dataset's histograms, exact at any size because they are sums too: an image adds 1 to the bucket of its
# box count, and each box adds 1 to the bucket of its size (the square root of its share of the image's area).
BOXES_PER_IMAGE_EDGES = (0, 1, 2, 3, 5, 10, 20)
BOX_SIZE_EDGES = (0.0, 0.05, 0.1, 0.2, 0.4, 0.7)
HISTOGRAM_FIELDS = (tuple(f"h_boxes{i}" for i in range(len(BOXES_PER_IMAGE_EDGES)))
                    + tuple(f"h_size{i}" for i in range(len(BOX_SIZE_EDGES))))


class ImageRecord(TypedDict):
    """What ingest learned of one image generation."""
    path: str
    generation: int
    sha256: str
    size: int | None
    format: str | None
    width: int | None
    height: int | None
    orientation: int | None
    oriented_width: int | None
    oriented_height: int | None
    thumbnail: str | None
    thumbnail_generation: int | None  # what ingest wrote: the generation an orphaned thumbnail is deleted at
    exif: dict[str, Any] | None  # imaging.exif_facts: taken_at, camera_make, camera_model, gps


class LabelRecord(TypedDict):
    """One label file generation: its valid boxes (Box.to_dict)."""
    path: str
    generation: int
    boxes: list[dict[str, Any]]


class Entry(TypedDict, total=False):
    """The primary facts of an entry; `derive` adds the derived fields."""
    key: str
    split: str | None
    image: ImageRecord | None          # the image shown: the newest live one of image_sources
    image_tombstone: int               # an entry indexed before image_sources: its one image's tombstone
    image_issues: list[dict[str, Any]]
    image_sources: dict[str, dict[str, Any]]     # every image file of this name, each with its own guard (see below)
    sources_kept: bool                 # image_sources is complete (entries indexed before it had none)
    label: LabelRecord | None
    label_tombstone: int
    label_issues: list[dict[str, Any]]
    duplicates: list[str]
    duplicate_issues: list[dict[str, Any]]


class IndexedEntry(Entry, total=False):
    """An entry as the index stores it: `derive` has added its derived fields (the ones read by name here)."""
    status: str


def new_entry(key: str, split: str | None) -> Entry:
    return {"key": key, "split": split, "image": None, "image_tombstone": 0, "image_issues": [],
            "image_sources": {}, "sources_kept": True,
            "label": None, "label_tombstone": 0, "label_issues": [],
            "duplicates": [], "duplicate_issues": []}


def is_stale(entry: Entry, part: str, generation: int, deleting: bool = False, path: str | None = None) -> bool:
    """True when an event for `part` ("image" or "label") at `generation` is
    already applied or superseded (common.domain.generations). An image event is
    judged against its own file (`path`, required): several image files may share a name."""
    if part == "image":
        return _is_stale_image(entry, _image_path(path), generation, deleting)
    label = entry.get("label")
    held = label.get("generation", 0) if label else 0
    return generations.is_stale(generation, held, entry.get("label_tombstone", 0), deleting)


def _image_path(path: str | None) -> str:
    if path is None:
        raise ValueError("an image event names its file: several image files may share an entry")
    return path


# ---- several image files of one name ------------------------------------------------------------------------
# a.jpg and a.png in one folder share the label a.txt and so one entry. Each image file keeps its own guard and
# record under image_sources; the entry shows the newest live one, and while more than one lives each of them
# has an `image_name_collision` issue. Deleting the shown one shows the next.

def source_key(path: str) -> str:
    """A map key for an image file's path that is also a plain Firestore field name."""
    return "p" + hashlib.sha1(path.encode()).hexdigest()[:24]


def image_sources(entry: Entry) -> dict[str, dict[str, Any]]:
    """{source_key: {"path", "held", "tombstone", "record", "issues"}}, "held" 0 once deleted; for an entry
    indexed before sources were kept, its one shown image. The shown image's record and issues are stored
    once, as the entry's `image` and `image_issues`, and filled in here."""
    image = entry.get("image")
    if not entry.get("sources_kept"):
        return {source_key(image["path"]): _source(image["path"], image["generation"], 0, image,
                                                   entry.get("image_issues", []))} if image else {}
    sources = {key: dict(source) for key, source in (entry.get("image_sources") or {}).items()}
    if image and source_key(image["path"]) in sources:
        sources[source_key(image["path"])].update(record=image, issues=entry.get("image_issues", []))
    return sources


def _source(path: str, held: int, tombstone: int, record: ImageRecord | None,
            issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {"path": path, "held": held, "tombstone": tombstone, "record": record, "issues": issues}


def _is_stale_image(entry: Entry, path: str, generation: int, deleting: bool) -> bool:
    source = image_sources(entry).get(source_key(path))
    if source is not None:
        return generations.is_stale(generation, source["held"], source["tombstone"], deleting)
    floor = 0 if entry.get("sources_kept") else entry.get("image_tombstone", 0)  # an older entry's one tombstone
    return generations.is_stale(generation, 0, floor, deleting)


def _set_image(entry: Entry, record: ImageRecord, issues: list[Issue]) -> None:
    sources = image_sources(entry)
    tombstone = sources.get(source_key(record["path"]), {}).get("tombstone", 0)
    sources[source_key(record["path"])] = _source(record["path"], record["generation"], tombstone, record,
                                                  [i.to_dict() for i in issues])
    _show_newest(entry, sources)


def _delete_image(entry: Entry, path: str, generation: int) -> None:
    sources = image_sources(entry)
    tombstone = max(sources.get(source_key(path), {}).get("tombstone", 0), generation)
    sources[source_key(path)] = _source(path, 0, tombstone, None, [])
    _show_newest(entry, sources)


def _show_newest(entry: Entry, sources: dict[str, dict[str, Any]]) -> None:
    shown = max((source for source in sources.values() if source["held"]), key=lambda source: source["held"],
                default=None)
    entry["image"] = shown["record"] if shown else None
    entry["image_issues"] = shown["issues"] if shown else []
    entry["image_sources"] = {key: ({**source, "record": None, "issues": []} if source is shown else source)
                              for key, source in sources.items()}
    entry["sources_kept"] = True


def live_image_paths(entry: Entry) -> list[str]:
    return sorted(source["path"] for source in image_sources(entry).values() if source["held"])


def _name_collisions(entry: Entry, label_path: str) -> list[dict[str, Any]]:
    paths = live_image_paths(entry)
    if len(paths) < 2:
        return []
    image = entry.get("image")
    shown = image.get("path") if image else None
    label = label_path or entry["key"] + ".txt"
    return [Issue("image_name_collision",
                  f"{', '.join(other for other in paths if other != path)} has the same name: "
                  f"{len(paths)} images share the label {label} and one entry, which shows the newest "
                  f"({shown}); rename all but one", path).to_dict() for path in paths]


def set_part(entry: Entry, part: str, record: ImageRecord | LabelRecord, issues: list[Issue]) -> None:
    """Index a file as the entry's label, or as one of its image files (record["path"] tells which)."""
    if part == "image":
        return _set_image(entry, cast(ImageRecord, record), issues)  # `part` says which record it is
    entry["label"] = cast(LabelRecord, record)
    entry["label_issues"] = [i.to_dict() for i in issues]


def delete_part(entry: Entry, part: str, generation: int, path: str | None = None) -> None:
    """Forget the label, or the image file at `path` (required for an image), deleted at `generation`."""
    if part == "image":
        return _delete_image(entry, _image_path(path), generation)
    entry["label"] = None
    entry["label_issues"] = []
    entry["label_tombstone"] = max(entry.get("label_tombstone", 0), generation)


def label_boxes(entry: Entry) -> list[Box]:
    label = entry.get("label")
    return [Box.from_dict(b) for b in label["boxes"]] if label else []


def derive(entry: Entry, class_count: int | None) -> dict[str, Any]:
    """Return the entry with every derived field recomputed."""
    image, label = entry["image"], entry["label"]
    has_image, has_label = image is not None, label is not None
    boxes = label_boxes(entry)
    in_range = boxes_in_range(boxes, class_count)
    label_path = label.get("path", "") if label else ""
    out_of_range = [i.to_dict() for i in class_issues(boxes, class_count, label_path)]
    status = _status(has_image, has_label, in_range, entry["label_issues"], boxes)
    orphan = ([Issue("label_without_image", "no image in the dataset has this label's name "
                     "(the label of images/…/x.jpg is labels/…/x.txt)", label_path).to_dict()]
              if status == LABEL_ONLY else [])
    issues = (entry["image_issues"] + entry["label_issues"] + out_of_range + orphan + entry["duplicate_issues"]
              + _name_collisions(entry, label_path))
    counted = in_range if has_image else []
    class_counts: dict[str, int] = {}
    for box in counted:
        class_counts[f"c{box.class_id}"] = class_counts.get(f"c{box.class_id}", 0) + 1
    derived = {
        "present": has_image or has_label, "has_image": has_image, "has_label": has_label,
        "status": status, "sha256": image.get("sha256") if image else None,
        "class_issues": out_of_range + orphan, "issues": issues,
        "issue_count": len(issues), "has_issues": bool(issues),
        "class_ids": sorted({b.class_id for b in counted}), "class_counts": class_counts,
        "n_boxes": len(counted), "f_image": int(has_image), "f_duplicate": int(bool(entry["duplicates"]) and has_image),
        "has_proposals": bool(entry.get("proposals")),  # auto-labelling's, kept beside the label (domain.proposals)
    }
    for name in (LABELED, BACKGROUND, UNLABELED, LABEL_ONLY):
        derived[f"f_{name}"] = int(status == name)
    for split, flag in SPLIT_FLAGS.items():
        derived[flag] = int(has_image and entry["split"] == split)
    return {**entry, **derived, **histogram_fields(has_image, counted)}


def histogram_fields(has_image: bool, counted: list[Box]) -> dict[str, int]:
    """The entry's share of the dataset's two histograms (see HISTOGRAM_FIELDS)."""
    fields = dict.fromkeys(HISTOGRAM_FIELDS, 0)
    if has_image:
        fields[f"h_boxes{bucket(len(counted), BOXES_PER_IMAGE_EDGES)}"] = 1
    for box in counted:
        fields[f"h_size{bucket(math.sqrt(max(box.w * box.h, 0.0)), BOX_SIZE_EDGES)}"] += 1
    return fields


def bucket(value: float, edges: tuple[Any, ...]) -> int:
    """The index of the last edge at or below `value` (edges ascending from the smallest possible value)."""
    return max(i for i, edge in enumerate(edges) if value >= edge)


def bucket_names(edges: tuple[Any, ...]) -> list[str]:
    """How a histogram's buckets read: "0", "1", "3–4" for whole numbers, "0.05–0.1" for fractions, "≥ 20"."""
    whole = all(isinstance(edge, int) for edge in edges)
    names = []
    for low, high in itertools.pairwise(edges):
        names.append(str(low) if whole and high == low + 1 else f"{low}–{high - 1}" if whole else f"{low:g}–{high:g}")
    return names + [f"≥ {edges[-1]:g}"]


def _status(has_image: bool, has_label: bool, in_range: list[Any], label_issues: list[Any], boxes: list[Any]) -> str:
    if not has_image:
        return LABEL_ONLY if has_label else ABSENT
    if in_range:
        return LABELED
    if has_label and not boxes and not label_issues:
        return BACKGROUND
    return UNLABELED
