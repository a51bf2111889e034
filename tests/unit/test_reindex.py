"""What a reindex and a reconciliation compare (common.domain.reindex): the bucket's listing against the index."""
from __future__ import annotations

import pytest

from common.domain import dataset_jobs, entries, reindex
from common.domain.entries import ImageRecord, LabelRecord
from common.domain.reindex import Difference, Gone, Listed

D = "datasets/d/"


def test_compare_finds_what_the_index_lacks_holds_older_and_holds_gone():
    listed = [Listed(D + "a.txt", 5), Listed(D + "b.txt", 7), Listed(D + "c.txt", 3), Listed(D + "new.txt", 1)]
    indexed = {D + "a.txt": 5, D + "b.txt": 6, D + "c.txt": 4, D + "gone.txt": 9}
    difference = reindex.compare(listed, indexed)
    assert difference.added == (Listed(D + "new.txt", 1),)
    assert difference.updated == (Listed(D + "b.txt", 7),)  # c.txt: the index is newer than the listing
    assert difference.removed == (Gone(D + "gone.txt", 9),)
    assert len(difference) == 3
    assert reindex.compare(listed[:1], {D + "a.txt": 5}) == Difference()


def test_a_bounded_run_repairs_additions_first_and_removals_last():
    difference = Difference(tuple(Listed(f"a{i}", 1) for i in range(3)), (Listed("u", 2),), (Gone("g", 1),))
    assert difference.first(2) == Difference((Listed("a0", 1), Listed("a1", 1)))
    assert difference.first(4) == Difference(difference.added, difference.updated)
    assert difference.first(10) == difference
    assert len(difference.first(0)) == 0


def test_objects_written_within_the_grace_are_left_to_their_own_events():
    young, old = Listed("young", 2, written_at=995.0), Listed("old", 2, written_at=900.0)
    difference = Difference((young, old), (Listed("unknown-age", 3),), (Gone("g", 1),))
    settled = reindex.settled(difference, now=1000.0, grace=60)
    assert settled == Difference((old,), (Listed("unknown-age", 3),), (Gone("g", 1),))
    assert reindex.settled(difference, now=1000.0, grace=0) == difference


def test_an_entry_holds_each_live_image_file_of_its_name_and_its_label():
    entry = entries.new_entry("images/train/a", "train")
    image = ImageRecord(path=D + "images/train/a.jpg", generation=4, sha256="x", size=1, format="JPEG", width=1,
                        height=1)
    entries.set_part(entry, "image", image, [])
    entries.set_part(entry, "image", ImageRecord(**{**image, "path": D + "images/train/a.png", "generation": 6}), [])
    entries.set_part(entry, "label", LabelRecord(path=D + "labels/train/a.txt", generation=5, boxes=[]), [])
    entries.delete_part(entry, "image", 4, D + "images/train/a.jpg")
    assert reindex.entry_objects(entry) == {D + "images/train/a.png": 6, D + "labels/train/a.txt": 5}
    assert reindex.entry_objects(entries.new_entry("k", None)) == {}


def test_an_entry_indexed_before_image_sources_holds_its_one_image():
    old = {"key": "a", "image": {"path": D + "images/a.jpg", "generation": 3}, "label": None}
    assert reindex.entry_objects(old) == {D + "images/a.jpg": 3}


@pytest.mark.parametrize("name, kept", [
    (D + "images/train/a.jpg", True), (D + "labels/train/a.txt", True), (D + "data.yaml", True),
    (D + "notes.md", True), (D + "images/", False), ("datasets/other/images/a.jpg", False),
    ("imports/d.zip", False), ("derived/thumbnails/d/x.jpg", False)])
def test_only_what_ingest_indexes_in_that_dataset_is_compared(name, kept):
    assert reindex.is_indexed(name, "d") is kept


def test_class_files_are_told_apart_so_a_reindex_applies_them_first():
    assert reindex.defines_classes(D + "data.yaml") and reindex.defines_classes(D + "classes.txt")
    assert not reindex.defines_classes(D + "labels/train/a.txt")


def test_plan_items_round_trip_and_keep_only_whose_session_wrote_an_object():
    metadata = reindex.session_metadata({"yolodrop-session-uploader": "uid-1", "colour": "blue"})
    assert metadata == {"yolodrop-session-uploader": "uid-1"}
    assert reindex.session_metadata({"colour": "blue"}) is None and reindex.session_metadata("x") is None
    listed = Listed(D + "a b/c:d.jpg", 2**62, 10, metadata)
    for found in (listed, Gone(D + "gone.txt", 7)):
        back = reindex.parse_item(reindex.item_of(found))
        assert back == found and getattr(back, "metadata", None) == getattr(found, "metadata", None)


def test_a_reindex_job_shows_what_it_indexed_removed_and_left_unchanged():
    job = {**dataset_jobs.new_job("reindex-1", "d", dataset_jobs.REINDEX, 1.0, "admin"), "status": "completed",
           "units_total": 2, "files_total": 300, "indexed": 250, "removed": 3, "unchanged": 47}
    view = dataset_jobs.view(job, chunks_done=2, files_done=300)
    assert (view["kind"], view["indexed"], view["removed"], view["unchanged"]) == ("reindex", 250, 3, 47)
    assert view["chunks_total"] == 2 and dataset_jobs.cancellable({**job, "status": "running"})


def test_thumbnails_no_entry_names_are_strays_once_past_the_grace():
    named, stray, young = (Listed(f"derived/thumbnails/d/{h}.jpg", 1, written_at=t)
                           for h, t in (("aa", 100.0), ("bb", 100.0), ("cc", 990.0)))
    held = {named.name}
    assert reindex.stray_thumbnails([named, stray, young], held, now=1000.0, grace=60) == [stray]
    assert reindex.stray_thumbnails([named, stray, young], held, now=1000.0, grace=0) == [stray, young]


def test_an_entry_names_the_thumbnail_of_each_of_its_image_files():
    entry = entries.new_entry("images/train/a", "train")
    image = ImageRecord(path=D + "images/train/a.jpg", generation=4, sha256="x", size=1, format="JPEG", width=1,
                        height=1, thumbnail="t1")
    entries.set_part(entry, "image", image, [])
    entries.set_part(entry, "image", ImageRecord(**{**image, "path": D + "images/train/a.png", "generation": 6,
                                                    "thumbnail": "t2"}), [])
    assert reindex.entry_thumbnails(entry) == {"t1", "t2"}  # the shown image's and the other's
    entries.delete_part(entry, "image", 4, D + "images/train/a.jpg")
    assert reindex.entry_thumbnails(entry) == {"t2"}
    old = {"key": "b", "image": {"path": D + "images/b.jpg", "generation": 3, "thumbnail": "t3"}, "label": None}
    assert reindex.entry_thumbnails(old) == {"t3"}
