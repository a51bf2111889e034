"""What a dropped path means in the layouts other tools export: CVAT YOLO 1.1 and Darknet keep an image and its
.txt label side by side; Label Studio, Darknet, CVAT and FiftyOne leave a class-name file at the root."""
import pytest

from common.domain import layout
from common.domain.layout import ObjectRole, classify, label_path_for


@pytest.mark.parametrize("name, role", [
    # CVAT YOLO 1.1: obj_<subset>_data/, the split from the subset's name (valid and validation mean val)
    ("datasets/d/obj_train_data/a.jpg", ObjectRole("image", "d", "obj_train_data/a", "train", "jpg")),
    ("datasets/d/obj_train_data/a.txt", ObjectRole("label", "d", "obj_train_data/a", "train", "txt")),
    ("datasets/d/obj_valid_data/sub/b.PNG", ObjectRole("image", "d", "obj_valid_data/sub/b", "val", "png")),
    ("datasets/d/obj_valid_data/sub/b.txt", ObjectRole("label", "d", "obj_valid_data/sub/b", "val", "txt")),
    ("datasets/d/obj_Validation_data/c.jpg", ObjectRole("image", "d", "obj_Validation_data/c", "val", "jpg")),
    ("datasets/d/obj_test_data/c.jpeg", ObjectRole("image", "d", "obj_test_data/c", "test", "jpeg")),
    ("datasets/d/obj_default_data/c.jpg", ObjectRole("image", "d", "obj_default_data/c", None, "jpg")),
    # an export's own folder around it
    ("datasets/d/task_7-export/obj_train_data/a.jpg",
     ObjectRole("image", "d", "task_7-export/obj_train_data/a", "train", "jpg")),
    # Darknet: obj/ or data/obj/ at the root, no split
    ("datasets/d/obj/a.jpg", ObjectRole("image", "d", "obj/a", None, "jpg")),
    ("datasets/d/obj/a.txt", ObjectRole("label", "d", "obj/a", None, "txt")),
    ("datasets/d/data/obj/x.y.bmp", ObjectRole("image", "d", "data/obj/x.y", None, "bmp")),
    ("datasets/d/data/obj/x.y.txt", ObjectRole("label", "d", "data/obj/x.y", None, "txt")),
    # a dataset named like a folder is no folder
    ("datasets/images/obj_train_data/a.jpg", ObjectRole("image", "images", "obj_train_data/a", "train", "jpg")),
    ("datasets/obj/other/a.jpg", ObjectRole("other", "obj", None, None, "jpg")),
    # class-name files at the root
    ("datasets/d/classes.txt", ObjectRole("class_names", "d", None, None, "txt")),
    ("datasets/d/obj.names", ObjectRole("class_names", "d", None, None, "names")),
    ("datasets/d/data/obj.names", ObjectRole("class_names", "d", None, None, "names")),
    ("datasets/d/dataset.yaml", ObjectRole("class_names", "d", None, None, "yaml")),
])
def test_classify_foreign_layouts(name, role):
    assert classify(name) == role


@pytest.mark.parametrize("name", [
    "datasets/d/obj_train_data/notes.json",   # neither image nor label beside them
    "datasets/d/obj_train_data.jpg",          # a file, not the folder
    "datasets/d/obj__data/a.jpg",             # no subset name
    "datasets/d/sub/obj/a.jpg",               # Darknet's obj/ is at the root or in data/
    "datasets/d/objects/a.jpg",
    "datasets/d/train.txt",                   # Darknet's and CVAT's image lists
    "datasets/d/obj.data",
    "datasets/d/sub/classes.txt",             # a class file is read at the root only
    "datasets/d/notes.json",
    "datasets/d/dataset.yml",
])
def test_other_paths_of_those_exports_stay_other(name):
    assert classify(name).kind == "other"


@pytest.mark.parametrize("image", [
    "datasets/d/obj_train_data/a.jpg", "datasets/d/obj_valid_data/s/a.b.png", "datasets/d/obj/a.jpg",
    "datasets/d/data/obj/a.tif", "datasets/images/obj_train_data/a.jpg", "datasets/d/images/train/a.jpg",
    "datasets/d/valid/images/a.jpg", "datasets/images/images/a.jpg",
])
def test_the_label_where_editing_writes_it_is_the_images_label(image):
    """The key rule: the label label_path_for names (where an edit writes) classifies as the image's label."""
    label = classify(label_path_for(image))
    assert label.kind == "label" and (label.key, label.split) == (classify(image).key, classify(image).split)


def test_label_path_for_reads_only_the_path_inside_a_dataset():
    assert label_path_for("datasets/images/obj_train_data/a.jpg") == "datasets/images/obj_train_data/a.txt"
    assert label_path_for("datasets/images/images/val/a.jpg") == "datasets/images/labels/val/a.txt"
    assert label_path_for("/data/images/images/a.b.png") == "/data/images/labels/a.b.txt"


@pytest.mark.parametrize("relative", ["obj_train_data/a.jpg", "obj_train_data/a.txt", "obj/a.jpg"])
def test_side_by_side_images_and_labels_can_be_uploaded(relative):
    assert layout.upload_object("d", relative) == f"datasets/d/{relative}"


@pytest.mark.parametrize("relative, inside", [
    ("obj_train_data/a.jpg", "a.jpg"), ("task/obj_valid_data/s/a.png", "s/a.png"), ("obj/a.jpg", "a.jpg"),
    ("data/obj/a.jpg", "a.jpg"), ("images/train/a.jpg", None), ("sub/obj/a.jpg", None),
])
def test_the_path_inside_a_side_by_side_folder(relative, inside):
    assert layout.in_side_by_side_folder(relative) == inside


def test_an_export_puts_side_by_side_images_in_their_split_folder_by_their_own_name():
    """Exports rename nothing else: obj_train_data/sub/a.jpg goes to images/train/sub/a.jpg, its label beside
    the images/ folder at labels/train/sub/a.txt, as an Ultralytics dataset holds them."""
    from common.domain import entries, exports
    from tests.unit.test_versions import frozen

    def side_by_side(image: str, split: str | None, sha: str) -> dict:
        entry = entries.new_entry(f"datasets/d/{layout.relative_label_path(image)[:-4]}", split)
        entry["image"] = {"path": f"datasets/d/{image}", "generation": 7, "sha256": sha,
                          "oriented_width": 64, "oriented_height": 48}
        entry["image_issues"] = []
        entry["label"] = {"path": f"datasets/d/{layout.relative_label_path(image)}", "generation": 8,
                          "boxes": [{"line": 1, "class_id": 0, "cx": 0.5, "cy": 0.5, "w": 0.2, "h": 0.2}]}
        return entries.derive(entry, 3)

    plan = exports.plan(frozen([side_by_side("obj_train_data/sub/a.jpg", "train", "1" * 64),
                                side_by_side("obj_valid_data/b.jpg", "val", "2" * 64)]), background=True)
    assert sorted((m.image_name, m.label_name) for m in plan.members) == [
        ("images/train/sub/a.jpg", "labels/train/sub/a.txt"), ("images/val/b.jpg", "labels/val/b.txt")]


def test_a_dropped_data_yaml_with_image_lists_or_folders_without_a_split_has_lists_and_plain_folders_have_none():
    from common.domain.datayaml import parse_data_yaml
    from common.domain.split_lists import has_lists
    lists = parse_data_yaml(b"train: [images/train2012, images/train2007]\nval: autosplit_val.txt\nnames: [a]\n", "f")
    assert has_lists(lists.splits)
    folders = parse_data_yaml(b"path: ../x\ntrain: images/train\nval: [images/val]\nnames: [a]\n", "f")
    roboflow = parse_data_yaml(b"train: ../train/images\nval: ../valid/images\ntest: ../test/images\nnames: [a]\n",
                               "f")
    assert not has_lists(folders.splits) and not has_lists(roboflow.splits)
