"""A model trained and registered through the stack, shared by the prediction and auto-labelling tests."""
from __future__ import annotations

import os
import uuid

import pytest

from infra.local.client import ApiClient, wait_for
from infra.local.sample import generated_dataset
from tests.integration.helpers import drop, stats_when

TINY = {"model": "yolov8n.yaml", "imgsz": 64, "batch": 4, "workers": 0, "epochs": 2}
TRAIN_DEADLINE = 240


def train(api: ApiClient, dataset: str, **overrides) -> dict:
    """POST a training request and wait for its job to end; the job."""
    body = {"dataset": dataset, **TINY, **overrides}
    job_id = api.session.post(f"{api.url}/training", json=body, timeout=30).json()["job_id"]
    return finished_job(job_id, api)


def finished_job(job_id: str, api: ApiClient | None = None) -> dict:
    api = api or ApiClient(os.environ["API_URL"], os.environ["API_TOKEN"])
    return wait_for(lambda: api.get_or_none(f"/training/{job_id}"),
                    lambda j: j is not None and j["status"] in ("completed", "failed", "cancelled"),
                    TRAIN_DEADLINE, f"job {job_id} to finish", interval=0.5)


@pytest.fixture(scope="session")
def trained_model(stack, bucket, api) -> dict:
    """The registered model of a tiny generated dataset (8 train, 4 val, 2 test images; imgsz 64, 2 epochs)."""
    dataset = f"pm-{uuid.uuid4().hex[:8]}"
    files = generated_dataset(8, 4, size=(96, 72))
    for name, data in generated_dataset(2, 0, size=(96, 72), seed=9).items():  # a test split: evaluated on it
        files[name.replace("images/", "images/test/t").replace("labels/", "labels/test/t")] = data
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"labeled": 14})
    job = train(api, dataset)
    assert job["status"] == "completed", job
    return api.get(f"/models/{job['model_id']}")
