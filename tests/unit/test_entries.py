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
    e = entry(IMAGE)
    assert entries.is_stale(e, "image", 5) and entries.is_stale(e, "image", 4)
    assert not entries.is_stale(e, "image", 6)
    assert not entries.is_stale(e, "image", 5, deleting=True)  # deleting the indexed generation
    assert entries.is_stale(e, "image", 4, deleting=True)      # an overwritten generation's delete
    entries.delete_part(e, "image", 9)
    assert e["image"] is None and entries.is_stale(e, "image", 9) and not entries.is_stale(e, "image", 10)
    assert not entries.is_stale(e, "label", 1)


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
