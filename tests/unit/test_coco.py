"""COCO both ways: YOLO rows to COCO annotations and back, pycocotools reading the export, the import plan. Pure."""
import io
import json
import random
import tracemalloc

import pytest
from pycocotools.coco import COCO

from common.domain import coco, coco_import
from common.domain.archive import ArchiveRefused
from common.domain.labels import parse_label

CLASSES = ["person", "bus", "cat"]


def exported(images, classes=CLASSES, first_annotation_id=1) -> dict:
    return json.loads("".join(coco.instances_json(images, classes, first_annotation_id, "test")))


def random_rows(rng: random.Random, n: int) -> tuple:
    rows = []
    for _ in range(n):
        w, h = rng.uniform(0.01, 0.5), rng.uniform(0.01, 0.5)
        rows.append((rng.randrange(len(CLASSES)), rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2), w, h))
    return tuple(rows)


def test_a_yolo_row_becomes_a_coco_box_in_pixels_of_the_oriented_size():
    record = coco.annotation(7, 3, (1, 0.5, 0.25, 0.2, 0.1), 640, 480)
    assert record == {"id": 7, "image_id": 3, "category_id": 2, "bbox": [256.0, 96.0, 128.0, 48.0],
                      "area": 6144.0, "iscrowd": 0, "segmentation": []}


def test_categories_start_at_one():
    assert coco.categories(["a", "b"]) == [{"id": 1, "name": "a", "supercategory": "none"},
                                           {"id": 2, "name": "b", "supercategory": "none"}]


def test_pycocotools_loads_the_export_and_ids_are_unique(tmp_path):
    rng = random.Random(1)
    images = [coco.ExportedImage(n + 1, f"i{n}.jpg", 640, 480, random_rows(rng, n % 4)) for n in range(10)]
    path = tmp_path / "instances_train.json"
    path.write_text("".join(coco.instances_json(images, CLASSES, 100, "test")))
    loaded = COCO(str(path))
    assert len(loaded.getImgIds()) == 10 and loaded.getCatIds() == [1, 2, 3]
    annotations = loaded.loadAnns(loaded.getAnnIds())
    assert len(annotations) == coco.annotation_count(images) == len({a["id"] for a in annotations})
    assert min(a["id"] for a in annotations) == 100
    assert all(a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3], abs=1e-3) for a in annotations)


def archive_of(images, document_name="annotations/instances_train.json", classes=CLASSES):
    members = [f"images/train/{i.file_name}" for i in images]
    return coco_import.plan({document_name: json.dumps(exported(images, classes)).encode()}, members, "imports/d.zip")


def test_round_trip_gives_back_the_same_label_rows():
    rng = random.Random(2)
    images = [coco.ExportedImage(n + 1, f"i{n}.jpg", 317 + n, 211 + 2 * n, random_rows(rng, 1 + n % 5))
              for n in range(20)]
    plan = archive_of(images)
    assert plan.classes == CLASSES and not plan.issues
    for image in images:
        assert plan.images[f"images/train/{image.file_name}"] == f"images/train/{image.file_name}"
        rows = [box.row() for box in parse_label(plan.labels[f"labels/train/{image.file_name[:-4]}.txt"], "x").boxes]
        assert len(rows) == len(image.rows)
        for got, want in zip(rows, image.rows):
            assert got[0] == want[0] and got[1:] == pytest.approx(want[1:], abs=1e-4)


def test_an_image_without_annotations_imports_as_a_background_image():
    plan = archive_of([coco.ExportedImage(1, "bg.jpg", 100, 100, ())])
    assert plan.labels == {"labels/train/bg.txt": b""}


@pytest.mark.parametrize("name, split", [("annotations/instances_val2017.json", "val"),
                                         ("x/instances_train.json", "train"),
                                         ("valid/_annotations.coco.json", "val"),
                                         ("annotations/instances_default.json", None)])
def test_the_split_comes_from_the_annotation_file(name, split):
    assert coco.is_annotation_file(name) and coco.split_of_annotation_file(name) == split


def test_roboflow_layout_images_beside_the_file_and_its_parent_category_is_no_class():
    document = {"images": [{"id": 0, "file_name": "a.jpg", "width": 100, "height": 50}],
                "categories": [{"id": 0, "name": "things", "supercategory": "none"},
                               {"id": 1, "name": "cat", "supercategory": "things"},
                               {"id": 2, "name": "dog", "supercategory": "things"}],
                "annotations": [{"id": 1, "image_id": 0, "category_id": 2, "bbox": [10, 10, 20, 10], "area": 200,
                                 "iscrowd": 0},
                                {"id": 2, "image_id": 0, "category_id": 1, "bbox": [0, 0, 100, 50], "iscrowd": 1}]}
    plan = coco_import.plan({"valid/_annotations.coco.json": json.dumps(document).encode()}, ["valid/a.jpg"], "a")
    assert plan.classes == ["cat", "dog"]
    assert plan.images == {"valid/a.jpg": "images/val/a.jpg"}
    assert plan.labels == {"labels/val/a.txt": b"1 0.2 0.3 0.2 0.2\n"}
    assert [issue.code for issue in plan.issues] == ["import_coco_box"]  # the crowd annotation


def test_boxes_outside_the_image_are_clipped_and_bad_files_are_issues():
    document = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100},
                           {"id": 2, "file_name": "missing.jpg", "width": 100, "height": 100}],
                "categories": [{"id": 1, "name": "x"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [-10, 90, 20, 20]},
                                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5]}]}
    plan = coco_import.plan({"annotations/instances_train.json": json.dumps(document).encode(),
                      "annotations/instances_val.json": b"{not json"}, ["images/train/a.jpg"], "a")
    assert plan.labels == {"labels/train/a.txt": b"0 0.05 0.95 0.1 0.1\n"}
    assert sorted(issue.code for issue in plan.issues) == ["import_coco_box", "import_coco_image_missing",
                                                           "import_coco_json"]


def test_annotation_files_over_the_budget_are_refused_by_their_sizes():
    coco.check_sizes({"instances_train.json": 100, "instances_val.json": 100}, 200)
    with pytest.raises(ArchiveRefused, match="instances_train.json is 201 bytes of COCO JSON") as refused:
        coco.check_sizes({"instances_train.json": 201}, 200)
    assert refused.value.code == "import_coco_too_large"
    with pytest.raises(ArchiveRefused, match="201 bytes together"):
        coco.check_sizes({"instances_train.json": 100, "instances_val.json": 101}, 200)


# ---- reading annotation files as streams ----------------------------------------------------

def streamed_file(pieces) -> bytes:
    return "".join(pieces).encode()


def test_a_file_is_read_without_building_what_the_import_does_not_use():
    huge = ",".join(["1.5"] * 1_500_000)  # a segmentation of ~6 MB
    document = streamed_file(['{"categories": [{"id": 1, "name": "a", "caption": "', "x" * 1000, '"}], ',
                              '"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}], ',
                              '"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 5, 20, 10], ',
                              f'"segmentation": [[{huge}]]', "}]}"])
    tracemalloc.start()
    try:
        result = coco_import.plan({"train/_annotations.coco.json": lambda: io.BytesIO(document)}, ["train/a.jpg"],
                                  "imports/d.zip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.classes == ["a"] and result.labels == {"labels/train/a.txt": b"0 0.2 0.2 0.2 0.2\n"}
    assert peak < len(document) / 2, peak  # the document itself is not held, nor its segmentation built


def test_boxes_past_the_cap_of_an_image_and_odd_elements_are_left_out_and_counted(monkeypatch):
    monkeypatch.setattr(coco_import, "MAX_BOXES_PER_IMAGE", 3)
    boxes = [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}] * 5
    document = {"categories": [{"id": 1, "name": "a"}, 7], "annotations": [*boxes, "odd", {"bbox": {"x": 1}}],
                "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}, ["odd"]]}
    result = coco_import.plan({"instances_train.json": json.dumps(document).encode()}, ["images/train/a.jpg"], "z")
    assert result.labels["labels/train/a.txt"].count(b"\n") == 3
    assert [(i.code, i.message) for i in result.issues] == [
        ("import_coco_box", "instances_train.json: 5 annotation(s) or image record(s) left out (crowd, no area, "
                            "unknown category or image, malformed)")]


def test_more_categories_than_a_dataset_has_classes_refuse_the_archive(monkeypatch):
    monkeypatch.setattr(coco_import, "MAX_CATEGORIES", 2)
    document = {"categories": [{"id": n, "name": str(n)} for n in range(3)], "images": [], "annotations": []}
    with pytest.raises(ArchiveRefused, match="more than 2 categories") as refused:
        coco_import.plan({"instances_train.json": json.dumps(document).encode()}, [], "z")
    assert refused.value.code == "import_coco_categories"


def test_a_truncated_file_is_an_issue_not_a_failure():
    result = coco_import.plan({"instances_train.json": b'{"images": [{"id": 1'}, [], "z")
    assert [i.code for i in result.issues] == ["import_coco_json"] and result.labels == {}


# ---- which categories are classes, and in what order ----------------------------------------

# COCO 2017's categories as instances_*.json list them: ids 1..90 with gaps, `person` its own supercategory.
COCO_2017 = [(1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (4, "motorcycle", "vehicle"),
             (5, "airplane", "vehicle"), (6, "bus", "vehicle"), (7, "train", "vehicle"), (8, "truck", "vehicle"),
             (9, "boat", "vehicle"), (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
             (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"),
             (16, "bird", "animal"), (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"),
             (20, "sheep", "animal"), (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
             (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
             (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
             (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"),
             (36, "snowboard", "sports"), (37, "sports ball", "sports"), (38, "kite", "sports"),
             (39, "baseball bat", "sports"), (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
             (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
             (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"),
             (50, "spoon", "kitchen"), (51, "bowl", "kitchen"), (52, "banana", "food"), (53, "apple", "food"),
             (54, "sandwich", "food"), (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"),
             (58, "hot dog", "food"), (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"),
             (62, "chair", "furniture"), (63, "couch", "furniture"), (64, "potted plant", "furniture"),
             (65, "bed", "furniture"), (67, "dining table", "furniture"), (70, "toilet", "furniture"),
             (72, "tv", "electronic"), (73, "laptop", "electronic"), (74, "mouse", "electronic"),
             (75, "remote", "electronic"), (76, "keyboard", "electronic"), (77, "cell phone", "electronic"),
             (78, "microwave", "appliance"), (79, "oven", "appliance"), (80, "toaster", "appliance"),
             (81, "sink", "appliance"), (82, "refrigerator", "appliance"), (84, "book", "indoor"),
             (85, "clock", "indoor"), (86, "vase", "indoor"), (87, "scissors", "indoor"), (88, "teddy bear", "indoor"),
             (89, "hair drier", "indoor"), (90, "toothbrush", "indoor")]
COCO_2017_NAMES = [name for _, name, _ in COCO_2017]


def coco_2017_file(boxes: list[tuple[int, list]]) -> bytes:
    """instances_train2017.json of one 100×100 image, a.jpg, with boxes [(category id, bbox)]."""
    return json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
                       "categories": [{"id": i, "name": n, "supercategory": s} for i, n, s in COCO_2017],
                       "annotations": [{"id": n + 1, "image_id": 1, "category_id": category, "bbox": bbox,
                                        "iscrowd": 0} for n, (category, bbox) in enumerate(boxes)]}).encode()


def test_coco_2017_categories_are_80_classes_in_id_order_without_any_person_box():
    plan = coco_import.plan({"annotations/instances_train2017.json": coco_2017_file([(2, [0, 0, 10, 10]),
                                                                                      (70, [50, 50, 10, 10])])},
                            ["images/train2017/a.jpg"], "imports/d.zip")
    assert len(COCO_2017_NAMES) == 80 and plan.classes == COCO_2017_NAMES
    assert plan.classes[0] == "person" and plan.classes[1] == "bicycle"
    assert plan.labels["labels/train/a.txt"] == b"1 0.05 0.05 0.1 0.1\n61 0.55 0.55 0.1 0.1\n"
    assert not plan.issues


def test_roboflow_grouping_category_0_is_no_class_but_a_category_named_after_a_grouping_with_boxes_is():
    categories = [{"id": 0, "name": "pets-x1y2", "supercategory": "none"},
                  {"id": 1, "name": "cat", "supercategory": "pets-x1y2"},
                  {"id": 2, "name": "dog", "supercategory": "pets-x1y2"}]
    document = {"images": [{"id": 0, "file_name": "a.jpg", "width": 100, "height": 100}], "categories": categories,
                "annotations": [{"id": 1, "image_id": 0, "category_id": 2, "bbox": [0, 0, 10, 10]}]}
    plan = coco_import.plan({"train/_annotations.coco.json": json.dumps(document).encode()}, ["train/a.jpg"], "a")
    assert plan.classes == ["cat", "dog"] and plan.labels == {"labels/train/a.txt": b"1 0.05 0.05 0.1 0.1\n"}
    document["annotations"].append({"id": 2, "image_id": 0, "category_id": 0, "bbox": [0, 0, 10, 10]})
    plan = coco_import.plan({"train/_annotations.coco.json": json.dumps(document).encode()}, ["train/a.jpg"], "a")
    assert plan.classes == ["pets-x1y2", "cat", "dog"]  # boxes of it: a class, not left out


def test_a_second_file_with_the_same_list_keeps_the_dataset_classes_and_its_ids():
    plan = coco_import.plan({"annotations/instances_val2017.json": coco_2017_file([(1, [0, 0, 10, 10])])},
                            ["images/val2017/a.jpg"], "imports/d.zip", existing=COCO_2017_NAMES)
    assert plan.classes == COCO_2017_NAMES and not plan.issues
    assert plan.labels["labels/val/a.txt"] == b"0 0.05 0.05 0.1 0.1\n"


def test_a_different_category_list_is_matched_by_name_onto_the_dataset_classes():
    document = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
                "categories": [{"id": 1, "name": "toilet"}, {"id": 2, "name": "unicorn"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
                                {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10]}]}
    plan = coco_import.plan({"instances_train.json": json.dumps(document).encode()}, ["images/train/a.jpg"], "z",
                            existing=COCO_2017_NAMES)
    assert plan.classes == [*COCO_2017_NAMES, "unicorn"]
    assert plan.labels["labels/train/a.txt"] == b"61 0.05 0.05 0.1 0.1\n80 0.05 0.05 0.1 0.1\n"
    assert [(i.code, "'unicorn'" in i.message) for i in plan.issues] == [("import_coco_classes", True)]


def test_a_dataset_naming_a_class_twice_refuses_a_coco_archive_with_what_to_do():
    document = {"images": [], "categories": [{"id": 1, "name": "cat"}], "annotations": []}
    with pytest.raises(ArchiveRefused, match="names 'cat' more than once") as refused:
        coco_import.plan({"instances_train.json": json.dumps(document).encode()}, [], "z", existing=["cat", "cat"])
    assert refused.value.code == "import_coco_classes"
