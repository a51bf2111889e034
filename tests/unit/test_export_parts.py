"""An export's parts: how a part records what it was cut from, and what a resumed export trusts. Pure."""
from __future__ import annotations

import pytest

from common.domain import export_parts
from common.domain.export_parts import PartRecord, PartsMismatch
from common.domain.exports import Member

PREFIX = "derived/exports/export-1/parts/"


def member(n: int, generation: int = 1) -> Member:
    return Member("train", f"{n}.jpg", f"derived/content/{n:02d}/{n}", generation, 10, 10, ())


def placed(*generations: int) -> list[tuple[Member, str]]:
    return [(member(n, g), f"images/train/{n}.jpg") for n, g in enumerate(generations)]


def part(index: int, first: int, end: int, tail: bool = False, plan: str = "p") -> PartRecord:
    return PartRecord(index, first, end, tail, plan, export_parts.data_name(PREFIX, index, "a"), 7, 100 * (index + 1),
                      2 * (end - first) + tail, export_parts.directory_name(PREFIX, index), 8, 50)


def test_a_record_survives_its_object_metadata():
    record = part(3, 10, 14)
    stored = export_parts.record_of(record.directory, 8, 50, export_parts.metadata(record))
    assert stored == record
    assert all(isinstance(value, str) for value in export_parts.metadata(record).values())


def test_only_directory_objects_are_records():
    assert export_parts.index_of(f"{PREFIX}00012.dir") == 12
    for other in (f"{PREFIX}00012-abc.zip", f"{PREFIX}end", f"{PREFIX}compose-0-00001", f"{PREFIX}x.dir"):
        assert export_parts.index_of(other) is None


def test_the_plan_pin_changes_with_any_image_content_or_name_or_the_request():
    pin = export_parts.plan_pin("v1", "yolo", True, placed(1, 1, 1))
    assert pin == export_parts.plan_pin("v1", "yolo", True, placed(1, 1, 1))
    assert pin != export_parts.plan_pin("v1", "yolo", True, placed(1, 2, 1))  # another generation of one image
    assert pin != export_parts.plan_pin("v1", "coco", True, placed(1, 1, 1))
    assert pin != export_parts.plan_pin("v2", "yolo", True, placed(1, 1, 1))
    assert pin != export_parts.plan_pin("v1", "yolo", False, placed(1, 1, 1))
    renamed = [(m, name.replace("0.jpg", "0b.jpg")) for m, name in placed(1, 1, 1)]
    assert pin != export_parts.plan_pin("v1", "yolo", True, renamed)


def test_a_resumed_export_continues_after_its_last_part_in_order():
    done = export_parts.resumed([part(1, 3, 5), part(0, 0, 3)], "p")
    assert [p.index for p in done] == [0, 1]
    assert export_parts.next_image(done) == 5 and not export_parts.is_complete(done)
    assert export_parts.offset(done) == 100 + 200
    assert export_parts.next_image([]) == 0 and export_parts.offset([]) == 0 and not export_parts.is_complete([])
    ended = done + [part(2, 5, 5, tail=True)]
    assert export_parts.is_complete(ended)
    assert export_parts.end_fields(ended) == (6 + 4 + 1, 150, 600)


def test_parts_of_another_plan_or_with_a_gap_are_not_trusted():
    with pytest.raises(PartsMismatch, match="another plan"):
        export_parts.resumed([part(0, 0, 3), part(1, 3, 5, plan="q")], "p")
    with pytest.raises(PartsMismatch, match="follow"):
        export_parts.resumed([part(0, 0, 3), part(2, 3, 5)], "p")
    with pytest.raises(PartsMismatch, match="follow"):
        export_parts.resumed([part(0, 0, 3), part(1, 4, 5)], "p")


def test_the_archive_is_every_part_entries_then_every_directory_then_the_end():
    done = [part(0, 0, 3), part(1, 3, 3, tail=True)]
    assert export_parts.sources(done, (f"{PREFIX}end", 9)) == [
        (done[0].data, 7), (done[1].data, 7), (done[0].directory, 8), (done[1].directory, 8), (f"{PREFIX}end", 9)]
