"""The fixtures are what the tools write: each layout of tests/formats/layouts.py read by the tools' own readers
(supervision's from_yolo / from_coco / from_pascal_voc, pycocotools, Ultralytics' check_det_dataset) gives the
canonical dataset, so the round trip starts from real exports. Needs no stack."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import supervision as sv
from pycocotools.coco import COCO

from tests.formats import layouts
from tests.formats.layouts import CLASSES, PICTURES
from tests.formats.test_round_trip import (EXACT, ULTRALYTICS_READS, _written_out, canonical, differences,
                                           in_pixels, read_as_index, supervision_images)

SPLITLESS = layouts.Layout("splitless", None, (), keeps_splits=False, yolo_family=False)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Each layout written out: {layout key: folder}."""
    return {layout.key: _written_out(layout.write(), tmp_path_factory.mktemp(layout.key)) for layout in layouts.LAYOUTS}


# (layout, {split: (images folder, labels folder)}, data.yaml or dataset.yaml)
YOLO_FOLDERS = [
    ("ultralytics-names-list", {s: (f"images/{s}", f"labels/{s}") for s in ("train", "val")}, "data.yaml"),
    ("ultralytics-names-mapping", {s: (f"images/{s}", f"labels/{s}") for s in ("train", "val")}, "data.yaml"),
    ("roboflow-yolo", {"train": ("train/images", "train/labels"), "val": ("valid/images", "valid/labels")},
     "data.yaml"),
    ("fiftyone-yolov5", {s: (f"images/{s}", f"labels/{s}") for s in ("train", "val")}, "dataset.yaml"),
]


@pytest.mark.parametrize("key, folders, yaml", YOLO_FOLDERS, ids=[case[0] for case in YOLO_FOLDERS])
def test_supervision_reads_the_yolo_layouts(written, key, folders, yaml):
    images, classes = [], None
    for split, (image_folder, label_folder) in folders.items():
        read = sv.DetectionDataset.from_yolo(str(written[key] / image_folder), str(written[key] / label_folder),
                                             str(written[key] / yaml))
        classes = read.classes
        images += supervision_images(read, split)
    assert differences(read_as_index(classes, images), canonical(), EXACT) == []


# (layout, {split: (images folder, annotation file)}): a split of None is a layout without splits
COCO_FILES = [
    ("roboflow-coco", {"train": ("train", "train/_annotations.coco.json"),
                       "val": ("valid", "valid/_annotations.coco.json")}),
    ("cvat-coco", {None: ("images", "annotations/instances_default.json")}),
    ("fiftyone-coco", {None: ("data", "labels.json")}),
    ("coco-2017", {s: (f"{s}2017", f"annotations/instances_{s}2017.json") for s in ("train", "val")}),
]

DATASET_CATEGORY = {"roboflow-coco": "fruit"}  # Roboflow's category 0, the dataset itself: in no box, no class


@pytest.mark.parametrize("key, files", COCO_FILES, ids=[case[0] for case in COCO_FILES])
def test_supervision_and_pycocotools_read_the_coco_layouts(written, key, files):
    read_by_supervision, read_by_pycocotools, classes = [], [], set()
    for split, (image_folder, annotations_file) in files.items():
        read = sv.DetectionDataset.from_coco(str(written[key] / image_folder), str(written[key] / annotations_file))
        read_by_supervision += supervision_images(read, split)
        coco = COCO(str(written[key] / annotations_file))
        names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        classes.add(tuple(name for _, name in sorted(names.items()) if name != DATASET_CATEGORY.get(key)))
        for image in coco.loadImgs(coco.getImgIds()):
            assert (written[key] / image_folder / image["file_name"]).is_file()
            read_by_pycocotools.append((split, image["width"], image["height"], [
                (names[a["category_id"]], a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                 a["bbox"][1] + a["bbox"][3]) for a in coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))]))
    (classes,) = classes
    layout = EXACT if None not in files else SPLITLESS
    assert differences(read_as_index(list(classes), read_by_supervision), canonical(), layout) == []
    assert differences(read_as_index(list(classes), read_by_pycocotools), canonical(), layout) == []


def test_supervision_reads_the_voc_layout(written):
    folder = written["cvat-voc"]
    read = sv.DetectionDataset.from_pascal_voc(str(folder / "JPEGImages"), str(folder / "Annotations"))
    split_of = {stem: split for split in ("train", "val")
                for stem in (folder / "ImageSets" / "Main" / f"{split}.txt").read_text().split()}
    images = [(split_of[Path(path).stem], *in_pixels(read.classes, image, detections))
              for path, image, detections in read]
    assert sorted(read.classes) == sorted(CLASSES)
    assert differences(read_as_index(list(CLASSES), images), canonical(), EXACT) == []


@pytest.mark.parametrize("key", ["ultralytics-names-list", "ultralytics-txt-lists"])
def test_ultralytics_check_det_dataset_reads_the_ultralytics_layouts(written, key):
    """The layouts whose data.yaml Ultralytics resolves where they lie (the others name a `path:` on the
    author's machine); `path: .` is the folder Ultralytics runs in."""
    result = subprocess.run([sys.executable, "-c", ULTRALYTICS_READS, str(written[key] / "data.yaml")],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "YOLO_OFFLINE": "1"},
                            cwd=written[key])
    assert result.returncode == 0, result.stderr[-3000:]
    read = json.loads(result.stdout.strip().splitlines()[-1])
    images = [(split, w, h, [(read["names"][c], (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w,
                              (cy + bh / 2) * h) for c, cx, cy, bw, bh in rows])
              for split, w, h, rows in read["images"]]
    assert len(images) == len(PICTURES)
    assert differences(read_as_index(read["names"], images), canonical(), EXACT) == []
