"""The splits image lists give a drop (common.domain.split_lists): read as push reads them, so a drop of every
layout that keeps its splits in lists gives each image the split push gives it."""
from __future__ import annotations

import pytest

from common.domain import layout, split_lists
from common.domain.datayaml import readable_mapping
from common.domain.split_lists import ListReference, SplitPlan, add_list, split_for
from tests.formats import layouts


def test_a_reference_names_itself_and_each_of_its_tails_longest_first():
    assert split_lists.tails("../datasets/fruit/images/train") == [
        "datasets/fruit/images/train", "fruit/images/train", "images/train", "train"]
    assert split_lists.tails("C:\\data\\obj\\a.jpg") == ["C:/data/obj/a.jpg", "data/obj/a.jpg", "obj/a.jpg", "a.jpg"]
    assert split_lists.tails("./") == []


@pytest.mark.parametrize("line, keys", [
    ("./images/a.jpg", ["labels/a"]),
    ("data/obj/a.jpg", ["data/obj/a", "obj/a"]),
    ("/home/me/set/images/val/a.png", ["home/me/set/labels/val/a", "me/set/labels/val/a", "set/labels/val/a",
                                       "labels/val/a"]),
    ("a.jpg", []), ("images/a.txt", []), ("obj/notes.md", []),
])
def test_a_listed_image_stands_for_the_key_of_each_tail_a_drop_indexes(line, keys):
    assert split_lists.listed_keys(line) == keys


def test_a_deep_path_is_tried_by_its_last_parts_only():
    deep = "/".join(f"d{i}" for i in range(40)) + "/images/a.jpg"
    assert len(split_lists.listed_keys(deep)) <= split_lists.MAX_TAIL_PARTS


def test_folders_whose_names_say_no_split_become_rules_and_split_folders_do_not():
    document = readable_mapping(layouts.ultralytics_folder_lists()["data.yaml"])
    rules = split_lists.folder_rules(document)
    assert {"prefix": "labels/train2012/", "split": "train"} in rules
    assert {"prefix": "labels/test2007/", "split": "val"} in rules
    assert all(rule["prefix"] != "labels/" for rule in rules)  # images/ alone is a tail, not the reference
    for plain in (layouts.roboflow_yolo(), layouts.ultralytics_names_mapping(), layouts.ultralytics_names_list()):
        assert split_lists.folder_rules(readable_mapping(plain["data.yaml"])) == []
    assert split_lists.folder_rules({"train": "images", "val": "images"}) == [{"prefix": "labels/", "split": "train"}]


def test_a_folder_named_by_two_splits_keeps_the_first():
    rules = split_lists.folder_rules({"train": "images/train2017", "val": "images/train2017"})  # coco128.yaml
    assert rules == [{"prefix": "labels/train2017/", "split": "train"}]


def test_the_first_list_naming_an_image_wins_and_a_folder_that_says_the_same_needs_no_assignment():
    plan = SplitPlan()
    add_list(plan, ListReference("train", "autosplit_train.txt", "data.yaml", True), "autosplit_train.txt",
             "./images/a.jpg\n./images/train/b.jpg\n./images/val/c.jpg\n")
    add_list(plan, ListReference("val", "autosplit_val.txt", "data.yaml", True), "autosplit_val.txt",
             "./images/a.jpg\n./images/d.jpg\n")
    assert plan.assignments == {"labels/a": ("train", "autosplit_train.txt"),
                                "labels/val/c": ("train", "autosplit_train.txt"),  # a data.yaml list moves it
                                "labels/d": ("val", "autosplit_val.txt")}
    assert plan.listed == {"autosplit_train.txt": 3, "autosplit_val.txt": 2} and plan.issues == []


def test_a_darknet_list_gives_a_split_only_to_images_whose_folders_name_none():
    plan = SplitPlan()
    add_list(plan, ListReference("val", "valid.txt", "obj.data", False), "valid.txt",
             "data/obj_train_data/a.jpg\ndata/obj/b.jpg\n")
    assert plan.assignments == {"data/obj/b": ("val", "valid.txt"), "obj/b": ("val", "valid.txt")}


def test_lines_that_name_no_image_are_one_issue_on_the_list():
    plan = SplitPlan()
    add_list(plan, ListReference("train", "train.txt", "obj.data", False), "train.txt", "obj/a.jpg\nnotes\nb.jpg\n")
    (issue,) = plan.issues
    assert issue.code == "split_list_not_images" and issue.file == "train.txt" and "2 of its 3 lines" in issue.message


def test_an_entry_takes_its_assignment_then_its_folder_then_the_first_rule():
    rules = [{"prefix": "labels/train2012/", "split": "train"}, {"prefix": "labels/", "split": "val"}]
    assert split_for("labels/train2012/a", None, "test", rules) == "test"
    assert split_for("labels/train2012/a", None, None, rules) == "train"
    assert split_for("labels/other/a", None, None, rules) == "val"
    assert split_for("labels/val/a", "val", None, [{"prefix": "labels/", "split": "train"}]) == "val"
    assert split_for("obj/a", None, None, []) is None


def test_an_entrys_folder_split_is_read_from_its_key():
    assert [split_lists.folder_split(key) for key in ("labels/val/a", "obj_train_data/sub/a", "obj/a",
                                                      "valid/labels/a", "labels/train2012/a")] == \
        ["val", "train", None, "val", None]


def test_the_lists_named_are_data_yamls_then_obj_datas_or_darknets_conventional_ones():
    document = {"path": ".", "train": "autosplit_train.txt", "val": ["images/val", "extra.txt"]}
    named = split_lists.list_references(document, {"train": "data/train.txt", "valid": "data/valid.txt",
                                                   "names": "data/obj.names"})
    assert [(r.split, r.reference, r.yaml) for r in named] == [
        ("train", "./autosplit_train.txt", True), ("val", "./extra.txt", True),
        ("train", "data/train.txt", False), ("val", "data/valid.txt", False),
        ("val", "val.txt", False), ("test", "test.txt", False)]  # what obj.data does not name: as push reads it
    conventional = split_lists.list_references(None, None)
    assert {r.reference for r in conventional} >= {"train.txt", "valid.txt", "data/test.txt"}
    assert len(split_lists.list_references({"train": [f"l{i}.txt" for i in range(50)]}, None)) == \
        split_lists.MAX_LISTS


def test_a_resplit_job_is_one_per_event():
    job_id = split_lists.resplit_job_id("d", "datasets/d/train.txt", 7, "finalized")
    assert job_id == split_lists.resplit_job_id("d", "datasets/d/train.txt", 7, "finalized")
    assert job_id != split_lists.resplit_job_id("d", "datasets/d/train.txt", 7, "deleted")


def drop_splits(files: dict[str, bytes]) -> dict[str, str | None]:
    """{image stem: split} a drop of `files` ends with, the lists read as the resplit job reads them (the longest
    tail of a list's reference that is a file)."""
    document = readable_mapping(files["data.yaml"]) if "data.yaml" in files else None
    obj_data = next((files[name] for name in split_lists.OBJ_DATA_FILES if name in files), None)
    settings = split_lists.obj_data_settings(obj_data.decode()) if obj_data else None
    plan = SplitPlan(rules=split_lists.folder_rules(document))
    for reference in split_lists.list_references(document, settings):
        found = next((tail for tail in split_lists.tails(reference.reference) if tail in files), None)
        if found:
            add_list(plan, reference, found, files[found].decode())
    splits = {}
    for path in files:
        role = layout.classify(layout.dataset_object("d", path))
        if role.kind == "image":
            assigned = plan.assignments.get(role.key, (None,))[0]
            splits[path.rsplit("/", 1)[-1][:-4]] = split_for(role.key, role.split, assigned, plan.rules)
    return splits


@pytest.mark.parametrize("write", [layouts.ultralytics_txt_lists, layouts.ultralytics_folder_lists, layouts.darknet,
                                   layouts.cvat_yolo, layouts.ultralytics_names_mapping])
def test_a_drop_of_a_layout_that_lists_its_splits_gives_each_image_its_canonical_split(write):
    assert drop_splits(write()) == {picture.stem: picture.split for picture in layouts.PICTURES}


@pytest.mark.parametrize("document", [{"train": {"a": 1}, "val": 3}, {"path": ["x"], "train": [None, 7, ""]},
                                      {"train": "images/train", "val": "images/val"}, {}, None])
def test_a_data_yaml_whose_splits_say_nothing_usable_has_no_lists(document):
    assert not split_lists.has_lists(document) and split_lists.folder_rules(document) == []


def test_folder_rules_are_bounded():
    document = {"train": [f"images/batch{i}" for i in range(500)]}
    assert len(split_lists.folder_rules(document)) == split_lists.MAX_RULES
