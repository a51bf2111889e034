"""A training that asks for several GPUs (`accelerator`, docs/training.md "Several GPUs"), through the local stack.

Where the operator allows it, the training function records the accelerator on the job and launches it with the
runner it chooses: on the local launcher that is the real local runner (production's is a Vertex AI custom job,
whose specification tests/unit/test_vertex_runner.py checks), and the job trains, registers and reports as any
other. Where the operator allows nothing (the settings' default, as the stack runs), the API refuses the request
saying so (a 400), and a published one ends as a failed job. The trainer runs here on the CPU: DDP over several
GPUs needs them.
"""
from __future__ import annotations

import json
import uuid

import pytest

from common.cloud import training_store
from common.platform.events import PubSubMessage
from common.platform.handler import Result
from common.services import start_training
from infra.local.sample import generated_dataset
from tests.integration.helpers import drop, stats_when
from tests.integration.test_training import TINY, finished

TWO_L4 = {"type": "nvidia-l4", "count": 2}


@pytest.fixture(scope="module")
def small(stack, bucket, api) -> str:
    name = f"gpus-{uuid.uuid4().hex[:8]}"
    drop(bucket, name, generated_dataset(8, 4, size=(96, 72)))
    stats_when(api, name, {"labeled": 12})
    return name


def test_an_allowed_accelerator_is_recorded_launched_once_and_trains_like_any_job(stack, api, small, monkeypatch):
    monkeypatch.setenv("TRAINER_ACCELERATOR_TYPES", "nvidia-l4")
    monkeypatch.setenv("TRAINER_MAX_ACCELERATORS", "2")
    request_id = f"gpus-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"dataset": small, "epochs": 1, "request_id": request_id, **TINY, "accelerator": TWO_L4})
    outcome = start_training.handle(PubSubMessage("m-gpus", body.encode(), "e-gpus", {}))
    assert outcome.result is Result.APPLIED, outcome
    again = start_training.handle(PubSubMessage("m-gpus-2", body.encode(), "e-gpus-2", {}))
    assert again.result is Result.DUPLICATE, again  # one job, one trainer
    job_id = start_training.job_id_for(request_id)
    stored = training_store.jobs().document(job_id).get().to_dict()
    assert stored["accelerator"] == TWO_L4 and stored["execution"] == f"local-run-{job_id}"
    assert stored["request"]["accelerator"] == TWO_L4  # a request the watch sends again asks for the same GPUs

    job = finished(api, job_id)
    assert job["status"] == "completed", job
    assert job["accelerator"] == TWO_L4 and job["model_id"] and job["device"] == "cpu"
    assert [h["epoch"] for h in job["history"]] == [1]


def test_an_accelerator_the_operator_did_not_allow_is_refused_saying_so(api, small):
    answer = api.session.post(f"{api.url}/training", json={"dataset": small, "epochs": 1, **TINY,
                                                           "accelerator": TWO_L4}, timeout=30)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert "this deployment trains on the trainer job's one GPU only" in message
    assert "TRAINER_ACCELERATOR_TYPES" in message


def test_a_count_one_machine_cannot_have_is_refused_with_the_counts_it_can(stack, small, monkeypatch):
    monkeypatch.setenv("TRAINER_ACCELERATOR_TYPES", "nvidia-l4")
    monkeypatch.setenv("TRAINER_MAX_ACCELERATORS", "8")
    body = {"dataset": small, "epochs": 1, "request_id": f"three-{uuid.uuid4().hex[:8]}", **TINY,
            "batch": 6, "accelerator": {"type": "nvidia-l4", "count": 3}}
    outcome = start_training.handle(PubSubMessage("m-three", json.dumps(body).encode(), "e-three", {}))
    assert outcome.result is Result.REJECTED
    job = training_store.jobs().document(start_training.job_id_for(body["request_id"])).get().to_dict()
    assert job["status"] == "failed" and "one machine has 1, 2, 4, 8 nvidia-l4 GPUs, not 3" in job["error"]
