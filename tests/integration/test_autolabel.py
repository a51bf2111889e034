"""Auto-labelling through the stack: a registered model proposes boxes for a dataset's images (a
dataset job in chunks, run by the dataset-jobs function), the proposals sit beside the labels, and a
person accepts (the label file is written and indexed by the ordinary event) or rejects them. A request retried
with its request_id is one job; a cancelled job keeps what its done units proposed."""
from __future__ import annotations

import json
import uuid

import functions_framework
import pytest
import requests

from common.cloud import dataset_job_store, dataset_index, job_store, storage, topics
from common.domain import layout
from common.domain.messages import JobStep
from common.platform import config
from common.platform.handler import Result
from common.services import autolabel, dataset_jobs, jobs
from infra.local.client import wait_for
from infra.local.sample import CLASSES, data_yaml, synthetic_image
from tests.integration.helpers import drop, stats_when
from tests.integration.test_job_kernel import Wire, deliver
from tests.integration.trained import trained_model  # noqa: F401 - a fixture

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
CONF = 0.001  # the tests' model trains 2 epochs at 64 px: its boxes are real, its confidences low
# The dataset's classes: the model's reordered, one of them missing, one of its own.
DATASET_CLASSES = [CLASSES[2], "zebra", CLASSES[0]]
UNLABELED, LABELED = 41, 3


@pytest.fixture(scope="module")
def client(stack):
    return APP.test_client()


@pytest.fixture(scope="module")
def auth(stack) -> dict:
    return {"Authorization": f"Bearer {stack.token}"}


def corrupt_jpeg() -> bytes:
    return synthetic_image(7, size=(96, 72))[0][:400]


@pytest.fixture(scope="module")
def unlabeled(bucket, api) -> str:
    """41 images without labels (three chunks at the tests' chunk size), one of them a truncated JPEG,
    and 3 labelled images."""
    dataset = f"al-{uuid.uuid4().hex[:8]}"
    files = {"data.yaml": data_yaml(DATASET_CLASSES).encode()}
    for i in range(UNLABELED + LABELED):
        image, _ = synthetic_image(500 + i, size=(96, 72))
        files[f"images/u{i:02d}.jpg"] = image
        if i >= UNLABELED:
            files[f"labels/u{i:02d}.txt"] = b"0 0.5 0.5 0.2 0.2\n"
    files["images/u00.jpg"] = corrupt_jpeg()
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": UNLABELED + LABELED, "labeled": LABELED})
    return dataset


def start(client, auth, dataset: str, **body) -> str:
    answer = client.post(f"/datasets/{dataset}/autolabel", json=body, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    return answer.get_json()["job_id"]


def ended(client, auth, job_id: str, timeout: float = 120) -> dict:
    return wait_for(lambda: client.get(f"/autolabel/{job_id}", headers=auth).get_json(),
                    lambda job: job["status"] in ("completed", "failed"), timeout, f"auto-labelling job {job_id}")


def image(client, auth, dataset: str, image_id: str) -> dict:
    return client.get(f"/datasets/{dataset}/images/{image_id}", headers=auth).get_json()


def image_when(client, auth, dataset: str, image_id: str, done, what: str) -> dict:
    return wait_for(lambda: image(client, auth, dataset, image_id), done, 60, f"{image_id}: {what}")


@pytest.fixture(scope="module")
def labelled_job(client, auth, unlabeled, trained_model) -> dict:
    job = ended(client, auth, start(client, auth, unlabeled, model_id=trained_model["id"], conf=CONF))
    assert job["status"] == "completed", job
    return job


def test_the_job_labels_the_unlabeled_images_and_counts_what_it_did(labelled_job, trained_model):
    job = labelled_job
    assert (job["images_total"], job["images_done"]) == (UNLABELED, UNLABELED)
    assert job["model_id"] == trained_model["id"] and job["dataset"].startswith("al-")
    assert job["boxes"] > 0
    assert job["failed"] == [{"image": "labels/u00", "reason": job["failed"][0]["reason"]}]
    assert job["failures"] == 1 and job["finished_at"] >= job["created_at"]


def test_proposals_are_the_prediction_functions_boxes_mapped_by_class_name(stack, client, auth, unlabeled,
                                                                           labelled_job, trained_model):
    """The same boxes the prediction function answers for each image; a class the dataset lacks is dropped
    and counted, the others take the dataset's id of their name."""
    keys = [f"labels/u{i:02d}" for i in range(1, UNLABELED)]
    predicted = predictions(stack, auth, trained_model["id"], [image(client, auth, unlabeled, k)["path"] for k in keys])
    assert labelled_job["dropped_classes"] == [CLASSES[1]]
    assert labelled_job["dropped"] == sum(box["class_name"] == CLASSES[1] for boxes in predicted for box in boxes)
    assert labelled_job["boxes"] == sum(box["class_name"] != CLASSES[1] for boxes in predicted for box in boxes)
    for key, boxes in zip(keys, predicted):
        shown = image(client, auth, unlabeled, key)
        expected = [{"class_id": DATASET_CLASSES.index(b["class_name"]), "class_name": b["class_name"],
                     **{k: b[k] for k in ("confidence", "cx", "cy", "w", "h")}}
                    for b in boxes if b["class_name"] != CLASSES[1] and b["w"] > 0 and b["h"] > 0]
        assert shown["proposals"] == expected, key
        assert shown["proposal_model"] == trained_model["id"] and shown["labels"] == []  # proposals are no labels


def predictions(stack, auth: dict, model_id: str, paths: list[str]) -> list[list[dict]]:
    """The prediction function's boxes for dataset images, in batches of 32."""
    found = []
    for start_at in range(0, len(paths), 32):
        uris = [f"gs://{config.data_bucket()}/{path}" for path in paths[start_at:start_at + 32]]
        answer = requests.post(f"{stack.env()['PREDICT_URL']}/models/{model_id}/predict", headers=auth,
                               json={"images": uris, "conf": CONF}, timeout=120)
        assert answer.status_code == 200, answer.text
        found += [prediction["boxes"] for prediction in answer.json()["predictions"]]
    return found


def test_proposals_are_filtered_counted_and_never_touch_labelled_images(client, auth, unlabeled, labelled_job):
    with_proposals = client.get(f"/datasets/{unlabeled}/images?has_proposals=true&page_size=1000",
                                headers=auth).get_json()["images"]
    without = client.get(f"/datasets/{unlabeled}/images?has_proposals=false&page_size=1000",
                         headers=auth).get_json()["images"]
    assert len(with_proposals) + len(without) == UNLABELED + LABELED
    assert {f"labels/u{i:02d}" for i in range(UNLABELED, UNLABELED + LABELED)} <= {img["id"] for img in without}
    stats = client.get(f"/datasets/{unlabeled}", headers=auth).get_json()["stats"]
    assert stats["proposals"] == len(with_proposals) > 0


def test_a_redelivered_chunk_writes_nothing(stack, unlabeled, labelled_job):
    job = dataset_job_store.get(labelled_job["id"])
    items = [f"labels/u{i:02d}" for i in range(20)]
    before = _update_times(unlabeled, items)
    chunk = {"job_id": job["id"], "step": "chunk", "chunk": 0, "items": items}
    outcome = jobs._unit(jobs.DATASET_JOBS, dataset_jobs.KINDS, {**job, "status": "running"}, 0, items)  # as if
    # the job had not ended yet
    assert outcome.result.value == "duplicate", outcome
    message_id = topics.publish(config.dataset_jobs_topic(), JobStep.model_validate(chunk))  # and through the stack
    log = stack.state_dir / "dataset_jobs.log"
    wait_for(lambda: log.read_text(errors="replace"), lambda text: message_id in text, 30, "the redelivery handled")
    assert _update_times(unlabeled, items) == before
    assert dataset_job_store.progress(job["id"])[0] == 3


def test_a_chunk_that_runs_twice_writes_the_same_proposals(unlabeled, labelled_job):
    job = dataset_job_store.get(labelled_job["id"])
    items = [f"labels/u{i:02d}" for i in range(1, 4)]
    before = [_entry(unlabeled, item)["proposals"] for item in items]
    counts = autolabel.label_chunk(job, items)
    assert counts["failures"] == 0
    assert [_entry(unlabeled, item)["proposals"] for item in items] == before


def _entry(dataset: str, entry_id: str) -> dict:
    return dataset_index.entries_of(dataset).document(layout.doc_id(entry_id)).get().to_dict()


def _update_times(dataset: str, entry_ids: list[str]) -> list:
    return [dataset_index.entries_of(dataset).document(layout.doc_id(e)).get().update_time for e in entry_ids]


def with_proposals(client, auth, dataset: str) -> list[dict]:
    answer = client.get(f"/datasets/{dataset}/images?has_proposals=true&page_size=1000", headers=auth)
    return answer.get_json()["images"]


def test_accepting_writes_the_label_file_and_ingest_indexes_it(client, auth, unlabeled, labelled_job):
    chosen = with_proposals(client, auth, unlabeled)[0]
    answer = client.post(f"/datasets/{unlabeled}/images/{chosen['id']}/proposals/accept", json={}, headers=auth)
    assert answer.status_code == 200, answer.get_json()
    written = answer.get_json()
    assert written["label_path"] == f"datasets/{unlabeled}/{chosen['id']}.txt"
    blob = storage.bucket().get_blob(written["label_path"])
    assert blob.generation == written["generation"] and blob.metadata == {"yolodrop-writer": "admin"}
    shown = image_when(client, auth, unlabeled, chosen["id"],
                       lambda img: img["label_generation"] == written["generation"], "the accepted label indexed")
    proposed = unique([{k: p[k] for k in ("class_id", "cx", "cy", "w", "h")} for p in chosen["proposals"]])
    assert [{k: b[k] for k in ("class_id", "cx", "cy", "w", "h")} for b in shown["labels"]] == proposed
    assert shown["proposals"] == [] and shown["proposal_model"] is None and shown["status"] == "labeled"


def unique(boxes: list[dict]) -> list[dict]:
    """Boxes in order, each once (clipped boxes can coincide; a label file holds a row once)."""
    return [box for i, box in enumerate(boxes) if box not in boxes[:i]]


def test_rejecting_drops_the_proposals_and_writes_nothing(client, auth, unlabeled, labelled_job):
    chosen = with_proposals(client, auth, unlabeled)[0]
    answer = client.post(f"/datasets/{unlabeled}/images/{chosen['id']}/proposals/reject", headers=auth)
    assert answer.get_json() == {"id": chosen["id"], "rejected": len(chosen["proposals"])}
    assert image(client, auth, unlabeled, chosen["id"])["proposals"] == []
    assert storage.bucket().get_blob(f"datasets/{unlabeled}/{chosen['id']}.txt") is None
    again = client.post(f"/datasets/{unlabeled}/images/{chosen['id']}/proposals/reject", headers=auth)
    assert again.get_json()["rejected"] == 0
    nothing = client.post(f"/datasets/{unlabeled}/images/{chosen['id']}/proposals/accept", json={}, headers=auth)
    assert nothing.status_code == 409


def test_a_label_changed_in_between_is_refused_and_nothing_is_lost(client, auth, bucket, unlabeled, labelled_job):
    chosen = with_proposals(client, auth, unlabeled)[0]
    path = f"datasets/{unlabeled}/{chosen['id']}.txt"
    bucket.blob(path).upload_from_string(b"2 0.5 0.5 0.3 0.3\n")  # someone labels it meanwhile
    answer = client.post(f"/datasets/{unlabeled}/images/{chosen['id']}/proposals/accept",
                         json={"label_generation": chosen["label_generation"]}, headers=auth)
    assert answer.status_code == 412, answer.get_json()
    assert answer.get_json()["labels"][0]["class_id"] == 2
    assert bucket.get_blob(path).download_as_bytes() == b"2 0.5 0.5 0.3 0.3\n"
    shown = image_when(client, auth, unlabeled, chosen["id"], lambda img: img["status"] == "labeled",
                       "the person's label indexed")
    assert shown["proposals"] == chosen["proposals"]  # ingest kept them beside the new label
    refused = client.post(f"/datasets/{unlabeled}/images/{chosen['id']}/proposals/accept", json={}, headers=auth)
    assert refused.status_code == 409 and "merge" in refused.get_json()["error"]["message"]
    merged = client.post(f"/datasets/{unlabeled}/images/{chosen['id']}/proposals/accept", json={"merge": True},
                         headers=auth)
    assert merged.status_code == 200, merged.get_json()
    lines = bucket.get_blob(path).download_as_bytes().decode().splitlines()
    assert lines[0] == "2 0.5 0.5 0.3 0.3" and len(lines) == 1 + len(unique(
        [{k: p[k] for k in ("class_id", "cx", "cy", "w", "h")} for p in chosen["proposals"]]))


def test_ingest_keeps_proposals_when_the_image_or_its_label_is_written_again(client, auth, bucket, unlabeled,
                                                                             labelled_job):
    chosen = with_proposals(client, auth, unlabeled)[0]
    image_path = chosen["path"]
    bucket.blob(image_path).upload_from_string(bucket.blob(image_path).download_as_bytes())
    shown = image_when(client, auth, unlabeled, chosen["id"],
                       lambda img: img["image_generation"] != chosen["image_generation"], "the image written again")
    assert shown["proposals"] == chosen["proposals"]
    bucket.blob(f"datasets/{unlabeled}/{chosen['id']}.txt").upload_from_string(b"not a row\n")
    shown = image_when(client, auth, unlabeled, chosen["id"], lambda img: img["label_generation"] > 0,
                       "a label with issues indexed")
    assert shown["proposals"] == chosen["proposals"] and shown["issues"]


def test_bulk_accept_is_a_job_with_progress(client, auth, api, unlabeled, labelled_job):
    remaining = with_proposals(client, auth, unlabeled)
    answer = client.post(f"/datasets/{unlabeled}/proposals/accept", json={"min_confidence": 0}, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    job = ended(client, auth, answer.get_json()["job_id"])
    assert job["kind"] == "accept" and job["status"] == "completed", job
    assert job["images_total"] == job["images_done"] == len(remaining)
    assert job["accepted"] + job["skipped"] + job["conflicts"] == len(remaining)
    assert (job["accepted"], job["skipped"]) == (len(remaining) - 1, 1)  # the label with issues needs merge
    expected = {"proposals": 1, "labeled": LABELED + 2 + job["accepted"]}  # 2: accepted one by one above
    stats_when(api, unlabeled, expected)


def test_a_model_sharing_no_class_fails_the_job_naming_both_lists(client, auth, bucket, api, trained_model):
    dataset = f"al-{uuid.uuid4().hex[:8]}"
    drop(bucket, dataset, {"data.yaml": data_yaml(["cat", "dog"]).encode(),
                           "images/a.jpg": synthetic_image(1, size=(96, 72))[0]})
    stats_when(api, dataset, {"images": 1})
    job = ended(client, auth, start(client, auth, dataset, model_id=trained_model["id"]))
    assert job["status"] == "failed"
    assert str(CLASSES) in job["error"] and "['cat', 'dog']" in job["error"]


@pytest.mark.parametrize("body, param", [
    ({}, "model_id"), ({"model_id": "m", "conf": 2}, "conf"), ({"model_id": "m", "images": "some"}, "images"),
])
def test_a_bad_request_is_a_400_naming_the_parameter(client, auth, unlabeled, body, param):
    answer = client.post(f"/datasets/{unlabeled}/autolabel", json=body, headers=auth)
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == param


def test_unknown_models_jobs_and_images_are_404s(client, auth, unlabeled):
    assert client.post(f"/datasets/{unlabeled}/autolabel", json={"model_id": "model-nope"},
                       headers=auth).status_code == 404
    assert client.get("/autolabel/autolabel-nope", headers=auth).status_code == 404
    assert client.post(f"/datasets/{unlabeled}/images/labels/nope/proposals/accept", json={},
                       headers=auth).status_code == 404
    bad = client.post(f"/datasets/{unlabeled}/proposals/accept", json={"min_confidence": "high"}, headers=auth)
    assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "min_confidence"


def test_the_dataset_lists_its_auto_labelling_jobs_newest_first(client, auth, unlabeled, labelled_job):
    listed = client.get(f"/autolabel?dataset={unlabeled}", headers=auth).get_json()["jobs"]
    assert [job["id"] for job in listed] == [labelled_job["id"]]
    assert labelled_job["id"] in [job["id"] for job in client.get("/autolabel", headers=auth).get_json()["jobs"]]
    assert json.loads(json.dumps(listed[0]))["images_total"] == UNLABELED


def test_a_request_retried_with_its_request_id_is_one_job_and_a_cancel_keeps_what_its_done_units_proposed(
        client, auth, bucket, api, trained_model, monkeypatch):
    dataset = f"al-{uuid.uuid4().hex[:8]}"
    drop(bucket, dataset, {"data.yaml": data_yaml(DATASET_CLASSES).encode(),
                           **{f"images/c{i:02d}.jpg": synthetic_image(700 + i, size=(96, 72))[0] for i in range(25)}})
    stats_when(api, dataset, {"images": 25})
    wire = Wire(monkeypatch)
    body = {"model_id": trained_model["id"], "conf": CONF, "request_id": f"cli-{uuid.uuid4().hex}"}
    first, retried = (client.post(f"/datasets/{dataset}/autolabel", json=body, headers=auth) for _ in range(2))
    assert (first.status_code, retried.status_code) == (202, 202) and first.get_json() == retried.get_json()
    job_id = first.get_json()["job_id"]
    deliver(wire.take("plan")[0])
    units = wire.take("chunk")
    assert deliver(units[0]).result == Result.APPLIED  # 20 images labelled, then the job is cancelled

    cancelled = client.post(f"/datasets/{dataset}/jobs/{job_id}/cancel", headers=auth)
    assert cancelled.status_code == 202 and cancelled.get_json()["status"] == "cancelled", cancelled.get_json()
    assert deliver(units[1]).result == Result.DUPLICATE  # a unit delivered later does nothing
    job = client.get(f"/autolabel/{job_id}", headers=auth).get_json()
    assert (job["status"], job["images_total"], job["images_done"]) == ("cancelled", 25, 20)
    later_images = set(job_store.unit_items(dataset_job_store.jobs(), job_id, 1))
    proposed = {img["id"] for img in with_proposals(client, auth, dataset)}
    assert proposed and proposed.isdisjoint(later_images)  # the done unit's proposals stay, none came after
    assert job_id not in {found["id"] for found in job_store.active(dataset_job_store.jobs())}  # the watch's sweep
    again = client.post(f"/datasets/{dataset}/autolabel", json=body, headers=auth)
    assert again.get_json() == {"job_id": job_id, "status": "cancelled"}
    assert [listed["id"] for listed in client.get(f"/autolabel?dataset={dataset}", headers=auth).get_json()["jobs"]] \
        == [job_id]
