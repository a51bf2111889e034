"""COCO archives imported one after another into a dataset keep its classes (issue 28, defect 1):
every listed category is a class in id order, whatever boxes a file holds, and a second file's
categories are matched by name onto the dataset's classes, never renumbering the labels there."""
from __future__ import annotations

import io
import json
import zipfile

import yaml
from PIL import Image

from tests.integration.helpers import dataset_when, issues_by_file
from tests.unit.test_coco import COCO_2017

NAMES = [name for _, name, _ in COCO_2017]
COCO_CATEGORIES = [{"id": i, "name": n, "supercategory": s} for i, n, s in COCO_2017]


def photo(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (100, 100), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def coco_zip(split: str, categories: list[dict], boxes: dict[str, list[tuple[int, list]]]) -> bytes:
    """The COCO 2017 layout: annotations/instances_<split>2017.json and images/<split>2017/,
    each image 100×100 with its boxes [(category id, [x, y, w, h])]."""
    document = {"info": {"description": split}, "licenses": [], "categories": categories, "images": [],
                "annotations": []}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for image_id, (file_name, image_boxes) in enumerate(sorted(boxes.items()), 1):
            archive.writestr(f"images/{split}2017/{file_name}", photo(["red", "green", "blue"][image_id % 3]))
            document["images"].append({"id": image_id, "file_name": file_name, "width": 100, "height": 100})
            for category, bbox in image_boxes:
                document["annotations"].append({"id": len(document["annotations"]) + 1, "image_id": image_id,
                                                "category_id": category, "bbox": bbox, "area": bbox[2] * bbox[3],
                                                "iscrowd": 0, "segmentation": []})
        archive.writestr(f"annotations/instances_{split}2017.json", json.dumps(document))
    return buffer.getvalue()


def import_zip(bucket, api, dataset: str, data: bytes, images: int, boxes: int, classes: list[str]) -> dict:
    bucket.blob(f"imports/{dataset}.zip").upload_from_string(data)
    return dataset_when(api, dataset, lambda view: view["classes"] == classes and all(
        view["stats"].get(k) == v for k, v in {"images": images, "boxes": boxes}.items()),
                        f"{images} images, {boxes} boxes, {len(classes)} classes")


def class_names_by_image(api, dataset: str) -> dict[str, list[str]]:
    return {image["path"].rsplit("/", 1)[-1]: sorted(box["class_name"] for box in image["labels"])
            for image in api.all_pages(f"/datasets/{dataset}/images", "images")}


def data_yaml_names(bucket, dataset: str) -> list[str]:
    names = yaml.safe_load(bucket.blob(f"datasets/{dataset}/data.yaml").download_as_bytes())["names"]
    return [names[k] for k in sorted(names)] if isinstance(names, dict) else names


def test_train_then_val_of_the_same_categories_keep_every_box_its_class(bucket, api, dataset):
    train = coco_zip("train", COCO_CATEGORIES, {"t1.jpg": [(70, [10, 10, 30, 30]), (2, [50, 50, 20, 20])]})
    import_zip(bucket, api, dataset, train, images=1, boxes=2, classes=NAMES)  # no person box: still 80 classes
    assert data_yaml_names(bucket, dataset) == NAMES and NAMES[1] == "bicycle"
    val = coco_zip("val", COCO_CATEGORIES, {"v1.jpg": [(1, [5, 5, 40, 60])]})
    import_zip(bucket, api, dataset, val, images=2, boxes=3, classes=NAMES)
    assert data_yaml_names(bucket, dataset) == NAMES
    assert class_names_by_image(api, dataset) == {"t1.jpg": ["bicycle", "toilet"], "v1.jpg": ["person"]}


def test_a_file_with_another_category_list_is_matched_by_name_and_says_so(bucket, api, dataset):
    train = coco_zip("train", COCO_CATEGORIES, {"t1.jpg": [(70, [10, 10, 30, 30]), (2, [50, 50, 20, 20])]})
    import_zip(bucket, api, dataset, train, images=1, boxes=2, classes=NAMES)
    other = [{"id": 1, "name": "unicorn", "supercategory": "animal"},
             {"id": 2, "name": "toilet", "supercategory": "furniture"}]
    val = coco_zip("val", other, {"v1.jpg": [(1, [5, 5, 40, 60]), (2, [50, 50, 40, 40])]})
    import_zip(bucket, api, dataset, val, images=2, boxes=4, classes=[*NAMES, "unicorn"])
    assert data_yaml_names(bucket, dataset) == [*NAMES, "unicorn"]
    assert class_names_by_image(api, dataset) == {"t1.jpg": ["bicycle", "toilet"], "v1.jpg": ["toilet", "unicorn"]}
    assert ("import_coco_classes", None) in issues_by_file(api, dataset)[f"imports/{dataset}.zip"]
    (archive,) = [f for f in api.get(f"/datasets/{dataset}/files")["files"] if f["path"] == f"imports/{dataset}.zip"]
    assert (archive["layout"], archive["unpacked"], archive["issue_count"]) == ("COCO", 2, 1)


def test_two_imports_at_once_never_give_one_class_id_two_names(bucket, api, dataset):
    """The race of two COCO archives: each reads data.yaml, then one writes its new classes first. The other's
    data.yaml, based on the generation it read, is refused; it plans again on the new names, so its labels
    use the ids the data.yaml it then writes gives them."""
    from common.services import archive_import
    bucket.blob(f"datasets/{dataset}/data.yaml").upload_from_string(b"names: [cat]\n")
    late = archive_import._DatasetYaml(dataset)
    assert late() == b"names: [cat]\n"
    bucket.blob(f"datasets/{dataset}/data.yaml").upload_from_string(b"names: [cat, dog]\n")  # the other import
    assert not late.write_first({"data.yaml": b"names: [cat, unicorn]\n"}, "imports/late.zip")
    assert data_yaml_names(bucket, dataset) == ["cat", "dog"]
    unicorns = coco_zip("val", [{"id": 7, "name": "unicorn", "supercategory": "animal"}],
                        {"u.jpg": [(7, [0, 0, 50, 50])]})
    with zipfile.ZipFile(io.BytesIO(unicorns)) as archive:
        plan, members, generated = archive_import.plan_zip(archive, "imports/late.zip", dataset=dataset)
    assert data_yaml_names(bucket, dataset) == ["cat", "dog", "unicorn"] and "data.yaml" not in generated
    assert generated["labels/val/u.txt"].startswith(b"2 ") and plan.layout == "COCO"
