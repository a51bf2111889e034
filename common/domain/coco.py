"""COCO detection annotations, both ways. Pure.

Export: YOLO class id k is COCO category id k + 1 (0-based ids break CVAT and
others); `bbox` is [x, y, w, h] in pixels of the image as displayed (after its
EXIF orientation), `area` is w × h, `iscrowd` 0, and annotation ids run on
across every file of an export. The JSON is produced in pieces, so an export
never holds a whole file in memory.

Import: which members are annotation files, the split each names, and the
bytes an import may read of them (checked before any is read); the files are
read as streams by common.domain.coco_import.
"""
from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from collections.abc import Iterable, Iterator
from typing import Any

from common.domain.archive import ArchiveRefused
from common.domain.labels import Row
from common.domain.layout import SPLIT_ALIASES

PIXEL_DECIMALS = 4
INSTANCES_FILE = re.compile(r"(?:^|/)instances_([^/]+)\.json$")
_ROBOFLOW = re.compile(r"(?:^|/)_annotations\.coco\.json$")


# ---- export -------------------------------------------------------------------

def categories(classes: Iterable[str]) -> list[dict[str, Any]]:
    return [{"id": class_id + 1, "name": name, "supercategory": "none"} for class_id, name in enumerate(classes)]


def image_record(image_id: int, file_name: str, width: int, height: int) -> dict[str, Any]:
    return {"id": image_id, "file_name": file_name, "width": width, "height": height}


def annotation(annotation_id: int, image_id: int, row: Row, width: int, height: int) -> dict[str, Any]:
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
    yield ('{"info": ' + json.dumps({"description": description}) + ', "licenses": [], "categories": '
           + json.dumps(categories(classes)) + ', "images": [')
    yield from _joined(json.dumps(image_record(i.image_id, i.file_name, i.width, i.height)) for i in images)
    yield '], "annotations": ['
    yield from _joined(json.dumps(record) for record in _annotations(images, first_annotation_id))
    yield "]}"


def annotation_count(images: list[ExportedImage]) -> int:
    return sum(len(image.rows) for image in images)


def _annotations(images: list[ExportedImage], first_id: int) -> Iterator[dict[str, Any]]:
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
    return bool(INSTANCES_FILE.search(name) or _ROBOFLOW.search(name))


def split_of_annotation_file(name: str) -> str | None:
    """instances_train.json / instances_val2017.json -> train / val;
    valid/_annotations.coco.json (Roboflow) -> val; instances_default.json (CVAT) -> None."""
    found = INSTANCES_FILE.search(name)
    if found:
        return SPLIT_ALIASES.get(re.sub(r"\d+$", "", found[1]).lower())
    folder = posixpath.basename(posixpath.dirname(name))
    return SPLIT_ALIASES.get(folder.lower())


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
