"""Attacks on the trainer with a pickled .pt: whoever unpickles it runs its code (here: it creates
a marker file). No path of the product may unpickle it: a request naming it by path, the file
planted in the base-model cache, planted as a job's checkpoint, or behind a registered model the
attacker may not view. Every test asserts the refusal and that the marker never appeared.

People are real accounts of the Auth emulator calling the API in process (as tests/integration/
test_access.py does); the training function and the trainers are the stack's."""
from __future__ import annotations

import hashlib
import io
import json
import os
import uuid

import functions_framework
import pytest

from common.cloud import storage, training_store
from common.domain import layout
from common.domain.training_request import job_id_for
from common.platform.events import PubSubMessage
from common.platform.handler import Result
from infra.local.client import sign_up
from infra.local.sample import generated_dataset
from tests.integration.helpers import drop, stats_when
from tests.integration.trained import TINY, finished_job, trained_model  # noqa: F401 - a fixture

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")


class Payload:
    """Unpickling this calls open(marker, "w"): the file appears exactly when the pickle is executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def pickled_pt(marker) -> bytes:
    """A .pt as torch.save writes one, whose unpickling creates `marker`."""
    import torch
    buffer = io.BytesIO()
    torch.save({"epoch": 0, "model": Payload(marker), "train_args": {}}, buffer)
    return buffer.getvalue()


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / f"unpickled-{uuid.uuid4().hex[:8]}"
    yield path
    assert not path.exists(), f"the pickle was executed: {path} exists"


@pytest.fixture(scope="module")
def client(stack):
    return APP.test_client()


@pytest.fixture(scope="module")
def mallory(stack, client, bucket, api) -> dict:
    """A signed-up person who owns a small labelled dataset."""
    uid, token = sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], f"mallory-{uuid.uuid4().hex[:8]}@example.com",
                         "secret-123")
    dataset = f"mal-{uuid.uuid4().hex[:8]}"
    assert post(client, "/datasets", token, {"id": dataset}).status_code == 201
    drop(bucket, dataset, generated_dataset(8, 4, size=(96, 72)))
    stats_when(api, dataset, {"labeled": 12})
    return {"uid": uid, "token": token, "dataset": dataset}


def training(dataset: str, model: str, **more) -> dict:
    return {**TINY, "dataset": dataset, "model": model, **more}


def post(client, path: str, token: str, body: dict):
    return client.post(path, headers={"Authorization": f"Bearer {token}"}, json=body)


def publish(body: dict, **attributes) -> None:
    from google.cloud import pubsub_v1
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(os.environ["GOOGLE_CLOUD_PROJECT"], "training-requests")
    publisher.publish(topic, json.dumps(body).encode(), **attributes).result(timeout=30)


def test_the_payload_is_live(tmp_path):
    """The control: an unrestricted torch.load of the file does run it (the other tests would pass vacuously if not)."""
    import torch
    live = tmp_path / "live"
    torch.load(io.BytesIO(pickled_pt(live)), weights_only=False)
    assert live.exists()


def test_a_request_naming_weights_by_bucket_path_is_refused(client, bucket, api, mallory, marker):
    """(a) The .pt sits in the attacker's own dataset (as an archive member once landed there)."""
    evil = f"datasets/{mallory['dataset']}/w/evil.pt"
    bucket.blob(evil).upload_from_string(pickled_pt(marker))
    request_id = f"evil-{uuid.uuid4().hex[:8]}"
    body = training(mallory["dataset"], f"gs://{bucket.name}/{evil}", request_id=request_id)
    answer = post(client, "/training", mallory["token"], body)
    assert answer.status_code == 400, answer.get_json()
    message = answer.get_json()["error"]["message"]
    assert "weights are never read from a path" in message and "registered model" in message, message
    assert api.get_or_none(f"/training/{job_id_for(request_id, mallory['uid'])}") is None  # nothing was published

    # the same request published directly (as the API would, with the requester) fails as a job, unread
    publish(body, requested_by=mallory["uid"])
    job = finished_job(job_id_for(request_id, mallory["uid"]), api)
    assert job["status"] == "failed" and "never read from a path" in job["error"] and job["execution"] is None, job


def start_as_operator(monkeypatch, body: dict, pins: str) -> str:
    """The training function's own handling of `body`, with the operator's BASE_MODEL_SHA256 = pins."""
    from common.services import start_training
    monkeypatch.setenv("BASE_MODEL_SHA256", pins)
    request_id = f"op-{uuid.uuid4().hex[:8]}"
    outcome = start_training.handle(PubSubMessage(f"m-{request_id}", json.dumps(
        {**TINY, **body, "request_id": request_id}).encode(), f"e-{request_id}", {}))
    assert outcome.result is Result.APPLIED, outcome
    return outcome.fields["job_id"]


def test_a_pickle_in_the_base_model_cache_is_refused_by_its_pin(client, bucket, api, mallory, marker, monkeypatch):
    """(b) Whoever could write the cache (a trainer run before this fix) left a pickle under an official name."""
    name = "yolo12n.pt"
    cache = bucket.blob(layout.base_model(name))
    cache.upload_from_string(pickled_pt(marker))
    trusted = hashlib.sha256(b"the file the operator trusts").hexdigest()
    try:
        job = finished_job(start_as_operator(monkeypatch, {"dataset": mallory["dataset"], "model": name},
                                             f"{name}={trusted}"), api)
        assert job["status"] == "failed", job
        assert f"the cached file gs://{bucket.name}/{layout.base_model(name)} for {name} has SHA-256" in job["error"]
        assert f"not its pin {trusted}: refused, not loaded" in job["error"], job["error"]

        # a name no one pinned is refused before any trainer starts, whatever the cache holds
        answer = post(client, "/training", mallory["token"], training(mallory["dataset"], name))
        assert answer.status_code == 202, answer.get_json()
        job = finished_job(answer.get_json()["job_id"], api)
        assert job["status"] == "failed" and "yolo12n.pt have no pinned SHA-256" in job["error"], job
        assert job["execution"] is None, job
    finally:
        cache.delete()


@pytest.mark.parametrize("planted", ["last.pt", "best.pt"])
def test_a_pickle_planted_as_a_jobs_checkpoint_is_refused(client, bucket, api, mallory, marker, trained_model,
                                                          planted):
    """(c) The job's bucket checkpoint is replaced before its trainer (re)starts: the trainer checks
    both files with Ultralytics' safe loader before resuming (Ultralytics' last step would load best.pt
    unrestricted), so the job fails and nothing is unpickled."""
    request_id = f"ckpt-{uuid.uuid4().hex[:8]}"
    job_id = job_id_for(request_id, mallory["uid"])  # the attacker's own job: its id is theirs to compute
    genuine = storage.blob_at(trained_model["weights"]["last"]).download_as_bytes()  # a real Ultralytics last.pt
    for name in ("last.pt", "best.pt"):
        content = pickled_pt(marker) if name == planted else genuine
        bucket.blob(layout.training_checkpoint(job_id, name)).upload_from_string(content)
    answer = post(client, "/training", mallory["token"], training(mallory["dataset"], "yolov8n.yaml",
                                                                  request_id=request_id))
    assert answer.status_code == 202 and answer.get_json()["job_id"] == job_id, answer.get_json()
    job = finished_job(job_id, api)
    assert job["status"] == "failed", job
    assert f"UnsafeWeights: the checkpoint {planted} of job {job_id} refused" in job["error"], job["error"]
    assert "it was not loaded" in job["error"]


def test_another_persons_model_is_not_found_and_never_loaded(client, bucket, api, mallory, marker, trained_model):
    """(d) A model of a dataset the attacker cannot see: 404 as GET /models/{id}, and a direct publish
    with the attacker as requester is refused by the training function's own check."""
    victim_model = trained_model["id"]  # the administrator's dataset: mallory is no member
    assert client.get(f"/models/{victim_model}",
                      headers={"Authorization": f"Bearer {mallory['token']}"}).status_code == 404
    answer = post(client, "/training", mallory["token"], training(mallory["dataset"], victim_model))
    assert answer.status_code == 404 and answer.get_json()["error"]["message"] == f"no model {victim_model!r}"

    request_id = f"idor-{uuid.uuid4().hex[:8]}"
    publish(training(mallory["dataset"], victim_model, request_id=request_id), requested_by=mallory["uid"])
    job = finished_job(job_id_for(request_id, mallory["uid"]), api)
    assert job["status"] == "failed" and job["execution"] is None, job
    assert f"unknown model {victim_model!r}" in job["error"] and "you may view" in job["error"], job


def test_a_registered_model_whose_weights_are_a_pickle_is_refused_by_the_safe_loader(client, bucket, api, mallory,
                                                                                    marker):
    """A model the attacker may view, whose best.pt was replaced by a pickle: the trainer's Ultralytics
    loads it with its safe loader (ULTRALYTICS_SAFE_LOAD, set by the local launcher and the trainer
    package), which refuses it."""
    model_id = f"model-evil-{uuid.uuid4().hex[:8]}"
    weights = f"derived/training/job-{model_id}/weights/best.pt"
    bucket.blob(weights).upload_from_string(pickled_pt(marker))
    training_store.models().document(model_id).set({"id": model_id, "dataset": mallory["dataset"], "created_at": 1.0,
                                                    "job_id": f"job-{model_id}",
                                                    "weights": {"pt": f"gs://{bucket.name}/{weights}"}})
    answer = post(client, "/training", mallory["token"], training(mallory["dataset"], model_id))
    assert answer.status_code == 202, answer.get_json()
    job = finished_job(answer.get_json()["job_id"], api)
    assert job["status"] == "failed" and job["execution"], job  # a trainer ran, and refused the file
    assert "references types outside the supported Ultralytics checkpoint format" in job["error"], job["error"]


def test_a_chosen_request_id_cannot_squat_another_persons_job(client, stack, api, mallory):
    """Two people choose the same request_id: two jobs, each its requester's; a retry is still the same job."""
    uid, token = sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], f"alice-{uuid.uuid4().hex[:8]}@example.com",
                         "secret-123")
    dataset = f"alice-{uuid.uuid4().hex[:8]}"
    assert post(client, "/datasets", token, {"id": dataset}).status_code == 201
    request_id = f"shared-{uuid.uuid4().hex[:8]}"
    # requests that fail at once in the training function (no such version; nothing dropped): no trainer runs
    mine = post(client, "/training", mallory["token"], training(mallory["dataset"], "yolov8n.yaml", version="v999",
                                                                request_id=request_id))
    theirs = post(client, "/training", token, training(dataset, "yolov8n.yaml", request_id=request_id))
    again = post(client, "/training", token, training(dataset, "yolov8n.yaml", request_id=request_id))
    assert mine.status_code == theirs.status_code == again.status_code == 202
    assert mine.get_json()["job_id"] != theirs.get_json()["job_id"] == again.get_json()["job_id"]
    alice_job = finished_job(theirs.get_json()["job_id"], api)
    assert (alice_job["requested_by"], alice_job["dataset"]) == (uid, dataset), alice_job
    assert "has no classes" in alice_job["error"], alice_job  # her own request's reason, not mallory's
    mallory_job = finished_job(mine.get_json()["job_id"], api)
    assert (mallory_job["requested_by"], mallory_job["dataset"]) == (mallory["uid"], mallory["dataset"]), mallory_job
    assert mallory_job["status"] == "failed" and "v999" in mallory_job["error"], mallory_job
