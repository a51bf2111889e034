"""Segmentation and oriented-box labels dropped on the local stack: each polygon row is indexed as its bounding
box, the file carries one issue saying so, and an edit through the API writes the plain boxes."""
from __future__ import annotations

import functions_framework

from infra.local.client import wait_for
from infra.local.sample import data_yaml, synthetic_image
from tests.integration.helpers import DEADLINE, drop, issues_by_file, stats_when

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
CLASSES = ["plane", "ship", "potted plant"]
# An outline traced around a plant (Ultralytics segment row, as in coco8-seg) and a plane's corners (OBB row, as
# in DOTA8), the OBB file mixed with a box row and a polygon whose point lies off the image.
SEGMENT_LABEL = (b"2 0.519219 0.451121 0.4875 0.404907 0.454141 0.400981 0.435859 0.430981 0.432516 0.495491 "
                 b"0.443125 0.562804 0.468594 0.607196 0.502578 0.615748 0.536641 0.589509 0.553906 0.531075\n")
OBB_LABEL = (b"1 0.25 0.25 0.1 0.1\n"
             b"0 0.512109 0.300781 0.589063 0.351563 0.555078 0.403320 0.478125 0.352539\n"
             b"0 0.2 0.6 0.3 0.6 1.3 0.7\n")


def image_view(api, dataset: str, name: str, done, what: str) -> dict:
    return wait_for(lambda: api.get_or_none(f"/datasets/{dataset}/images/labels/train/{name}"),
                    lambda view: view is not None and done(view), DEADLINE, what)


def shapes(view: dict) -> list[tuple]:
    return [(box["class_name"], box["cx"], box["cy"], box["w"], box["h"]) for box in view["labels"]]


def test_polygon_labels_are_indexed_as_their_boxes_with_one_issue_each(bucket, api, dataset):
    drop(bucket, dataset, {"data.yaml": data_yaml(CLASSES).encode(),
                           "images/train/plant.jpg": synthetic_image(31)[0], "labels/train/plant.txt": SEGMENT_LABEL,
                           "images/train/plane.jpg": synthetic_image(32)[0], "labels/train/plane.txt": OBB_LABEL})
    stats = stats_when(api, dataset, {"images": 2, "labeled": 2})
    assert stats["boxes"] == 3

    plant = api.get(f"/datasets/{dataset}/images/labels/train/plant")
    assert shapes(plant) == [("potted plant", 0.493211, 0.508364, 0.121390, 0.214767)]
    assert [(issue["code"], issue["line"]) for issue in plant["issues"]] == [("label_segments_as_boxes", 1)]
    assert plant["issues"][0]["message"].startswith("line 1: 1 of 1 row is a polygon or an oriented box")
    assert "writes plain boxes" in plant["issues"][0]["message"]

    plane = api.get(f"/datasets/{dataset}/images/labels/train/plane")
    assert shapes(plane) == [("ship", 0.25, 0.25, 0.1, 0.1), ("plane", 0.533594, 0.352051, 0.110938, 0.102539)]
    assert issues_by_file(api, dataset)["labels/train/plane.txt"] == [("label_out_of_range", 3),
                                                                      ("label_segments_as_boxes", 2)]


def test_an_edit_of_a_polygon_label_writes_plain_boxes(bucket, api, stack, dataset):
    drop(bucket, dataset, {"data.yaml": data_yaml(CLASSES).encode(),
                           "images/train/plant.jpg": synthetic_image(31)[0], "labels/train/plant.txt": SEGMENT_LABEL})
    indexed = image_view(api, dataset, "plant", lambda view: view["status"] == "labeled", "the segment label indexed")
    kept = [{key: box[key] for key in ("class_id", "cx", "cy", "w", "h")} for box in indexed["labels"]]
    answer = APP.test_client().put(f"/datasets/{dataset}/images/labels/train/plant/labels", json={"labels": kept},
                                   headers={"Authorization": f"Bearer {stack.token}",
                                            "If-Match": str(indexed["label_generation"])})
    assert answer.status_code == 200, answer.get_json()
    assert bucket.blob(f"datasets/{dataset}/labels/train/plant.txt").download_as_bytes() == \
        b"2 0.493211 0.508364 0.12139 0.214767\n"
    edited = image_view(api, dataset, "plant", lambda view: view["label_generation"] == answer.get_json()["generation"],
                        "the edit indexed")
    assert shapes(edited) == shapes(indexed) and edited["issues"] == []
