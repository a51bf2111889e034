"""Pretrained starting points through the base-model cache (nothing here can download weights).

Official weights load only when their SHA-256 is pinned (common/domain/base_models.py, or the operator's
BASE_MODEL_SHA256). The stack's training function has no pin for a file a test makes, so the tests that
need one run the training function's own code here, with the operator's setting, as the resume test does."""
from __future__ import annotations

import hashlib
import json
import uuid

from common.cloud import storage
from common.domain import layout
from common.platform.events import PubSubMessage
from common.platform.handler import Result
from tests.integration.trained import TINY, finished_job, train, trained_model  # noqa: F401 - a fixture


def start_as_operator(monkeypatch, body: dict, pins: str) -> str:
    """The training function's handling of `body`, published by an operator whose setting pins `pins`; the job id."""
    from common.services import start_training
    monkeypatch.setenv("BASE_MODEL_SHA256", pins)
    request_id = f"pin-{uuid.uuid4().hex[:8]}"
    message = PubSubMessage(f"m-{request_id}", json.dumps({**TINY, **body, "request_id": request_id}).encode(),
                            f"e-{request_id}", {})
    outcome = start_training.handle(message)
    assert outcome.result is Result.APPLIED, outcome
    return outcome.fields["job_id"]


def sha256_of(uri: str) -> str:
    return hashlib.sha256(storage.blob_at(uri).download_as_bytes()).hexdigest()


def test_official_weights_come_from_the_base_model_cache(api, trained_model, monkeypatch):
    cache = storage.bucket().blob(layout.base_model("yolov8n.pt"))
    cache.rewrite(storage.blob_at(trained_model["weights"]["pt"]))  # any detector's .pt stands in for Ultralytics'
    pin = f"yolov8n.pt={sha256_of(trained_model['weights']['pt'])}"  # the operator pins the file they trust
    job = finished_job(start_as_operator(monkeypatch, {"dataset": trained_model["dataset"], "model": "yolov8n.pt",
                                                       "epochs": 1}, pin), api)
    assert job["status"] == "completed", job
    assert api.get(f"/models/{job['model_id']}")["base_model"] == "yolov8n.pt"


def test_weights_missing_from_the_cache_fail_the_job_saying_where_to_put_them(api, trained_model, monkeypatch):
    job = finished_job(start_as_operator(monkeypatch, {"dataset": trained_model["dataset"], "model": "yolo11n.pt",
                                                       "epochs": 1}, f"yolo11n.pt={'0' * 64}"), api)
    assert job["status"] == "failed"
    where = f"gs://{storage.bucket().name}/{layout.base_model('yolo11n.pt')}"
    assert "not in the base-model cache" in job["error"] and where in job["error"], job["error"]


def test_official_weights_no_one_pinned_are_refused_before_any_trainer_runs(api, trained_model):
    job = train(api, trained_model["dataset"], model="yolo11x.pt", epochs=1)
    assert job["status"] == "failed" and "yolo11x.pt have no pinned SHA-256" in job["error"], job
    assert "BASE_MODEL_SHA256" in job["error"] and job.get("execution") is None, job


def test_names_that_are_not_ultralytics_weights_are_refused(api, trained_model):
    answer = api.session.post(f"{api.url}/training", json={"dataset": trained_model["dataset"], "model": "mymodel.pt"},
                              timeout=30)
    assert answer.status_code == 400, answer.text
    assert "not an Ultralytics detector's weights" in answer.json()["error"]["message"]
