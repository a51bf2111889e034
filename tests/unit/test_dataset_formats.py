"""The layouts other tools export, recognised from their files, and where each file goes. Pure: the exports are
written here as the tools write them (file names, lists, class files), held in memory."""
from __future__ import annotations

import io
import json

import pytest
import yaml

from common.domain import dataset_formats as formats
from common.domain import voc
from common.domain.archive import ArchiveRefused

IMAGE = b"\xff\xd8 not decoded here"


def recognize(files: dict[str, bytes], dataset_yaml: bytes | None = None) -> formats.Recognized:
    return formats.recognize(sorted(files), {path: len(data) for path, data in files.items()},
                             lambda path: io.BytesIO(files[path]), "export", lambda: dataset_yaml)


def names_of(found: formats.Recognized) -> list[str]:
    names = yaml.safe_load(found.generated["data.yaml"])["names"]
    return list(names.values()) if isinstance(names, dict) else names


def test_an_ultralytics_folder_goes_as_it_is_with_its_own_data_yaml():
    found = recognize({"data.yaml": b"names: [cat, dog]\n", "images/train/a.jpg": IMAGE,
                       "labels/train/a.txt": b"0 0.5 0.5 0.1 0.1\n", "images/val/b.jpg": IMAGE})
    assert found.layout == formats.ULTRALYTICS and found.generated == {}
    assert sorted(found.moves) == [("data.yaml", "data.yaml"), ("images/train/a.jpg", "images/train/a.jpg"),
                                   ("images/val/b.jpg", "images/val/b.jpg"), ("labels/train/a.txt",
                                                                              "labels/train/a.txt")]


def test_data_yaml_train_as_a_txt_list_relative_to_path_places_the_listed_images_in_the_split():
    files = {"coco.yaml": b"", "data.yaml": b"path: ../datasets/coco\ntrain: train2017.txt\nval: val2017.txt\n"
             b"names:\n  0: person\n  1: bicycle\n",
             "train2017.txt": b"./images/train2017/000001.jpg\n./images/train2017/000002.jpg\n",
             "val2017.txt": b"./images/val2017/000003.jpg\n",
             "images/train2017/000001.jpg": IMAGE, "images/train2017/000002.jpg": IMAGE,
             "images/val2017/000003.jpg": IMAGE, "labels/train2017/000001.txt": b"1 0.5 0.5 0.2 0.2\n"}
    found = recognize(files)
    moves = dict(found.moves)
    assert moves["images/train2017/000001.jpg"] == "images/train/train2017/000001.jpg"
    assert moves["labels/train2017/000001.txt"] == "labels/train/train2017/000001.txt"
    assert moves["images/val2017/000003.jpg"] == "images/val/val2017/000003.jpg"
    assert names_of(found) == ["person", "bicycle"] and "data.yaml" not in moves.values()
    assert {"train2017.txt", "val2017.txt", "data.yaml"} <= found.read
    assert not {"train2017.txt", "val2017.txt"} & {path for path, _ in found.moves}  # read, not unpacked


def test_data_yaml_train_as_a_list_of_folders_keeps_each_folders_name():
    files = {"data.yaml": b"train: [batch1/images, batch2/images]\nval: batch3/images\nnames: [a]\n",
             "batch1/images/x.jpg": IMAGE, "batch2/images/x.jpg": IMAGE, "batch3/images/y.jpg": IMAGE,
             "batch1/labels/x.txt": b"0 0.5 0.5 0.1 0.1\n"}
    moves = dict(recognize(files).moves)
    assert (moves["batch1/images/x.jpg"], moves["batch2/images/x.jpg"]) == ("images/train/batch1/x.jpg",
                                                                            "images/train/batch2/x.jpg")
    assert moves["batch1/labels/x.txt"] == "labels/train/batch1/x.txt"
    assert moves["batch3/images/y.jpg"] == "images/val/y.jpg"


def test_a_data_yaml_naming_a_folder_that_is_not_there_is_an_issue_and_the_images_keep_their_folders():
    found = recognize({"data.yaml": b"train: /home/me/elsewhere\nnames: [a]\n", "images/train/a.jpg": IMAGE})
    assert dict(found.moves)["images/train/a.jpg"] == "images/train/a.jpg"
    assert [issue.code for issue in found.issues] == ["import_yaml_split"]


def test_roboflow_yolo_split_first_folders_go_under_images_and_labels():
    found = recognize({"data.yaml": b"train: ../train/images\nval: ../valid/images\ntest: ../test/images\nnc: 1\n"
                       b"names: ['a']\n",
                       "train/images/a.jpg": IMAGE, "train/labels/a.txt": b"0 0.5 0.5 0.1 0.1\n",
                       "valid/images/b.jpg": IMAGE, "README.roboflow.txt": b"hi"})
    assert found.layout == formats.ROBOFLOW_YOLO and found.generated == {} and found.issues == []  # no test/
    assert dict(found.moves)["valid/images/b.jpg"] == "images/val/b.jpg"
    assert dict(found.moves)["train/labels/a.txt"] == "labels/train/a.txt"


def test_label_studio_yolo_names_come_from_classes_txt():
    found = recognize({"classes.txt": b"zebra\nant\n", "notes.json": b'{"categories": []}',
                       "images/a1b2-photo.jpg": IMAGE, "labels/a1b2-photo.txt": b"1 0.5 0.5 0.1 0.1\n"})
    assert found.layout == formats.LABEL_STUDIO and names_of(found) == ["zebra", "ant"]
    assert sorted(target for _, target in found.moves) == ["images/a1b2-photo.jpg", "labels/a1b2-photo.txt"]
    assert {"classes.txt", "notes.json"} <= found.read


def test_fiftyone_yolov5_dataset_yaml_names_the_classes():
    found = recognize({"dataset.yaml": b"names:\n- cat\n- dog\nnc: 2\npath: /tmp/export\ntrain: ./images/train/\n"
                       b"val: ./images/val/\n", "images/train/a.jpg": IMAGE, "labels/train/a.txt": b"",
                       "images/val/b.jpg": IMAGE})
    assert found.layout == formats.FIFTYONE_YOLO and names_of(found) == ["cat", "dog"]
    assert dict(found.moves)["images/val/b.jpg"] == "images/val/b.jpg"


def test_cvat_yolo_1_1_side_by_side_folders_become_splits_with_obj_names_as_classes():
    files = {"obj.data": b"classes = 2\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n",
             "obj.names": b"car\nperson\n", "train.txt": b"data/obj_train_data/a.jpg\n",
             "obj_train_data/a.jpg": IMAGE, "obj_train_data/a.txt": b"1 0.5 0.5 0.2 0.2\n",
             "obj_valid_data/sub/b.png": IMAGE}
    found = recognize(files)
    assert found.layout == formats.CVAT_YOLO and names_of(found) == ["car", "person"]
    assert sorted(found.moves) == [("obj_train_data/a.jpg", "images/train/a.jpg"),
                                   ("obj_train_data/a.txt", "labels/train/a.txt"),
                                   ("obj_valid_data/sub/b.png", "images/val/sub/b.png")]


def test_darknet_obj_folder_takes_its_splits_from_train_and_valid_lists():
    files = {"obj.data": b"classes = 1\ntrain = data/train.txt\nvalid = data/valid.txt\nnames = data/obj.names\n",
             "obj.names": b"dog\n", "train.txt": b"data/obj/a.jpg\n", "valid.txt": b"data/obj/b.jpg\n",
             "obj/a.jpg": IMAGE, "obj/a.txt": b"0 0.5 0.5 0.2 0.2\n", "obj/b.jpg": IMAGE, "obj/b.txt": b""}
    found = recognize(files)
    assert found.layout == formats.DARKNET
    assert dict(found.moves) == {"obj/a.jpg": "images/train/a.jpg", "obj/a.txt": "labels/train/a.txt",
                                 "obj/b.jpg": "images/val/b.jpg", "obj/b.txt": "labels/val/b.txt"}


def test_a_blank_line_among_darknet_names_refuses_them_rather_than_shift_every_id_after_it():
    found = recognize({"obj.names": b"car\n\nperson\n", "obj/a.jpg": IMAGE, "obj/a.txt": b"2 0.5 0.5 0.1 0.1\n"})
    assert "data.yaml" not in found.generated and [i.code for i in found.issues] == ["class_file_blank_line"]


def test_an_obj_names_beside_images_and_labels_is_no_darknet_export():
    found = recognize({"obj.names": b"a\n", "images/a.jpg": IMAGE, "labels/a.txt": b""})
    assert found.layout == formats.ULTRALYTICS and names_of(found) == ["a"]


def voc_xml(filename: str, objects: list[tuple[str, int, int, int, int]]) -> bytes:
    return voc.annotation_xml(filename, 100, 50, [voc.VocObject(name, *box, difficult=False)
                                                  for name, *box in objects])


def test_pascal_voc_xml_becomes_yolo_labels_split_by_image_sets():
    files = {"Annotations/a.xml": voc_xml("a.jpg", [("dog", 1, 1, 50, 25)]),
             "Annotations/b.xml": voc_xml("b.jpg", [("cat", 51, 26, 100, 50), ("dog", 1, 1, 100, 50)]),
             "JPEGImages/a.jpg": IMAGE, "JPEGImages/b.jpg": IMAGE, "JPEGImages/c.jpg": IMAGE,
             "ImageSets/Main/train.txt": b"a\n", "ImageSets/Main/val.txt": b"b\n"}
    found = recognize(files)
    assert found.layout == formats.PASCAL_VOC and names_of(found) == ["dog", "cat"]
    assert dict(found.moves) == {"JPEGImages/a.jpg": "images/train/a.jpg", "JPEGImages/b.jpg": "images/val/b.jpg",
                                 "JPEGImages/c.jpg": "images/c.jpg"}
    assert found.generated["labels/train/a.txt"] == b"0 0.25 0.25 0.5 0.5\n"
    assert found.generated["labels/val/b.txt"] == b"1 0.75 0.75 0.5 0.5\n0 0.5 0.5 1 1\n"


def test_voc_classes_follow_labelmap_and_are_matched_onto_the_datasets_names():
    files = {"labelmap.txt": b"# label:color_rgb:parts:actions\nbackground:0,0,0::\ncat:1,2,3::\ndog:4,5,6::\n",
             "Annotations/a.xml": voc_xml("a.jpg", [("dog", 1, 1, 50, 25)]), "JPEGImages/a.jpg": IMAGE}
    assert names_of(recognize(files)) == ["cat", "dog"]
    found = recognize(files, dataset_yaml=b"names: [dog, horse]\ntrain: images/train\n")
    assert yaml.safe_load(found.generated["data.yaml"])["names"] == {0: "dog", 1: "horse", 2: "cat"}
    assert found.generated["labels/a.txt"].startswith(b"0 ")
    assert [issue.code for issue in found.issues] == ["import_voc_classes"]
    again = recognize(files, dataset_yaml=found.generated["data.yaml"])
    assert "data.yaml" not in again.generated  # the same export again changes no class


def test_a_hostile_voc_file_is_an_issue_and_its_image_comes_without_boxes():
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx">]><annotation>&x;</annotation>'
    found = recognize({"Annotations/a.xml": bomb, "JPEGImages/a.jpg": IMAGE})
    assert dict(found.moves) == {"JPEGImages/a.jpg": "images/a.jpg"} and "labels/a.txt" not in found.generated
    assert [issue.code for issue in found.issues] == ["import_voc_xml"]


def test_a_voc_box_outside_its_image_is_an_issue_and_its_image_comes_without_boxes():
    found = recognize({"Annotations/a.xml": voc_xml("a.jpg", [("dog", 200, 1, 250, 25)]), "JPEGImages/a.jpg": IMAGE})
    assert dict(found.moves) == {"JPEGImages/a.jpg": "images/a.jpg"} and "labels/a.txt" not in found.generated
    assert [issue.code for issue in found.issues] == ["import_voc_xml"]


def coco_file(file_name: str) -> bytes:
    return json.dumps({"images": [{"id": 1, "file_name": file_name, "width": 100, "height": 50}],
                       "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
                       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 25],
                                        "area": 1250, "iscrowd": 0}]}).encode()


@pytest.mark.parametrize("annotations, image, layout", [
    ("annotations/instances_train2017.json", "train2017/a.jpg", formats.COCO),
    ("annotations/instances_default.json", "images/a.jpg", formats.CVAT_COCO),
    ("train/_annotations.coco.json", "train/a.jpg", formats.ROBOFLOW_COCO),
    ("labels.json", "data/a.jpg", formats.FIFTYONE_COCO)])
def test_coco_exports_of_each_tool_place_their_images_by_their_annotations(annotations, image, layout):
    found = recognize({annotations: coco_file("a.jpg"), image: IMAGE})
    assert found.layout == layout and names_of(found) == ["person"]
    (target,) = [target for path, target in found.moves if path == image]
    label = target.replace("images/", "labels/", 1)[:-4] + ".txt"
    assert found.generated[label] == b"0 0.25 0.25 0.5 0.5\n" and annotations in found.read


def test_coco_annotations_over_the_budget_refuse_the_export_before_reading():
    with pytest.raises(ArchiveRefused):
        formats.recognize(["instances_train.json"], {"instances_train.json": 10 ** 9},
                          lambda path: pytest.fail("read"), "export", annotation_budget=1000)


def test_a_class_list_too_large_is_an_issue_not_a_read():
    found = formats.recognize(["classes.txt", "images/a.jpg"], {"classes.txt": 10 ** 9, "images/a.jpg": 1},
                              lambda path: pytest.fail("read"), "export")
    assert "data.yaml" not in found.generated and [i.code for i in found.issues] == ["class_file_too_large"]


def test_a_tar_stream_maps_side_by_side_folders_and_makes_data_yaml_from_obj_names():
    streamed = formats.Streamed("d.tar")
    assert streamed.target("obj_train_data/a.jpg") == "images/train/a.jpg"
    assert streamed.target("train/images/b.jpg") == "images/train/b.jpg"
    assert streamed.keeps("obj.names", 10)
    streamed.class_files["obj.names"] = b"cat\n"
    layout, generated, issues = streamed.finish(wrote_data_yaml=False)
    assert layout == formats.CVAT_YOLO and yaml.safe_load(generated["data.yaml"])["names"] == {0: "cat"}
    assert streamed.finish(wrote_data_yaml=True)[1] == {}
    with pytest.raises(ValueError, match="from a zip"):
        streamed.target("Annotations/a.xml")
