"""COCO detection annotations, both ways. Pure.

Export: YOLO class id k is COCO category id k + 1 (0-based ids break CVAT and
others); `bbox` is [x, y, w, h] in pixels of the image as displayed (after its
EXIF orientation), `area` is w × h, `iscrowd` 0, and annotation ids run on
across every file of an export. The JSON is produced in pieces, so an export
never holds a whole file in memory.

Import: the categories of every annotation file, sorted by id, become the
classes in that order (YOLO id = position), so an export of ours comes back
with its ids (id - 1). A category that only names the others' supercategory
and has no annotation (Roboflow's dataset-level category 0) is not a class.
Crowd annotations and boxes with no area are left out and counted.
Annotation files are parsed whole (about 7 bytes of memory per byte of JSON),
so their sizes are checked against the import's budget before any is read.
"""
from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from common.domain.archive import ArchiveRefused
from common.domain.issues import Issue
from common.domain.labels import Row, write_label
from common.domain.layout import IMAGE_EXTENSIONS, SPLIT_ALIASES, relative_label_path

PIXEL_DECIMALS = 4
_INSTANCES = re.compile(r"(?:^|/)instances_([^/]+)\.json$")
_ROBOFLOW = re.compile(r"(?:^|/)_annotations\.coco\.json$")


# ---- export -------------------------------------------------------------------

def categories(classes: Iterable[str]) -> list[dict]:
    return [{"id": class_id + 1, "name": name, "supercategory": "none"} for class_id, name in enumerate(classes)]


def image_record(image_id: int, file_name: str, width: int, height: int) -> dict:
    return {"id": image_id, "file_name": file_name, "width": width, "height": height}


def annotation(annotation_id: int, image_id: int, row: Row, width: int, height: int) -> dict:
    """One YOLO row (class cx cy w h, normalized) as a COCO annotation in pixels."""
    class_id, cx, cy, w, h = row
    box_w, box_h = w * width, h * height
    bbox = [round(value, PIXEL_DECIMALS) for value in ((cx - w / 2) * width, (cy - h / 2) * height, box_w, box_h)]
    return {"id": annotation_id, "image_id": image_id, "category_id": int(class_id) + 1, "bbox": bbox,
            "area": round(bbox[2] * bbox[3], PIXEL_DECIMALS), "iscrowd": 0, "segmentation": []}


@dataclass(frozen=True)
class ExportedImage:
    image_id: int
    file_name: str  # relative to images/<split>/
    width: int
    height: int
    rows: tuple[Row, ...]


def instances_json(images: list[ExportedImage], classes: list[str], first_annotation_id: int,
                   description: str) -> Iterator[str]:
    """The text of one instances_<split>.json, in pieces; annotation ids from first_annotation_id."""
    yield '{"info": ' + json.dumps({"description": description}) + ', "licenses": [], "categories": ' + json.dumps(categories(classes)) + ', "images": ['
    yield from _joined(json.dumps(image_record(i.image_id, i.file_name, i.width, i.height)) for i in images)
    yield '], "annotations": ['
    yield from _joined(json.dumps(record) for record in _annotations(images, first_annotation_id))
    yield "]}"


def annotation_count(images: list[ExportedImage]) -> int:
    return sum(len(image.rows) for image in images)


def _annotations(images: list[ExportedImage], first_id: int) -> Iterator[dict]:
    next_id = first_id
    for image in images:
        for row in image.rows:
            yield annotation(next_id, image.image_id, row, image.width, image.height)
            next_id += 1


def _joined(pieces: Iterable[str]) -> Iterator[str]:
    for position, piece in enumerate(pieces):
        yield ("," if position else "") + piece


# ---- import -------------------------------------------------------------------

def is_annotation_file(name: str) -> bool:
    return bool(_INSTANCES.search(name) or _ROBOFLOW.search(name))


def split_of_annotation_file(name: str) -> str | None:
    """instances_train.json / instances_val2017.json -> train / val;
    valid/_annotations.coco.json (Roboflow) -> val; instances_default.json (CVAT) -> None."""
    found = _INSTANCES.search(name)
    if found:
        return SPLIT_ALIASES.get(re.sub(r"\d+$", "", found[1]).lower())
    folder = posixpath.basename(posixpath.dirname(name))
    return SPLIT_ALIASES.get(folder.lower())


@dataclass
class CocoImport:
    classes: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)     # archive member -> dataset-relative target
    labels: dict[str, bytes] = field(default_factory=dict)   # dataset-relative label path -> YOLO label
    issues: list[Issue] = field(default_factory=list)


def check_sizes(sizes: dict[str, int], budget: int) -> None:
    """ArchiveRefused when one annotation file, or all together ({name: bytes}), pass the bytes an import
    may parse."""
    for name, size in sorted(sizes.items()):
        if size > budget:
            raise ArchiveRefused("import_coco_too_large", f"{name} is {size} bytes of COCO JSON; an import parses "
                                 f"at most {budget} (IMPORT_COCO_MAX_BYTES): split it (one file per split, or "
                                 "the images in several archives)")
    if sum(sizes.values()) > budget:
        raise ArchiveRefused("import_coco_too_large", f"the archive's COCO files are {sum(sizes.values())} bytes "
                             f"together; an import parses at most {budget} (IMPORT_COCO_MAX_BYTES): split the "
                             "images and their annotations into several archives")


def plan(annotation_files: dict[str, bytes], members: list[str], archive: str) -> CocoImport:
    """What a COCO archive unpacks to: {annotation member: JSON bytes} and every
    member name (the enclosing folder already stripped)."""
    result = CocoImport()
    documents = {name: _load(name, data, archive, result.issues) for name, data in annotation_files.items()}
    documents = {name: doc for name, doc in documents.items() if doc is not None}
    ids = _class_ids(documents.values(), archive, result)
    index = _member_index(members)
    for name, document in sorted(documents.items()):
        _plan_file(name, document, ids, index, archive, result)
    return result


def _load(name: str, data: bytes, archive: str, issues: list[Issue]) -> dict | None:
    try:
        document = json.loads(data)
    except ValueError as exc:
        issues.append(Issue("import_coco_json", f"{name}: not JSON ({exc})", archive))
        return None
    shaped = isinstance(document, dict) and all(
        isinstance(document.get(key), list) for key in ("images", "annotations", "categories"))
    if not shaped:
        issues.append(Issue("import_coco_json", f"{name}: a COCO file needs the lists images, annotations "
                                                "and categories", archive))
        return None
    return document


def _class_ids(documents: Iterable[dict], archive: str, result: CocoImport) -> dict[int, int]:
    """{COCO category id: YOLO class id}, the classes in result.classes."""
    documents = list(documents)
    names: dict[int, str] = {}
    for document in documents:
        for category in document["categories"]:
            if not isinstance(category, dict) or not isinstance(category.get("id"), int):
                continue
            name = str(category.get("name", category["id"]))
            if names.setdefault(category["id"], name) != name:
                result.issues.append(Issue("import_coco_categories", f"category {category['id']} is "
                                           f"{names[category['id']]!r} in one file and {name!r} in another; "
                                           "the first is kept", archive))
    used = {a.get("category_id") for d in documents for a in d["annotations"] if isinstance(a, dict)}
    parents = {str(c.get("supercategory")) for d in documents for c in d["categories"] if isinstance(c, dict)}
    kept = [cid for cid in sorted(names) if cid in used or names[cid] not in parents]
    result.classes = [names[cid] for cid in kept]
    return {cid: position for position, cid in enumerate(kept)}


def _member_index(members: list[str]) -> dict[str, str]:
    """Every image member by its path, and by its file name when that is unique."""
    images = [m for m in members if m.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS]
    by_base: dict[str, list[str]] = {}
    for member in images:
        by_base.setdefault(posixpath.basename(member), []).append(member)
    index = {base: found[0] for base, found in by_base.items() if len(found) == 1}
    return {**index, **{member: member for member in images}}


def _plan_file(name: str, document: dict, ids: dict[int, int], index: dict[str, str], archive: str,
               result: CocoImport) -> None:
    split = split_of_annotation_file(name)
    rows, skipped = _rows_by_image(document, ids)
    missing = 0
    for image in document["images"]:
        if not _is_image_record(image):
            skipped += 1
            continue
        member = _find_member(image["file_name"], name, index)
        if member is None:
            missing += 1
            continue
        target = posixpath.join("images", *([split] if split else []), image["file_name"].lstrip("/"))
        result.images[member] = target
        result.labels[relative_label_path(target)] = write_label(
            _yolo_row(box, image["width"], image["height"]) for box in rows.get(image["id"], []))
    if missing:
        result.issues.append(Issue("import_coco_image_missing", f"{name}: {missing} image(s) named in the file "
                                   "are not in the archive; not unpacked", archive))
    if skipped:
        result.issues.append(Issue("import_coco_box", f"{name}: {skipped} annotation(s) or image record(s) left "
                                   "out (crowd, no area, unknown category or image, malformed)", archive))


def _is_image_record(image) -> bool:
    return (isinstance(image, dict) and isinstance(image.get("file_name"), str) and ".." not in
            image["file_name"].split("/") and all(isinstance(image.get(k), int) and image[k] > 0
                                                   for k in ("width", "height")) and "id" in image)


def _rows_by_image(document: dict, ids: dict[int, int]) -> tuple[dict, int]:
    """{image id: [(class, x, y, w, h) in pixels]} and how many annotations were left out."""
    rows: dict = {}
    skipped = 0
    for item in document["annotations"]:
        box = _pixel_box(item, ids)
        if box is None:
            skipped += 1
            continue
        rows.setdefault(item["image_id"], []).append(box)
    return rows, skipped


def _pixel_box(item, ids: dict[int, int]) -> tuple | None:
    if not isinstance(item, dict) or item.get("iscrowd") or item.get("category_id") not in ids:
        return None
    bbox = item.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
        return None
    if bbox[2] <= 0 or bbox[3] <= 0:
        return None
    return (ids[item["category_id"]], *map(float, bbox))


def _yolo_row(box: tuple, width: int, height: int) -> Row:
    """A pixel box as a YOLO row, clipped to the image."""
    class_id, x, y, w, h = box
    left, top = max(x, 0.0), max(y, 0.0)
    right, bottom = min(x + w, float(width)), min(y + h, float(height))
    return (class_id, (left + right) / 2 / width, (top + bottom) / 2 / height,
            max(right - left, 0.0) / width, max(bottom - top, 0.0) / height)


def _find_member(file_name: str, annotation_name: str, index: dict[str, str]) -> str | None:
    """The archive member a COCO file_name means: beside the annotation file, in
    images/, in images/<split folder>/, in <split folder>/, or a unique file name."""
    folder = posixpath.dirname(annotation_name)
    found = _INSTANCES.search(annotation_name)
    split_folder = found[1] if found else posixpath.basename(folder)
    parent = posixpath.dirname(folder) if posixpath.basename(folder) == "annotations" else folder
    candidates = [posixpath.join(folder, file_name), posixpath.join(parent, "images", split_folder, file_name),
                  posixpath.join(parent, split_folder, file_name), posixpath.join(parent, "images", file_name),
                  posixpath.join(parent, file_name), file_name, posixpath.basename(file_name)]
    return next((index[c] for c in (posixpath.normpath(c) for c in candidates) if c in index), None)

