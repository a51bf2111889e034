"""Editing labels through the API: the label file is written to the bucket with a
generation precondition, and the index learns of it through the ordinary event."""
from __future__ import annotations

import time
import uuid

import functions_framework
import pytest

from common.cloud import storage
from infra.local.client import wait_for
from infra.local.sample import data_yaml, synthetic_image
from tests.integration.helpers import drop, stats_when

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
BOX = {"class": "person", "cx": 0.5, "cy": 0.5, "w": 0.2, "h": 0.1}


@pytest.fixture(scope="module")
def client(stack):
    return APP.test_client()


@pytest.fixture
def edited(bucket, api) -> str:
    """A dataset with one image and no label yet."""
    dataset = f"edit-{uuid.uuid4().hex[:8]}"
    drop(bucket, dataset, {"data.yaml": data_yaml(), "images/train/a.jpg": synthetic_image(21)[0]})
    stats_when(api, dataset, {"images": 1, "unlabeled": 1})
    return dataset


def put(client, stack, dataset: str, labels, **headers):
    return client.put(f"/datasets/{dataset}/images/labels/train/a/labels", json={"labels": labels},
                      headers={"Authorization": f"Bearer {stack.token}", **headers})


def image_when(api, dataset: str, done, what: str) -> dict:
    return wait_for(lambda: api.get(f"/datasets/{dataset}/images/labels/train/a"), done, 60, what)


def test_an_edit_writes_the_label_file_and_the_index_follows(client, stack, api, bucket, edited):
    before = api.get(f"/datasets/{edited}/images/labels/train/a")
    assert before["label_generation"] == 0 and before["image_generation"] > 0
    sent = time.monotonic()
    answer = put(client, stack, edited, [BOX, {"class_id": 1, "cx": 0.25, "cy": 0.5, "w": 0.2, "h": 0.1}],
                 **{"If-None-Match": "*"})
    assert answer.status_code == 200, answer.get_json()
    written = answer.get_json()
    assert written["label_path"] == f"datasets/{edited}/labels/train/a.txt"
    blob = bucket.get_blob(written["label_path"])
    assert blob.generation == written["generation"] and blob.metadata == {"yolodrop-writer": "admin"}
    assert blob.download_as_bytes() == b"0 0.5 0.5 0.2 0.1\n1 0.25 0.5 0.2 0.1\n"
    seen = image_when(api, edited, lambda image: image["label_generation"] == written["generation"],
                      "the edit in the index")
    print(f"edit indexed {time.monotonic() - sent:.2f} s after the answer was sent")
    assert [(b["class_name"], b["cx"]) for b in seen["labels"]] == [("person", 0.5), ("bus", 0.25)]
    assert seen["status"] == "labeled"


def test_a_stale_edit_is_refused_with_what_is_there_now(client, stack, api, edited):
    first = put(client, stack, edited, [BOX], **{"If-Match": "0"}).get_json()
    second = put(client, stack, edited, [], **{"If-Match": "0"})  # a second person, based on no label
    assert second.status_code == 412
    conflict = second.get_json()
    assert conflict["generation"] == first["generation"] and conflict["labels"][0]["class_name"] == "person"
    assert storage.bucket().get_blob(first["label_path"]).generation == first["generation"]  # nothing written
    background = put(client, stack, edited, [], **{"If-Match": str(first["generation"])})
    assert background.status_code == 200
    image_when(api, edited, lambda image: image["status"] == "background", "the empty label: a background image")


def test_invalid_boxes_are_all_named_and_nothing_is_written(client, stack, bucket, edited):
    answer = put(client, stack, edited, [BOX, {**BOX, "cx": 1.5}, {**BOX, "class": "giraffe"}],
                 **{"If-None-Match": "*"})
    error = answer.get_json()["error"]
    assert answer.status_code == 400 and error["param"] == "labels"
    assert "labels[1]: cx is 1.5" in error["message"] and "labels[2]: unknown class 'giraffe'" in error["message"]
    assert bucket.get_blob(f"datasets/{edited}/labels/train/a.txt") is None


def test_an_edit_without_a_precondition_is_refused(client, stack, edited):
    answer = put(client, stack, edited, [BOX])
    assert answer.status_code == 428 and "If-Match" in answer.get_json()["error"]["message"]


def test_deleting_the_label_needs_its_generation(client, stack, api, bucket, edited):
    written = put(client, stack, edited, [BOX], **{"If-None-Match": "*"}).get_json()
    path = f"/datasets/{edited}/images/labels/train/a/labels"
    auth = {"Authorization": f"Bearer {stack.token}"}
    assert client.delete(path, headers={**auth, "If-Match": "1"}).status_code == 412
    assert client.delete(path, headers={**auth, "If-Match": str(written["generation"])}).status_code == 200
    assert bucket.get_blob(written["label_path"]) is None
    image_when(api, edited, lambda image: image["status"] == "unlabeled" and image["label_generation"] == 0,
               "the label gone from the index")
