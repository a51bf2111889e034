"""What an export states it holds (images and boxes per class, per split) and where a Pascal VOC export puts
each file. Pure: the plan of a frozen version, no stack."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from defusedxml.ElementTree import fromstring
from supervision.dataset.formats.pascal_voc import detections_from_xml_obj

from common.domain import exports, request_bodies, voc
from tests.unit.test_training_set import entry
from tests.unit.test_versions import frozen

PERSON, BUS = (0, 0.5, 0.5, 0.2, 0.2), (1, 0.25, 0.75, 0.1, 0.3)


def sha(n: int) -> str:
    return hashlib.sha256(bytes([n])).hexdigest()


def plan_of(*entries, background=True) -> exports.ExportPlan:
    return exports.plan(frozen(list(entries)), background)


def test_boxes_are_counted_per_class_in_each_split():
    plan = plan_of(entry("a", "train", sha(1), boxes=(PERSON, BUS, (0, 0.1, 0.1, 0.1, 0.1))),
                   entry("b", "train", sha(2), boxes=(BUS,)), entry("c", "val", sha(3), boxes=(PERSON,)),
                   entry("d", "val", sha(4), boxes=()))
    assert plan.splits == {"train": 2, "val": 2}
    assert plan.boxes_per_class == {"train": {"person": 2, "bus": 2}, "val": {"person": 1, "bus": 0}}


def test_counts_leave_out_what_the_export_leaves_out():
    plan = plan_of(entry("a", "train", sha(1), boxes=(BUS,)), entry("b", "test", sha(2), boxes=()),
                   entry("c", "test", sha(3), boxes=(BUS,), image_issues=("image_corrupt",)),
                   entry("d", "val", sha(4), boxes=(PERSON,)), background=False)
    assert plan.splits == {"train": 1, "val": 1}
    assert plan.boxes_per_class == {"train": {"person": 0, "bus": 1}, "val": {"person": 1, "bus": 0}}


def test_the_export_document_shows_the_counts_once_planned():
    request = request_bodies.ExportRequest(format="voc")
    document = exports.new_document("export-1", "d", request, "ann", 1.0)
    assert exports.view(document)["boxes_per_class"] is None and request.format == exports.VOC
    planned = {**document, "splits": {"train": 1}, "boxes_per_class": {"train": {"person": 1, "bus": 0}}}
    assert exports.view(planned)["boxes_per_class"] == {"train": {"person": 1, "bus": 0}}


def test_voc_puts_every_split_in_one_folder_with_unique_stems():
    plan = plan_of(entry("a", "train", sha(1)), entry("a", "val", sha(2)), entry("sub/b c", "val", sha(3)),
                   entry("A", "test", sha(4)))
    names = {(m.split, m.file_name): name for m, name in exports.placed(plan, exports.VOC)}
    first_a = names[("train", "a.jpg")]
    assert first_a in ("JPEGImages/a.jpg", f"JPEGImages/a-{sha(1)[:8]}.jpg")  # whichever of a, A comes first
    assert names[("val", "a.jpg")] == f"JPEGImages/a-{sha(2)[:8]}.jpg"
    assert names[("test", "A.jpg")] == ("JPEGImages/A.jpg" if first_a != "JPEGImages/a.jpg"
                                        else f"JPEGImages/A-{sha(4)[:8]}.jpg")
    assert names[("val", "sub/b c.jpg")] == "JPEGImages/sub_b_c.jpg"
    assert [name for _, name in exports.placed(plan, exports.YOLO)] == [m.image_name for m in plan.members]


def test_a_voc_stem_taken_by_another_image_falls_back_further():
    clashing = plan_of(entry("a", "train", sha(1)), entry(f"a-{sha(2)[:8]}", "train", sha(3)),
                       entry("a", "val", sha(2)))
    names = {(m.split, m.file_name): name for m, name in exports.placed(clashing, exports.VOC)}
    assert names == {("train", f"a-{sha(2)[:8]}.jpg"): f"JPEGImages/a-{sha(2)[:8]}.jpg",  # in name order: first
                     ("train", "a.jpg"): "JPEGImages/a.jpg", ("val", "a.jpg"): f"JPEGImages/a-{sha(2)}.jpg"}


def test_each_voc_image_has_its_annotation_and_each_split_its_list():
    plan = plan_of(entry("a", "train", sha(1), boxes=(PERSON, BUS)), entry("b", "val", sha(2), boxes=()))
    placed = exports.placed(plan, exports.VOC)
    member, image_name = placed[0]
    [(name, xml)] = exports.member_annotations(member, image_name, exports.VOC, plan.classes)
    parsed = voc.parse_annotation(xml)
    assert name == "Annotations/a.xml" and (parsed.filename, parsed.width, parsed.height) == ("a.jpg", 640, 480)
    assert [o.name for o in parsed.objects] == ["person", "bus"]
    np.testing.assert_allclose(voc.to_yolo_rows(parsed, {"person": 0, "bus": 1}), [PERSON, BUS], atol=1e-9)
    background = exports.member_annotations(*placed[1], exports.VOC, plan.classes)
    assert voc.parse_annotation(background[0][1]).objects == ()
    assert dict(exports.voc_lists(plan, placed)) == {
        "ImageSets/Main/train.txt": b"a\n", "ImageSets/Main/val.txt": b"b\n",
        "labelmap.txt": b"# label:color_rgb:parts:actions\nperson:::\nbus:::\n"}


def test_supervision_reads_the_voc_annotation_of_an_export():
    plan = plan_of(entry("a", "train", sha(1), boxes=(PERSON, BUS)))
    [(_, xml)] = exports.member_annotations(*exports.placed(plan, exports.VOC)[0], exports.VOC, plan.classes)
    detections, classes = detections_from_xml_obj(fromstring(xml), [], (640, 480))
    assert [classes[c] for c in detections.class_id] == ["person", "bus"]
    expected = [[(cx - w / 2) * 640, (cy - h / 2) * 480, (cx + w / 2) * 640, (cy + h / 2) * 480]
                for _, cx, cy, w, h in (PERSON, BUS)]
    np.testing.assert_allclose(detections.xyxy / [640, 480, 640, 480], np.array(expected) / [640, 480, 640, 480],
                               atol=1e-4)


def test_yolo_and_coco_write_what_they_wrote_before():
    plan = plan_of(entry("a", "train", sha(1), boxes=(PERSON,)), entry("b", "val", sha(2), boxes=()))
    member, image_name = exports.placed(plan, exports.YOLO)[0]
    assert exports.member_annotations(member, image_name, exports.YOLO, plan.classes) == [
        ("labels/train/a.txt", b"0 0.5 0.5 0.2 0.2\n")]
    assert exports.member_annotations(member, image_name, exports.COCO, plan.classes) == []


@pytest.mark.parametrize("names, lines", [
    (["a:b", "#tag", "two\nlines", "ok #1"], ["a_b:::", "_tag:::", "two_lines:::", "ok #1:::"]),
    ([], []),
])
def test_the_labelmap_holds_every_class_in_id_order_on_one_line_each(names, lines):
    text = exports.voc_labelmap(names).decode()
    assert text.splitlines() == ["# label:color_rgb:parts:actions", *lines]


def test_the_command_line_shows_an_exports_counts_as_a_table():
    from yolodrop_cli import show
    export = {"splits": {"train": 3, "val": 1200},
              "boxes_per_class": {"train": {"person": 2, "bus": 0}, "val": {"person": 1, "bus": 1500}}}
    assert show.export_counts(export) == [
        "class        train  val    total",
        "person       2      1      3",
        "bus          0      1,500  1,500",
        "(all boxes)  2      1,501  1,503",
        "(images)     3      1,200  1,203"]
    assert show.export_counts({"splits": None, "boxes_per_class": None}) == []  # an export not planned yet


def test_an_image_frozen_without_its_size_is_left_out_and_counted_not_written_broken():
    unsized = entry("b", "train", sha(2), boxes=(BUS,))
    unsized["image"]["oriented_width"] = None  # indexed before the oriented size was kept
    plan = plan_of(entry("a", "train", sha(1), boxes=(PERSON,)), unsized)
    assert [member.file_name for member in plan.members] == ["a.jpg"]
    assert plan.excluded == {exports.SIZE_UNKNOWN: 1}
