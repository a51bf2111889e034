import pytest

from common.domain import duplicates, entries
from common.domain.issues import Issue
from common.domain.labels import Box

IMAGE = {"path": "datasets/d/images/train/a.jpg", "generation": 5, "sha256": "ab" * 32}
LABEL = {"path": "datasets/d/labels/train/a.txt", "generation": 7,
         "boxes": [Box(1, 0, .5, .5, .2, .2).to_dict(), Box(2, 2, .5, .5, .1, .1).to_dict()]}


def entry(image=None, label=None, label_issues=()) -> dict:
    e = entries.new_entry("labels/train/a", "train")
    if image:
        entries.set_part(e, "image", image, [])
    if label:
        entries.set_part(e, "label", label, list(label_issues))
    return e


def test_every_summed_field_is_on_every_entry():
    for e in (entry(), entry(IMAGE), entry(label=LABEL), entry(IMAGE, LABEL)):
        derived = entries.derive(e, 3)
        assert all(isinstance(derived[f], int) for f in entries.SUMMED_FIELDS + entries.HISTOGRAM_FIELDS)


def histograms(derived: dict) -> tuple[list[int], list[int]]:
    n = len(entries.BOXES_PER_IMAGE_EDGES)
    values = [derived[f] for f in entries.HISTOGRAM_FIELDS]
    return values[:n], values[n:]


def test_an_image_counts_once_in_the_bucket_of_its_boxes_and_each_box_in_the_bucket_of_its_size():
    per_image, sizes = histograms(entries.derive(entry(IMAGE, LABEL), 3))
    assert per_image == [0, 0, 1, 0, 0, 0, 0]            # 2 boxes
    assert sizes == [0, 0, 1, 1, 0, 0]                   # sqrt(.01) = .1 and sqrt(.04) = .2: each on its edge
    assert histograms(entries.derive(entry(IMAGE, LABEL), 2)) == ([0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0])
    assert histograms(entries.derive(entry(IMAGE), 3)) == ([1, 0, 0, 0, 0, 0, 0], [0] * 6)
    assert histograms(entries.derive(entry(label=LABEL), 3)) == ([0] * 7, [0] * 6)  # no image: in neither


def test_many_boxes_and_whole_image_boxes_land_in_the_last_buckets():
    boxes = [Box(i + 1, 0, .5, .5, 1.0, 1.0).to_dict() for i in range(25)]
    per_image, sizes = histograms(entries.derive(entry(IMAGE, {**LABEL, "boxes": boxes}), 3))
    assert per_image == [0, 0, 0, 0, 0, 0, 1] and sizes == [0, 0, 0, 0, 0, 25]
    assert [entries.bucket(n, entries.BOXES_PER_IMAGE_EDGES) for n in (0, 1, 2, 3, 4, 5, 9, 10, 19, 20)] == \
        [0, 1, 2, 3, 3, 4, 4, 5, 5, 6]


def test_buckets_read_as_a_person_reads_them():
    assert entries.bucket_names(entries.BOXES_PER_IMAGE_EDGES) == ["0", "1", "2", "3–4", "5–9", "10–19", "≥ 20"]
    assert entries.bucket_names(entries.BOX_SIZE_EDGES) == ["0–0.05", "0.05–0.1", "0.1–0.2", "0.2–0.4", "0.4–0.7",
                                                            "≥ 0.7"]


def test_status_follows_image_and_label():
    assert entries.derive(entry(IMAGE, LABEL), 3)["status"] == entries.LABELED
    assert entries.derive(entry(IMAGE), 3)["status"] == entries.UNLABELED
    assert entries.derive(entry(label=LABEL), 3)["status"] == entries.LABEL_ONLY
    empty = {**LABEL, "boxes": []}
    assert entries.derive(entry(IMAGE, empty), 3)["status"] == entries.BACKGROUND
    bad = Issue("label_columns", "x", LABEL["path"], 1)
    assert entries.derive(entry(IMAGE, empty, [bad]), 3)["status"] == entries.UNLABELED


def test_class_count_decides_which_boxes_count():
    e = entry(IMAGE, LABEL)
    known = entries.derive(e, 2)
    assert (known["n_boxes"], known["class_counts"], known["class_ids"]) == (1, {"c0": 1}, [0])
    assert [i["code"] for i in known["issues"]] == ["label_class_out_of_range"]
    assert known["issues"][0]["line"] == 2
    unknown = entries.derive(e, None)
    assert (unknown["n_boxes"], unknown["class_counts"], unknown["issue_count"]) == (2, {"c0": 1, "c2": 1}, 0)


def test_label_without_image_is_an_issue_and_counts_no_boxes():
    derived = entries.derive(entry(label=LABEL), 3)
    assert [i["code"] for i in derived["issues"]] == ["label_without_image"]
    assert (derived["n_boxes"], derived["f_image"], derived["f_label_only"], derived["f_nosplit"]) == (0, 0, 1, 0)


def test_generation_guard_and_tombstones():
    e, path = entry(IMAGE), IMAGE["path"]
    assert entries.is_stale(e, "image", 5, path=path) and entries.is_stale(e, "image", 4, path=path)
    assert not entries.is_stale(e, "image", 6, path=path)
    assert not entries.is_stale(e, "image", 5, deleting=True, path=path)  # deleting the indexed generation
    assert entries.is_stale(e, "image", 4, deleting=True, path=path)      # an overwritten generation's delete
    entries.delete_part(e, "image", 9, path)
    assert e["image"] is None and entries.is_stale(e, "image", 9, path=path)
    assert not entries.is_stale(e, "image", 10, path=path)
    assert not entries.is_stale(e, "label", 1)


def test_an_image_event_without_its_path_is_refused_by_name():
    e = entry(IMAGE)
    with pytest.raises(ValueError, match="names its file"):
        entries.is_stale(e, "image", 6)
    with pytest.raises(ValueError, match="names its file"):
        entries.delete_part(e, "image", 6)


def test_duplicates_and_leakage_named_on_the_entry():
    e = entry(IMAGE)
    members = {"me": {"path": IMAGE["path"], "split": "train"},
               "other": {"path": "datasets/d/images/val/b.jpg", "split": "val"}}
    duplicates.set_duplicates(e, "me", members)
    derived = entries.derive(e, None)
    assert derived["duplicates"] == ["datasets/d/images/val/b.jpg"]
    assert [i["code"] for i in derived["issues"]] == ["duplicate_image", "split_leakage"]
    assert derived["f_duplicate"] == 1
    duplicates.set_duplicates(e, "me", {"me": members["me"]})
    assert entries.derive(e, None)["issues"] == [] and entries.derive(e, None)["f_duplicate"] == 0


def test_same_split_duplicates_are_not_leakage():
    e = entry(IMAGE)
    duplicates.set_duplicates(e, "me", {"me": {"path": IMAGE["path"], "split": "train"},
                                     "o": {"path": "datasets/d/images/train/c.jpg", "split": "train"}})
    assert [i["code"] for i in entries.derive(e, None)["issues"]] == ["duplicate_image"]


# ---- several image files of one name ----------------------------------------------------------------------------

JPG, PNG = "datasets/d/images/train/a.jpg", "datasets/d/images/train/a.png"


def image_record(path: str, generation: int, sha: str) -> dict:
    return {"path": path, "generation": generation, "sha256": sha * 64, "thumbnail": None}


def stored(e: dict, path: str, generation: int, sha: str = "a", issues=()) -> dict:
    assert not entries.is_stale(e, "image", generation, path=path)
    entries.set_part(e, "image", image_record(path, generation, sha), list(issues))
    return e


def deleted(e: dict, path: str, generation: int) -> dict:
    assert not entries.is_stale(e, "image", generation, deleting=True, path=path)
    entries.delete_part(e, "image", generation, path)
    return e


def collisions(e: dict) -> list[str]:
    return [i["file"] for i in entries.derive(e, 3)["issues"] if i["code"] == "image_name_collision"]


def test_two_images_of_one_name_show_the_newest_and_name_the_collision_on_both():
    e = stored(stored(entry(), JPG, 10, "a"), PNG, 20, "b", [Issue("image_too_small", "x", PNG)])
    assert e["image"]["path"] == PNG and [i["code"] for i in e["image_issues"]] == ["image_too_small"]
    assert collisions(e) == [JPG, PNG]
    message = next(i["message"] for i in entries.derive(e, 3)["issues"] if i["file"] == JPG)
    assert PNG in message and "labels/train/a" in message and "rename" in message


def test_an_older_namesake_arriving_late_is_kept_but_not_shown():
    e = stored(stored(entry(), PNG, 20, "b"), JPG, 10, "a")
    assert e["image"]["path"] == PNG and collisions(e) == [JPG, PNG]
    assert entries.is_stale(e, "image", 10, path=JPG) and entries.is_stale(e, "image", 20, path=PNG)


def test_deleting_the_shown_image_shows_its_namesake_with_its_own_record():
    e = deleted(stored(stored(entry(), JPG, 10, "a"), PNG, 20, "b"), PNG, 21)
    assert e["image"] == image_record(JPG, 10, "a") and collisions(e) == []
    assert entries.derive(e, 3)["status"] == entries.UNLABELED
    assert entries.is_stale(e, "image", 20, path=PNG)  # the deleted file's late finalize changes nothing
    assert not entries.is_stale(e, "image", 22, path=PNG)  # uploaded again: shown again, colliding again


def test_deleting_the_hidden_namesake_ends_the_collision_and_keeps_the_shown_image():
    e = deleted(stored(stored(entry(), JPG, 10, "a"), PNG, 20, "b"), JPG, 11)
    assert e["image"]["path"] == PNG and collisions(e) == []
    assert entries.derive(deleted(e, PNG, 21), 3)["has_image"] is False


def test_the_shown_record_is_stored_once():
    e = stored(stored(entry(), JPG, 10, "a"), PNG, 20, "b")
    hidden, shown = (e["image_sources"][entries.source_key(p)] for p in (JPG, PNG))
    assert shown["record"] is None and shown["held"] == 20 and hidden["record"]["path"] == JPG


def test_an_entry_indexed_before_sources_were_kept_keeps_its_guard():
    legacy = {**entry(), "image": image_record(JPG, 10, "a"), "image_tombstone": 5}
    del legacy["image_sources"], legacy["sources_kept"]
    assert entries.is_stale(legacy, "image", 10, path=JPG) and not entries.is_stale(legacy, "image", 11, path=JPG)
    assert entries.is_stale(legacy, "image", 4, path=PNG)  # below its one tombstone, as before
    e = stored(legacy, PNG, 20, "b")
    assert e["sources_kept"] and collisions(e) == [JPG, PNG]
