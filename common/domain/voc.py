"""Pascal VOC annotation files: one XML file per image, boxes in pixels. The one
reader (parse_annotation) and the one writer (annotation_xml) of them here.

Pixel convention (the VOC devkit's, as supervision 0.31.2 reads and writes it):
`<bndbox>` holds 1-based inclusive pixel indices, so a box whose continuous
0-based edges are left, top, right, bottom (what a YOLO row describes, times the
image size) is written xmin = left + 1, ymin = top + 1, xmax = right,
ymax = bottom. A box over the whole of a 640 x 480 image is 1 1 640 480.
supervision's from_pascal_voc subtracts 1 from xmin/ymin only, exactly the
inverse; Ultralytics' VOC.yaml conversion (1 off the centre, width xmax - xmin)
differs from both by up to a pixel and is not followed.

The writer keeps sub-pixel boxes: coordinates are written with up to 3 decimals
(whole numbers stay whole), so a YOLO box survives the round trip through our
writer and supervision's reader (or the reverse) to 1e-4 of the image side.
Readers that take integers only (the original devkit) truncate them. A box
under one pixel wide is written with xmax < xmin (still a positive width in this
convention); our reader keeps it, supervision swaps the two.

XML is hostile: files over MAX_XML_BYTES are refused before parsing, and
defusedxml refuses DTDs, entities and external references (billion laughs,
XXE). Anything this reader cannot map to boxes exactly is refused with
VocRefused, whose message says what is wrong and what to do.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

import defusedxml
import defusedxml.ElementTree

from common.domain.labels import MAX_LABEL_ROWS, Row

MAX_XML_BYTES = 1024 * 1024
MAX_SIDE = 1_000_000  # pixels; an image side beyond this is a broken size, not an image
COORDINATE_DECIMALS = 3
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class VocRefused(ValueError):
    """An annotation file that cannot be read exactly; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class VocObject:
    name: str
    xmin: float  # 1-based inclusive pixel indices, as written in <bndbox>
    ymin: float
    xmax: float
    ymax: float
    difficult: bool


@dataclass(frozen=True)
class VocAnnotation:
    filename: str
    width: int
    height: int
    objects: tuple[VocObject, ...]


# ---- reading -------------------------------------------------------------------------

def parse_annotation(data: bytes) -> VocAnnotation:
    if len(data) > MAX_XML_BYTES:
        raise VocRefused(f"the annotation file is {len(data)} bytes, over the {MAX_XML_BYTES} bytes a Pascal VOC "
                         "file may have; split it or export the boxes as YOLO labels")
    root = _root(data)
    width, height = _size(root)
    objects = root.findall("object")
    if len(objects) > MAX_LABEL_ROWS:
        raise VocRefused(f"the annotation has {len(objects)} objects, over the {MAX_LABEL_ROWS} an image may have")
    return VocAnnotation(_filename(root), width, height,
                         tuple(_object(element, number) for number, element in enumerate(objects, start=1)))


def _root(data: bytes) -> Element:
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException as error:
        raise VocRefused(f"the XML declares a DTD or entities ({type(error).__name__}), which a Pascal VOC file "
                         "never needs and this reader refuses; remove the <!DOCTYPE> and entity references") from None
    except ParseError as error:
        raise VocRefused(f"the file is not well-formed XML ({error}); re-export it from the tool that made it") \
            from None
    if root.tag != "annotation":
        raise VocRefused(f"the root element is <{root.tag}>, not <annotation>: this is not a Pascal VOC file")
    return root


def _filename(root: Element) -> str:
    filename = _text(root, "filename")
    if not filename:
        raise VocRefused("<filename> is missing or empty: a Pascal VOC file must name its image; "
                         "add <filename>image.jpg</filename>")
    return filename


def _size(root: Element) -> tuple[int, int]:
    return _side(root, "width"), _side(root, "height")


def _side(root: Element, name: str) -> int:
    text = _text(root, f"size/{name}")
    if not text:
        raise VocRefused(f"<size><{name}> is missing: boxes in pixels cannot be placed without the image size; "
                         "re-export with image sizes")
    value = _number(text, f"size/{name}")
    if not value.is_integer() or not 1 <= value <= MAX_SIDE:
        raise VocRefused(f"<size><{name}> is {text!r}; it must be a whole number of pixels from 1 to {MAX_SIDE}")
    return int(value)


def _object(element: Element, number: int) -> VocObject:
    where = f"object {number}"
    name = _text(element, "name")
    if not name:
        raise VocRefused(f"{where} has no <name>: every object needs its class name")
    box = element.find("bndbox")
    if box is None:
        raise VocRefused(f"{where} ({name}) has no <bndbox>; only box annotations are read")
    xmin, ymin, xmax, ymax = (_coordinate(box, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax"))
    _check_extent(where, name, "x", xmin, xmax)
    _check_extent(where, name, "y", ymin, ymax)
    return VocObject(name, xmin, ymin, xmax, ymax, _text(element, "difficult").lower() in ("1", "true"))


def _coordinate(box: Element, tag: str, where: str) -> float:
    text = _text(box, tag)
    if not text:
        raise VocRefused(f"{where}: <bndbox><{tag}> is missing")
    return _number(text, f"{where}: <bndbox><{tag}>")


def _check_extent(where: str, name: str, axis: str, low: float, high: float) -> None:
    """In 1-based inclusive indices a box has no extent when its max is at or below min - 1."""
    if high < low - 1:
        raise VocRefused(f"{where} ({name}): {axis}max {_pixel(high)} is before {axis}min {_pixel(low)}; "
                         "the box is inverted: swap the two in the file")
    if high == low - 1:
        raise VocRefused(f"{where} ({name}): {axis}max {_pixel(high)} is {axis}min - 1, a box of no size; "
                         "remove the object or give it a size")


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or "_" in text:
        raise VocRefused(f"{where} is {text[:40]!r}, not a number")
    return value


def _text(element: Element, path: str) -> str:
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""


# ---- YOLO rows -------------------------------------------------------------------------

def to_yolo_rows(annotation: VocAnnotation, class_ids: dict[str, int]) -> list[Row]:
    """The objects as YOLO rows, in file order. A box reaching past the image is clipped to
    it (exporters often overshoot by a pixel); one wholly outside it is refused."""
    rows = []
    for number, voc_object in enumerate(annotation.objects, start=1):
        if voc_object.name not in class_ids:
            raise VocRefused(f"object {number} has class {voc_object.name!r}, not in the class list "
                             f"({', '.join(class_ids) or 'empty'}); add it to the class list first")
        rows.append(_row(voc_object, class_ids[voc_object.name], annotation.width, annotation.height, number))
    return rows


def _row(voc_object: VocObject, class_id: int, width: int, height: int, number: int) -> Row:
    left, right = max(voc_object.xmin - 1, 0), min(voc_object.xmax, width)
    top, bottom = max(voc_object.ymin - 1, 0), min(voc_object.ymax, height)
    if right <= left or bottom <= top:
        raise VocRefused(f"object {number} ({voc_object.name}) lies outside the {width} x {height} image; "
                         "fix its <bndbox> or the image <size>")
    return (class_id, (left + right) / 2 / width, (top + bottom) / 2 / height,
            (right - left) / width, (bottom - top) / height)


def objects_from_rows(rows: Iterable[Row], class_names: list[str], width: int, height: int) -> tuple[VocObject, ...]:
    """YOLO rows (class cx cy w h, normalized) as VOC objects of a width x height image."""
    objects = []
    for class_id, cx, cy, w, h in rows:
        if not 0 <= class_id < len(class_names):
            raise ValueError(f"class id {class_id} has no name among {len(class_names)} classes")
        left, top = (cx - w / 2) * width, (cy - h / 2) * height
        objects.append(VocObject(class_names[class_id], left + 1, top + 1, left + w * width, top + h * height,
                                 False))
    return tuple(objects)


# ---- writing ---------------------------------------------------------------------------

def annotation_xml(filename: str, width: int, height: int, objects: Iterable[VocObject]) -> bytes:
    """The annotation file of one image, as LabelImg, CVAT and supervision write it. Characters
    XML 1.0 cannot hold (control characters) become U+FFFD rather than an unreadable file."""
    root = Element("annotation")
    _child(root, "folder", "JPEGImages")
    _child(root, "filename", filename)
    size = SubElement(root, "size")
    _child(size, "width", str(width))
    _child(size, "height", str(height))
    _child(size, "depth", "3")
    _child(root, "segmented", "0")
    for voc_object in objects:
        _write_object(root, voc_object)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(root, encoding="unicode").encode() + b"\n"


def _write_object(root: Element, voc_object: VocObject) -> None:
    element = SubElement(root, "object")
    _child(element, "name", voc_object.name)
    _child(element, "pose", "Unspecified")
    _child(element, "truncated", "0")
    _child(element, "difficult", "1" if voc_object.difficult else "0")
    box = SubElement(element, "bndbox")
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        _child(box, tag, _pixel(getattr(voc_object, tag)))


def _child(parent: Element, tag: str, text: str) -> None:
    SubElement(parent, tag).text = _XML_INVALID.sub("\ufffd", text)


def _pixel(value: float) -> str:
    text = f"{value:.{COORDINATE_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
