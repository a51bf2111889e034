"""Pascal VOC reader and writer: hostile XML refused, the devkit's 1-based pixel convention, and a round trip
with supervision's own reader and writer (boxes equal to 1e-4 of the image side)."""
from __future__ import annotations

import numpy as np
import pytest
import supervision as sv
from defusedxml.ElementTree import fromstring
from supervision.dataset.formats.pascal_voc import detections_from_xml_obj, detections_to_pascal_voc

from common.domain import voc
from common.domain.voc import VocAnnotation, VocObject, VocRefused

WIDTH, HEIGHT = 640, 480


def annotation(objects: str = "", size: str = f"<width>{WIDTH}</width><height>{HEIGHT}</height>",
               filename: str = "<filename>a.jpg</filename>") -> bytes:
    return f"<annotation><folder>VOC2007</folder>{filename}<size>{size}<depth>3</depth></size>" \
           f"<segmented>0</segmented>{objects}</annotation>".encode()


def voc_object(name="dog", xmin="48", ymin="240", xmax="195", ymax="371", difficult="0") -> str:
    return f"<object><name>{name}</name><pose>Left</pose><truncated>1</truncated><difficult>{difficult}</difficult>" \
           f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"


def test_a_devkit_annotation_is_read_as_written():
    parsed = voc.parse_annotation(annotation(voc_object() + voc_object("person", "8", "12", "352", "498", "1")))
    assert parsed == VocAnnotation("a.jpg", WIDTH, HEIGHT, (
        VocObject("dog", 48, 240, 195, 371, False), VocObject("person", 8, 12, 352, 498, True)))


def test_decimal_coordinates_and_whitespace_are_read():
    parsed = voc.parse_annotation(annotation(voc_object(" cat\n", "10.5", " 20 ", "30.25", "40.0")))
    assert parsed.objects == (VocObject("cat", 10.5, 20, 30.25, 40, False),)


def test_an_image_without_objects_is_a_background_image():
    assert voc.parse_annotation(annotation()).objects == ()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<annotation><filename>&lol4;</filename><size><width>1</width><height>1</height></size></annotation>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotation><filename>&secret;</filename><size><width>1</width><height>1</height></size></annotation>"""

DTD_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE annotation SYSTEM "http://example.com/voc.dtd">
<annotation><filename>a.jpg</filename><size><width>1</width><height>1</height></size></annotation>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY, DTD_ONLY], ids=["billion-laughs", "xxe", "dtd"])
def test_dtds_and_entities_are_refused(data):
    with pytest.raises(VocRefused, match="DTD or entities"):
        voc.parse_annotation(data)


def test_a_file_over_the_limit_is_refused_before_parsing():
    padding = b"<!--" + b"x" * voc.MAX_XML_BYTES + b"-->"
    with pytest.raises(VocRefused, match="over the 1048576 bytes"):
        voc.parse_annotation(annotation() + padding)


@pytest.mark.parametrize("data, reason", [
    (b"<annotation><filename>a.jpg", "not well-formed XML"),
    (b"\xff\xfe\x00garbage", "not well-formed XML"),
    (b"<labels/>", "root element is <labels>"),
    (annotation(filename=""), "<filename> is missing"),
    (annotation(filename="<filename> </filename>"), "<filename> is missing"),
    (annotation(size="<height>480</height>"), r"<size><width> is missing"),
    (annotation(size="<width>640</width>"), r"<size><height> is missing"),
    (annotation(size="<width>0</width><height>480</height>"), "whole number of pixels"),
    (annotation(size="<width>64.5</width><height>480</height>"), "whole number of pixels"),
    (annotation(size="<width>wide</width><height>480</height>"), "not a number"),
    (annotation(voc_object(xmin="ten")), r"object 1: <bndbox><xmin> is 'ten', not a number"),
    (annotation(voc_object(ymax="nan")), "not a number"),
    (annotation(voc_object(xmax="1_000")), "not a number"),
    (annotation(voc_object(xmin="200", xmax="100")), r"xmax 100 is before xmin 200; the box is inverted"),
    (annotation(voc_object(ymin="41", ymax="40")), "a box of no size"),
    (annotation(voc_object(name="")), "object 1 has no <name>"),
    (annotation("<object><name>dog</name></object>"), "has no <bndbox>"),
    (annotation("<object><name>dog</name><bndbox><xmin>1</xmin></bndbox></object>"), "<ymin> is missing"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_what_cannot_be_read_exactly_is_refused_with_the_reason(data, reason):
    with pytest.raises(VocRefused, match=reason):
        voc.parse_annotation(data)


def test_one_based_inclusive_indices_become_yolo_rows():
    whole_image = VocAnnotation("a.jpg", WIDTH, HEIGHT, (VocObject("dog", 1, 1, WIDTH, HEIGHT, False),))
    assert voc.to_yolo_rows(whole_image, {"dog": 3}) == [(3, 0.5, 0.5, 1.0, 1.0)]
    first_pixel = VocAnnotation("a.jpg", 10, 10, (VocObject("dog", 1, 1, 1, 1, False),))
    assert voc.to_yolo_rows(first_pixel, {"dog": 0}) == [(0, 0.05, 0.05, 0.1, 0.1)]


def test_a_box_past_the_image_is_clipped_and_one_outside_it_refused():
    overshoot = VocAnnotation("a.jpg", 10, 10, (VocObject("dog", 0, -3, 12, 10, True),))
    assert voc.to_yolo_rows(overshoot, {"dog": 0}) == [(0, 0.5, 0.5, 1.0, 1.0)]
    outside = VocAnnotation("a.jpg", 10, 10, (VocObject("dog", 20, 1, 30, 5, False),))
    with pytest.raises(VocRefused, match=r"object 1 \(dog\) lies outside the 10 x 10 image"):
        voc.to_yolo_rows(outside, {"dog": 0})


def test_a_class_missing_from_the_list_is_refused_by_name():
    parsed = voc.parse_annotation(annotation(voc_object("cat")))
    with pytest.raises(VocRefused, match="class 'cat', not in the class list"):
        voc.to_yolo_rows(parsed, {"dog": 0})


ROWS = [(0, 0.5, 0.5, 1.0, 1.0), (1, 0.123457, 0.654321, 0.0321, 0.2), (0, 0.25, 0.75, 0.0016, 0.0021)]
SUBPIXEL = (0, 0.25, 0.75, 0.0005, 0.001)  # under a pixel: xmax < xmin in the file, which supervision swaps
NAMES = ["dog", "cat & <mouse>"]


def test_rows_survive_our_writer_and_reader():
    objects = voc.objects_from_rows(ROWS + [SUBPIXEL], NAMES, WIDTH, HEIGHT)
    parsed = voc.parse_annotation(voc.annotation_xml("dir/a b.jpg", WIDTH, HEIGHT, objects))
    assert (parsed.filename, parsed.width, parsed.height) == ("dir/a b.jpg", WIDTH, HEIGHT)
    back = voc.to_yolo_rows(parsed, {name: class_id for class_id, name in enumerate(NAMES)})
    np.testing.assert_allclose(np.array(back), np.array(ROWS + [SUBPIXEL]), atol=1e-4)


def test_the_writer_writes_the_devkit_convention():
    objects = voc.objects_from_rows([(0, 0.5, 0.5, 1.0, 1.0)], ["dog"], WIDTH, HEIGHT)
    box = fromstring(voc.annotation_xml("a.jpg", WIDTH, HEIGHT, objects)).find("object/bndbox")
    assert [box.find(tag).text for tag in ("xmin", "ymin", "xmax", "ymax")] == ["1", "1", "640", "480"]


def test_characters_xml_cannot_hold_do_not_make_an_unreadable_file():
    objects = (VocObject("bell\x07", 1, 1, 2, 2, False),)
    parsed = voc.parse_annotation(voc.annotation_xml("a\x01.jpg", 4, 4, objects))
    assert (parsed.filename, parsed.objects[0].name) == ("a\ufffd.jpg", "bell\ufffd")


def to_xyxy_normalized(rows) -> np.ndarray:
    rows = np.array(rows, dtype=float)
    return np.stack([rows[:, 1] - rows[:, 3] / 2, rows[:, 2] - rows[:, 4] / 2,
                     rows[:, 1] + rows[:, 3] / 2, rows[:, 2] + rows[:, 4] / 2], axis=1)


def test_supervision_reads_what_the_writer_writes():
    objects = voc.objects_from_rows(ROWS, NAMES, WIDTH, HEIGHT)
    root = fromstring(voc.annotation_xml("a.jpg", WIDTH, HEIGHT, objects))
    detections, classes = detections_from_xml_obj(root, [], (WIDTH, HEIGHT))
    assert [classes[class_id] for class_id in detections.class_id] == [NAMES[row[0]] for row in ROWS]
    normalized = detections.xyxy / np.array([WIDTH, HEIGHT, WIDTH, HEIGHT])
    np.testing.assert_allclose(normalized, to_xyxy_normalized(ROWS), atol=1e-4)


def test_we_read_what_supervision_writes():
    xyxy = np.array([[0, 0, 640, 480], [10.4, 20.6, 100.2, 200.9], [300, 100, 301, 101]], dtype=float)
    detections = sv.Detections(xyxy=xyxy, class_id=np.array([1, 0, 1]))
    xml = detections_to_pascal_voc(detections, NAMES, "a.jpg", (HEIGHT, WIDTH, 3)).encode()
    parsed = voc.parse_annotation(xml)
    rows = voc.to_yolo_rows(parsed, {name: class_id for class_id, name in enumerate(NAMES)})
    assert [row[0] for row in rows] == [1, 0, 1]
    # supervision rounds to whole pixels when it writes: equal to half a pixel, exact on whole-pixel boxes
    np.testing.assert_allclose(to_xyxy_normalized(rows) * [WIDTH, HEIGHT, WIDTH, HEIGHT], xyxy, atol=0.5)
    np.testing.assert_allclose(to_xyxy_normalized(rows)[[0, 2]], xyxy[[0, 2]] / [WIDTH, HEIGHT, WIDTH, HEIGHT],
                               atol=1e-9)
