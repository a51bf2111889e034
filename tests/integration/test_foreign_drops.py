"""Other tools' YOLO exports dropped file by file into datasets/<d>/, in a shuffled order, through the real storage
client: CVAT YOLO 1.1 (obj_<split>_data/, images and labels side by side, obj.names), Darknet (data/obj/,
data/obj.names) and Label Studio YOLO (images/, labels/, classes.txt). The index must hold every image with its
boxes and split, and the class names the export's class file gives, unless a data.yaml is dropped as well: that
one always wins. COCO and Pascal VOC files dropped one by one say how to bring their export in."""
from __future__ import annotations

import json
import random

import pytest

from common.cloud import dataset_index
from common.domain import class_files, layout
from common.platform.events import FINALIZED, ObjectEvent
from common.platform.handler import Result
from common.services import class_files as class_file_service
from infra.local.client import wait_for
from infra.local.sample import synthetic_image
from tests.integration.helpers import dataset_when, drop, issues_by_file

# image path -> (size, split, boxes as YOLO rows); an empty list is a background image (an empty label file)
CVAT_IMAGES = {
    "obj_train_data/frame_000000.jpg": ((64, 48), "train", [(0, 0.5, 0.5, 0.25, 0.5), (2, 0.25, 0.25, 0.125, 0.25)]),
    "obj_train_data/frame_000001.jpg": ((80, 60), "train", []),
    "obj_train_data/sub/frame_000002.png": ((96, 64), "train", [(1, 0.75, 0.5, 0.25, 0.5)]),
    "obj_valid_data/frame_000003.jpg": ((64, 64), "val", [(1, 0.5, 0.5, 0.5, 0.5), (0, 0.125, 0.125, 0.25, 0.25)]),
}
DARKNET_IMAGES = {  # data/train.txt lists them all: they take its split
    "data/obj/img1.jpg": ((64, 48), "train", [(1, 0.5, 0.5, 0.25, 0.5)]),
    "data/obj/img2.png": ((80, 60), "train", [(0, 0.25, 0.75, 0.5, 0.5), (1, 0.75, 0.25, 0.25, 0.25)]),
    "data/obj/img3.jpg": ((64, 64), "train", [(0, 0.5, 0.5, 1.0, 1.0)]),
}
LABEL_STUDIO_IMAGES = {  # Label Studio prefixes each file name with a hash of the upload
    "images/1f3c9a2e-street.jpg": ((64, 48), None, [(0, 0.5, 0.5, 0.25, 0.5), (1, 0.25, 0.75, 0.25, 0.25)]),
    "images/7b0d4e11-runway.jpg": ((80, 60), None, [(0, 0.5, 0.25, 0.75, 0.25)]),
}
FIFTYONE_IMAGES = {
    "images/train/000001.jpg": ((64, 48), "train", [(2, 0.5, 0.5, 0.25, 0.5)]),
    "images/val/000002.jpg": ((80, 60), "val", [(0, 0.25, 0.25, 0.25, 0.25), (1, 0.75, 0.75, 0.25, 0.25)]),
}
CVAT_NAMES, DARKNET_NAMES, LABEL_STUDIO_NAMES = ["person", "bus", "tie"], ["cat", "dog"], ["Airplane", "Car"]
FIFTYONE_NAMES = ["bird", "cat", "dog"]


def yolo_rows(boxes: list[tuple]) -> bytes:
    """As CVAT and Darknet write them: six decimals."""
    return "".join(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in boxes).encode()


def images_and_labels(images: dict, seed: int) -> dict[str, bytes]:
    files = {}
    for number, (path, (size, _, boxes)) in enumerate(images.items()):
        fmt = "PNG" if path.endswith(".png") else "JPEG"
        files[path] = synthetic_image(seed + number, size=size, fmt=fmt)[0]
        files[layout.relative_label_path(path)] = yolo_rows(boxes)
    return files


def cvat_yolo_export() -> dict[str, bytes]:
    """CVAT's "YOLO 1.1" export of a task with a train and a valid subset."""
    lists = {split: "".join(f"data/{path}\n" for path, (_, s, _) in CVAT_IMAGES.items() if s == split)
             for split in ("train", "val")}
    return {"obj.data": b"classes = 3\ntrain = data/train.txt\nvalid = data/valid.txt\nnames = data/obj.names\n"
                        b"backup = backup/\n",
            "obj.names": "\n".join(CVAT_NAMES).encode() + b"\n",
            "train.txt": lists["train"].encode(), "valid.txt": lists["val"].encode(),
            **images_and_labels(CVAT_IMAGES, 100)}


def darknet_dataset() -> dict[str, bytes]:
    """AlexeyAB darknet's training layout: data/obj/ with the images and labels, data/obj.names, data/obj.data."""
    return {"data/obj.names": "\n".join(DARKNET_NAMES).encode() + b"\n",
            "data/obj.data": b"classes = 2\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n",
            "data/train.txt": "".join(f"{path}\n" for path in DARKNET_IMAGES).encode(),
            **images_and_labels(DARKNET_IMAGES, 200)}


def label_studio_export() -> dict[str, bytes]:
    """Label Studio's "YOLO" export: classes.txt, notes.json, images/, labels/."""
    notes = {"categories": [{"id": i, "name": name} for i, name in enumerate(LABEL_STUDIO_NAMES)],
             "info": {"year": 2026, "version": "1.0", "contributor": "Label Studio"}}
    return {"classes.txt": "\n".join(LABEL_STUDIO_NAMES).encode(), "notes.json": json.dumps(notes).encode(),
            **images_and_labels(LABEL_STUDIO_IMAGES, 300)}


def fiftyone_yolov5_export() -> dict[str, bytes]:
    """FiftyOne's YOLOv5Dataset export: dataset.yaml (names as a mapping, the export's absolute path),
    images/<split>/, labels/<split>/."""
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(FIFTYONE_NAMES))
    return {"dataset.yaml": f"names:\n{names}path: /home/me/fiftyone/export\ntrain: ./images/train/\n"
                            f"val: ./images/val/\n".encode(),
            **images_and_labels(FIFTYONE_IMAGES, 400)}


def drop_shuffled(bucket, dataset: str, files: dict[str, bytes], seed: int) -> None:
    names = list(files)
    random.Random(seed).shuffle(names)
    drop(bucket, dataset, {name: files[name] for name in names})


def indexed_when(api, dataset: str, images: dict, names: list[str]) -> dict:
    boxes = sum(len(boxes) for _, _, boxes in images.values())
    counted = [split or "none" for _, split, _ in images.values()]
    splits = {split: counted.count(split) for split in counted}  # compared without zeros: "none" is left out at 0
    return dataset_when(api, dataset, lambda view: view["classes"] == names and view["stats"]["images"] == len(images)
                        and view["stats"]["boxes"] == boxes
                        and {s: n for s, n in view["stats"]["splits"].items() if n} == splits,
                        f"{len(images)} images, {boxes} boxes, {names}, splits {splits}")


def assert_index_holds(api, dataset: str, images: dict, names: list[str], file_issues: dict | None = None) -> None:
    found = {image["path"].removeprefix(f"datasets/{dataset}/"): image
             for image in api.all_pages(f"/datasets/{dataset}/images", "images")}
    assert set(found) == set(images)
    for path, (size, split, boxes) in images.items():
        image = found[path]
        assert (image["width"], image["height"], image["split"]) == (*size, split), path
        assert image["label_path"] == f"datasets/{dataset}/{layout.relative_label_path(path)}"
        assert [(box["class_id"], box["class_name"], box["cx"], box["cy"], box["w"], box["h"])
                for box in image["labels"]] == [(c, names[c], *xywh) for c, *xywh in boxes], path
        assert image["issues"] == [], path
    assert issues_by_file(api, dataset) == (file_issues or {})


def file_record(dataset: str, relative: str) -> dict:
    return wait_for(lambda: dataset_index.read_file(dataset, layout.dataset_object(dataset, relative)),
                    lambda record: record is not None, 60, f"the record of {relative}")


@pytest.fixture(scope="module")
def cvat(bucket, api) -> str:
    dataset = "drop-cvat-yolo"
    drop_shuffled(bucket, dataset, cvat_yolo_export(), seed=1)
    indexed_when(api, dataset, CVAT_IMAGES, CVAT_NAMES)
    return dataset


@pytest.fixture(scope="module")
def darknet(bucket, api) -> str:
    dataset = "drop-darknet"
    drop_shuffled(bucket, dataset, darknet_dataset(), seed=2)
    indexed_when(api, dataset, DARKNET_IMAGES, DARKNET_NAMES)
    return dataset


@pytest.fixture(scope="module")
def label_studio(bucket, api) -> str:
    dataset = "drop-label-studio"
    drop_shuffled(bucket, dataset, label_studio_export(), seed=3)
    indexed_when(api, dataset, LABEL_STUDIO_IMAGES, LABEL_STUDIO_NAMES)
    return dataset


def test_a_cvat_yolo_export_dropped_is_indexed_with_its_splits_boxes_and_names(api, bucket, cvat):
    assert_index_holds(api, cvat, CVAT_IMAGES, CVAT_NAMES)
    assert api.get(f"/datasets/{cvat}")["stats"]["splits"] == {"train": 3, "val": 1, "test": 0}
    record = file_record(cvat, "obj.names")
    assert (record["layout"], record["summary"], record["names"]) == \
        ("Darknet YOLO / CVAT YOLO 1.1", class_files.WRITTEN, 3)
    written = bucket.blob(layout.dataset_object(cvat, "data.yaml")).download_as_bytes()
    assert written.startswith(b"# names from obj.names (Darknet YOLO / CVAT YOLO 1.1) generation ")
    for companion in ("obj.data", "train.txt", "valid.txt"):  # recorded with their layout, no issue
        assert file_record(cvat, companion)["layout"] == "Darknet YOLO / CVAT YOLO 1.1"


def test_the_drop_summary_lists_each_class_and_companion_file_with_its_layout(api, cvat):
    listed = {row["path"]: row for row in api.get(f"/datasets/{cvat}/files", page_size=1000)["files"]}
    names = listed[layout.dataset_object(cvat, "obj.names")]
    assert (names["layout"], names["summary"], names["names"], names["issue_count"]) == \
        ("Darknet YOLO / CVAT YOLO 1.1", class_files.WRITTEN, 3, 0)
    assert listed[layout.dataset_object(cvat, "obj.data")]["layout"] == "Darknet YOLO / CVAT YOLO 1.1"
    assert not any("/obj_train_data/" in path for path in listed)  # images and labels are not "files"


def test_a_darknet_folder_dropped_is_indexed_with_the_split_its_list_says(api, darknet):
    assert_index_holds(api, darknet, DARKNET_IMAGES, DARKNET_NAMES)
    record = file_record(darknet, "data/train.txt")
    assert record["issues"] == [] and "the train split" in record["summary"]
    record = file_record(darknet, "data/obj.names")
    assert (record["layout"], record["summary"]) == ("Darknet YOLO", class_files.WRITTEN)


def test_a_label_studio_export_dropped_is_indexed_with_classes_txts_names(api, label_studio):
    assert_index_holds(api, label_studio, LABEL_STUDIO_IMAGES, LABEL_STUDIO_NAMES)
    record = file_record(label_studio, "classes.txt")
    assert (record["layout"], record["summary"]) == ("Label Studio YOLO", class_files.WRITTEN)
    assert file_record(label_studio, "notes.json")["issues"] == []


def test_a_fiftyone_yolov5_export_dropped_is_named_by_its_dataset_yaml(bucket, api, dataset):
    drop_shuffled(bucket, dataset, fiftyone_yolov5_export(), seed=4)
    indexed_when(api, dataset, FIFTYONE_IMAGES, FIFTYONE_NAMES)
    assert_index_holds(api, dataset, FIFTYONE_IMAGES, FIFTYONE_NAMES)
    record = file_record(dataset, "dataset.yaml")
    assert (record["layout"], record["summary"]) == ("FiftyOne YOLOv5", class_files.WRITTEN)


def test_a_redelivered_class_file_event_writes_nothing_twice(bucket, label_studio):
    """Handled again after data.yaml was written (a worker that died before recording the file, or a plain
    redelivery): the data.yaml is recognised as its own, never written again, and the summary stays."""
    name = layout.dataset_object(label_studio, "classes.txt")
    data_yaml = bucket.get_blob(layout.dataset_object(label_studio, "data.yaml"))
    source = bucket.get_blob(name)
    event = ObjectEvent(FINALIZED, bucket.name, name, source.generation, source.size, "redelivered")
    assert class_file_service.handle(event, layout.classify(name)).result == Result.DUPLICATE
    dataset_index.files_of(label_studio).document(layout.doc_id(name)).delete()  # as if never recorded
    assert class_file_service.handle(event, layout.classify(name)).result == Result.APPLIED
    assert dataset_index.read_file(label_studio, name)["summary"] == class_files.WRITTEN
    assert bucket.get_blob(data_yaml.name).generation == data_yaml.generation


def test_a_data_yaml_dropped_before_the_class_file_wins(bucket, api, dataset):
    data_yaml = b"names: [Car, Airplane]\n"
    drop(bucket, dataset, {"data.yaml": data_yaml})
    dataset_when(api, dataset, lambda view: view["classes"] == ["Car", "Airplane"], "data.yaml's names")
    drop(bucket, dataset, label_studio_export())
    indexed_when(api, dataset, LABEL_STUDIO_IMAGES, ["Car", "Airplane"])
    assert file_record(dataset, "classes.txt")["summary"] == class_files.NOT_USED
    assert bucket.blob(layout.dataset_object(dataset, "data.yaml")).download_as_bytes() == data_yaml


def test_a_data_yaml_dropped_after_the_class_file_wins(bucket, api, dataset):
    drop(bucket, dataset, {"obj.names": b"person\nbus\ntie\n"})
    dataset_when(api, dataset, lambda view: view["classes"] == CVAT_NAMES, "obj.names' names")
    drop(bucket, dataset, {"data.yaml": b"names: {0: human, 1: coach, 2: tie}\n"})
    dataset_when(api, dataset, lambda view: view["classes"] == ["human", "coach", "tie"], "data.yaml's names")


def test_a_class_file_that_cannot_be_read_says_why_and_writes_no_data_yaml(bucket, api, dataset):
    drop(bucket, dataset, {"classes.txt": b"cat\n\ndog\n"})
    record = file_record(dataset, "classes.txt")
    assert record["summary"] == class_files.NOT_READ
    assert [(issue["code"], issue["line"]) for issue in record["issues"]] == [("class_file_blank_line", 2)]
    assert bucket.get_blob(layout.dataset_object(dataset, "data.yaml")) is None


def test_coco_and_voc_files_dropped_one_by_one_say_how_to_bring_the_export_in(bucket, api, dataset):
    drop(bucket, dataset, {"annotations/instances_default.json": b'{"images": [], "annotations": []}',
                           "Annotations/2007_000027.xml": b"<annotation><filename>a.jpg</filename></annotation>",
                           "README.md": b"hello"})
    issues = wait_for(lambda: issues_by_file(api, dataset) if api.get_or_none(f"/datasets/{dataset}") else {},
                      lambda found: len(found) == 3, 60, "three files' issues")
    assert issues == {"annotations/instances_default.json": [("drop_coco_json", None)],
                      "Annotations/2007_000027.xml": [("drop_voc_file", None)],
                      "README.md": [("unrecognized_file", None)]}
    messages = [issue["message"] for issue in api.all_pages(f"/datasets/{dataset}/issues", "issues")
                if issue["code"].startswith("drop_")]
    assert all(f"imports/{dataset}.zip" in message and "yolodrop push" in message for message in messages)
