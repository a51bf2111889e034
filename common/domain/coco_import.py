"""A COCO archive's annotation files read as streams, into what its import unpacks. Pure.

Each file is parsed element by element (ijson), keeping of each element only the
fields the import uses: of a category its id, name and supercategory; of an
image record its id, file name and size, and only when the archive holds that
image (so no more than the archive's members); of an annotation its image,
category and box, as 5 numbers in an array. Memory grows with the boxes kept
(40 bytes each, at most MAX_BOXES_PER_IMAGE an image), not with the file: a
segmentation, a caption, a field of any size is read past, never built. The
files' sizes are checked first (common.domain.coco.check_sizes), so the boxes
too are bounded: a box takes at least ~48 bytes of JSON, so memory stays under
about twice the JSON's bytes (the boxes, then their label text), 1.7 times
measured on a 72 MiB file of 500,000 boxes.

The categories of every file, sorted by id, become the classes in that order
(YOLO id = position), so an export of ours comes back with its ids (id - 1),
and COCO 2017's 80 come back as 0..79 (person 0, bicycle 1) whatever boxes a
file holds. One kind of category is not a class: a pure grouping, whose name is
the supercategory of another category (not only its own: COCO's `person` is its
own supercategory and is a class) and that no annotation of the archive names
(Roboflow's dataset-level category 0). Crowd annotations and boxes with no area
are left out and counted.

Into a dataset that already names its classes (its data.yaml), the categories
are reconciled by name: a known name keeps its class id, a new one is appended
after the existing classes (an issue lists them), so no label already there
changes meaning. An existing list that names a class twice, or that the new
names would take past MAX_CATEGORIES, refuses the archive.
"""
from __future__ import annotations

import io
import posixpath
from array import array
from dataclasses import dataclass, field
from typing import IO, Any, TypeGuard
from collections.abc import Callable, Iterator, Sequence

import ijson

from common.domain import class_lists
from common.domain.archive import ArchiveRefused
from common.domain.coco import INSTANCES_FILE, split_of_annotation_file
from common.domain.issues import Issue
from common.domain.labels import Row, write_label
from common.domain.layout import IMAGE_EXTENSIONS, relative_label_path

SECTIONS = ("categories", "images", "annotations")
WANTED = {"categories": ("id", "name", "supercategory"), "images": ("id", "file_name", "width", "height"),
          "annotations": ("image_id", "category_id", "iscrowd")}
SCALARS = ("null", "boolean", "integer", "double", "number", "string")
MAX_CATEGORIES = 4096  # as many classes as a data.yaml may name
MAX_USED_IDS = 65_536  # distinct category ids remembered as used by annotations (only categories' ids matter)
MAX_BOXES_PER_IMAGE = 10_000  # more are left out and counted: a label file stays small
Opener = Callable[[], IO[bytes]]


@dataclass
class CocoImport:
    classes: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)     # archive member -> dataset-relative target
    labels: dict[str, bytes] = field(default_factory=dict)   # dataset-relative label path -> YOLO label
    issues: list[Issue] = field(default_factory=list)


@dataclass
class _File:
    """What the import keeps of one annotation file."""
    name: str
    categories: list[dict[str, Any]] = field(default_factory=list)
    images: list[tuple[Any, ...]] = field(default_factory=list)             # (id, file name, width, height, member)
    boxes: dict[object, array[float]] = field(default_factory=dict)  # image id -> [category, x, y, w, h] * n
    used: set[Any] = field(default_factory=set)                        # category ids annotations name
    skipped: int = 0
    missing: int = 0


def plan(annotation_files: dict[str, bytes | Opener], members: list[str], archive: str,
         existing: list[str] | None = None) -> CocoImport:
    """What a COCO archive unpacks to: {annotation member: its bytes, or a function opening it} and every
    member name (the enclosing folder already stripped); `existing`: the dataset's class names, when it has."""
    result = CocoImport()
    index = _member_index(members)
    read = [_read(name, source, index, archive, result.issues) for name, source in sorted(annotation_files.items())]
    files = [found for found in read if found is not None]
    ids = _class_ids(files, archive, result)
    if existing is not None:
        ids = _onto_existing(ids, existing, archive, result)
    for found in files:
        _plan_file(found, ids, archive, result)
    return result


# ---- reading one file ------------------------------------------------------------------

def _read(name: str, source: bytes | Opener, index: dict[str, str], archive: str,
          issues: list[Issue]) -> _File | None:
    found, seen = _File(name), set[str]()
    try:
        with (io.BytesIO(source) if isinstance(source, bytes) else source()) as stream:
            for section, record in _records(stream, seen):
                _keep(found, section, record, index)
    except ijson.JSONError as exc:
        issues.append(Issue("import_coco_json", f"{name}: not JSON ({exc})", archive))
        return None
    if seen != set(SECTIONS):
        issues.append(Issue("import_coco_json", f"{name}: a COCO file needs the lists images, annotations "
                                                "and categories", archive))
        return None
    return found


def _records(stream: IO[bytes], seen: set[str]) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(section, record) for each element of the top-level lists; a record holds only the WANTED fields (and
    an annotation's bbox, up to 5 numbers); None for an element that is not an object."""
    current: tuple[str, dict[str, Any]] | None = None
    for prefix, event, value in ijson.parse(stream, use_float=True):
        if current is None:
            if event == "start_array" and prefix in SECTIONS:
                seen.add(prefix)
            elif prefix.endswith(".item") and prefix[:-5] in SECTIONS:
                if event == "start_map":
                    current = (prefix[:-5], {})
                elif event in SCALARS or event == "start_array":
                    yield prefix[:-5], None
            continue
        section, record = current
        key = prefix[len(section) + len(".item."):] if prefix.startswith(section + ".item.") else None
        if key is None:
            if event == "end_map":
                yield section, record
                current = None
        elif key in WANTED[section] and event in SCALARS:
            record[key] = value
        elif section == "annotations":
            _box_event(record, key, event, value)


def _box_event(record: dict[str, Any], key: str, event: str, value: object) -> None:
    if key == "bbox" and event == "start_array":
        record["bbox"] = []
    elif key == "bbox" and event in SCALARS:
        record["bbox"] = None
    elif key == "bbox.item" and isinstance(record.get("bbox"), list):
        if event in ("integer", "double", "number") and len(record["bbox"]) < 5:
            record["bbox"].append(value)
        else:
            record["bbox"] = None  # a box holds 4 numbers


def _keep(found: _File, section: str, record: dict[str, Any] | None, index: dict[str, str]) -> None:
    if section == "categories":
        if isinstance(record, dict) and isinstance(record.get("id"), int):
            if len(found.categories) >= MAX_CATEGORIES:
                raise ArchiveRefused("import_coco_categories", f"{found.name} has more than {MAX_CATEGORIES} "
                                     "categories: a dataset has at most that many classes")
            found.categories.append(record)
    elif section == "images":
        _keep_image(found, record, index)
    else:
        _keep_annotation(found, record)


def _keep_image(found: _File, record: dict[str, Any] | None, index: dict[str, str]) -> None:
    if not _is_image_record(record):
        found.skipped += 1
        return
    member = _find_member(record["file_name"], found.name, index)
    if member is None:
        found.missing += 1
        return
    found.images.append((record["id"], record["file_name"], record["width"], record["height"], member))


def _keep_annotation(found: _File, record: dict[str, Any] | None) -> None:
    if not isinstance(record, dict):
        found.skipped += 1
        return
    category = record.get("category_id")
    if len(found.used) < MAX_USED_IDS and isinstance(category, (int, str)):
        found.used.add(category)
    bbox = record.get("bbox")
    image_id = record.get("image_id")
    if not (not record.get("iscrowd") and isinstance(category, int) and not isinstance(category, bool)
            and _is_box(bbox) and isinstance(image_id, (int, str))):
        found.skipped += 1
        return
    boxes = found.boxes.setdefault(image_id, array("d"))
    if len(boxes) >= 5 * MAX_BOXES_PER_IMAGE:
        found.skipped += 1
        return
    boxes.extend((category, *bbox))


def _is_box(bbox: object) -> TypeGuard[list[float]]:
    """4 numbers (_box_event kept only numbers), of some width and height."""
    return isinstance(bbox, list) and len(bbox) == 4 and bbox[2] > 0 and bbox[3] > 0


def _is_image_record(image: object) -> TypeGuard[dict[str, Any]]:
    return (isinstance(image, dict) and isinstance(image.get("file_name"), str) and ".." not in
            image["file_name"].split("/") and all(isinstance(image.get(k), int) and image[k] > 0
                                                   for k in ("width", "height"))
            and isinstance(image.get("id"), (int, str)))


# ---- the plan ------------------------------------------------------------------------

def _class_ids(files: list[_File], archive: str, result: CocoImport) -> dict[int, int]:
    """{COCO category id: YOLO class id}, the classes in result.classes."""
    names: dict[int, str] = {}
    for found in files:
        for category in found.categories:
            name = str(category.get("name", category["id"]))
            if names.setdefault(category["id"], name) != name:
                result.issues.append(Issue("import_coco_categories", f"category {category['id']} is "
                                           f"{names[category['id']]!r} in one file and {name!r} in another; "
                                           "the first is kept", archive))
    used = set().union(*(found.used for found in files))
    groupings = _groupings(files, names)
    kept = [cid for cid in sorted(names) if cid in used or cid not in groupings]
    result.classes = [names[cid] for cid in kept]
    return {cid: position for position, cid in enumerate(kept)}


def _groupings(files: list[_File], names: dict[int, str]) -> set[int]:
    """The ids of categories whose name is the supercategory of another category (by id)."""
    parents: dict[str, set[int]] = {}
    for found in files:
        for category in found.categories:
            parents.setdefault(str(category.get("supercategory")), set()).add(category["id"])
    return {cid for cid, name in names.items() if parents.get(name, set()) - {cid}}


def _onto_existing(ids: dict[int, int], existing: list[str], archive: str, result: CocoImport) -> dict[int, int]:
    """{COCO category id: class id of the dataset}: known names keep their ids, new names are appended."""
    classes, class_ids, issue = class_lists.onto_existing(result.classes, existing, archive, "import_coco_classes")
    result.issues.extend([issue] if issue else [])
    result.classes = classes
    return {cid: class_ids[at] for cid, at in ids.items()}


def _plan_file(found: _File, ids: dict[int, int], archive: str, result: CocoImport) -> None:
    split = split_of_annotation_file(found.name)
    skipped = found.skipped + sum(1 for boxes in found.boxes.values() for at in range(0, len(boxes), 5)
                                  if int(boxes[at]) not in ids)
    for image_id, file_name, width, height, member in found.images:
        target = posixpath.join("images", *([split] if split else []), file_name.lstrip("/"))
        result.images[member] = target
        boxes = found.boxes.get(image_id, ())
        result.labels[relative_label_path(target)] = write_label(_rows(boxes, ids, width, height))
    if found.missing:
        result.issues.append(Issue("import_coco_image_missing", f"{found.name}: {found.missing} image(s) named in "
                                   "the file are not in the archive; not unpacked", archive))
    if skipped:
        result.issues.append(Issue("import_coco_box", f"{found.name}: {skipped} annotation(s) or image record(s) "
                                   "left out (crowd, no area, unknown category or image, malformed)", archive))


def _rows(boxes: Sequence[float], ids: dict[int, int], width: int, height: int) -> Iterator[Row]:
    """The YOLO rows of an image's boxes ([category, x, y, w, h] * n) whose category is a class."""
    for at in range(0, len(boxes), 5):
        if int(boxes[at]) in ids:
            yield _yolo_row(ids[int(boxes[at])], boxes[at + 1], boxes[at + 2], boxes[at + 3], boxes[at + 4],
                            width, height)


def _yolo_row(class_id: int, x: float, y: float, w: float, h: float, width: int, height: int) -> Row:
    """A pixel box as a YOLO row, clipped to the image."""
    left, top = max(x, 0.0), max(y, 0.0)
    right, bottom = min(x + w, float(width)), min(y + h, float(height))
    return (class_id, (left + right) / 2 / width, (top + bottom) / 2 / height,
            max(right - left, 0.0) / width, max(bottom - top, 0.0) / height)


def _member_index(members: list[str]) -> dict[str, str]:
    """Every image member by its path, and by its file name when that is unique."""
    images = [m for m in members if m.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS]
    by_base: dict[str, list[str]] = {}
    for member in images:
        by_base.setdefault(posixpath.basename(member), []).append(member)
    index = {base: found[0] for base, found in by_base.items() if len(found) == 1}
    return {**index, **{member: member for member in images}}


def _find_member(file_name: str, annotation_name: str, index: dict[str, str]) -> str | None:
    """The archive member a COCO file_name means: beside the annotation file, in
    images/, in images/<split folder>/, in <split folder>/, or a unique file name."""
    folder = posixpath.dirname(annotation_name)
    found = INSTANCES_FILE.search(annotation_name)
    split_folder = found[1] if found else posixpath.basename(folder)
    parent = posixpath.dirname(folder) if posixpath.basename(folder) == "annotations" else folder
    candidates = [posixpath.join(folder, file_name), posixpath.join(parent, "images", split_folder, file_name),
                  posixpath.join(parent, split_folder, file_name), posixpath.join(parent, "images", file_name),
                  posixpath.join(parent, file_name), file_name, posixpath.basename(file_name)]
    return next((index[c] for c in (posixpath.normpath(c) for c in candidates) if c in index), None)
