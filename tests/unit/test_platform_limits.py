"""Every timeout, retry count and deadline of the production deployment (infra/settings.json, and the numbers
Terraform derives from it) is within what Google Cloud documents (common/platform/limits.py):
a deployment asking for more would be refused, or would be cut short where the code counts on more."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from common.platform import limits
from tests.unit.test_terraform import resource

REPO = Path(__file__).resolve().parents[2]
SETTINGS = json.loads((REPO / "infra" / "settings.json").read_text())


@pytest.mark.parametrize("key", ["trainer", "importer"])
def test_each_cloud_run_job_asks_for_a_task_timeout_and_retries_cloud_run_allows(key):
    job = SETTINGS[key]
    most = limits.GPU_TASK_TIMEOUT_MAX_SECONDS if job.get("gpus") else limits.TASK_TIMEOUT_MAX_SECONDS
    assert 0 < job["task_timeout_seconds"] <= most, \
        f"{key}: a task timeout of {job['task_timeout_seconds']} s; Cloud Run allows {most} s"
    assert 0 <= job["max_retries"] <= limits.TASK_MAX_RETRIES


def test_the_gpu_trainer_gets_the_hour_a_gpu_task_may_run_and_knows_it():
    trainer = SETTINGS["trainer"]
    assert trainer["gpus"] >= 1 and trainer["task_timeout_seconds"] == limits.GPU_TASK_TIMEOUT_MAX_SECONDS
    assert "TASK_TIMEOUT_SECONDS" in trainer["env"], "the trainer stops in time only if it knows its timeout"


def test_a_training_on_several_gpus_runs_no_longer_than_a_vertex_custom_job_and_knows_it(monkeypatch):
    from common.cloud import launcher
    timeout = SETTINGS["trainer"]["vertex"]["timeout_seconds"]
    assert 0 < timeout <= limits.VERTEX_JOB_TIMEOUT_MAX_SECONDS
    assert "TRAINER_VERTEX_TIMEOUT_SECONDS" in SETTINGS["functions"]["train"]["env"]
    for name, value in {"GOOGLE_CLOUD_PROJECT": "p", "DATA_BUCKET": "b", "TRAINER_IMAGE": "image",
                        "TRAINER_SERVICE_ACCOUNT": "sa", "TRAINER_VERTEX_TIMEOUT_SECONDS": str(timeout)}.items():
        monkeypatch.setenv(name, value)
    trainer = launcher.vertex_trainer()
    assert trainer.timeout_seconds == timeout and trainer.env["TASK_TIMEOUT_SECONDS"] == str(timeout), \
        "the trainer stops in time only if it knows its custom job's timeout"


@pytest.mark.parametrize("key", sorted(SETTINGS["functions"]))
def test_each_function_timeout_is_one_cloud_run_functions_allows(key):
    function = SETTINGS["functions"][key]
    most = limits.EVENT_FUNCTION_TIMEOUT_MAX_SECONDS if function["topic"] else limits.HTTP_FUNCTION_TIMEOUT_MAX_SECONDS
    assert 0 < function["timeout_seconds"] <= most, f"{key}: {function['timeout_seconds']} s, at most {most} s"


def test_every_subscription_has_an_ack_deadline_pubsub_allows():
    allowed = range(limits.ACK_DEADLINE_MIN_SECONDS, limits.ACK_DEADLINE_MAX_SECONDS + 1)
    # Terraform gives a push subscription its function's timeout, capped at Pub/Sub's most
    assert resource("google_pubsub_subscription", "push")["ack_deadline_seconds"] == \
        "${min(600, each.value.timeout_seconds)}" and limits.ACK_DEADLINE_MAX_SECONDS == 600
    assert resource("google_pubsub_subscription", "dead_letter_hold")["ack_deadline_seconds"] in allowed
    pushed = [f for f in SETTINGS["functions"].values() if f["topic"]]
    assert all(min(600, f["timeout_seconds"]) in allowed for f in pushed)


def test_the_delivery_policy_is_one_pubsub_allows():
    delivery = SETTINGS["delivery"]
    assert limits.DELIVERY_ATTEMPTS_MIN <= delivery["max_delivery_attempts"] <= limits.DELIVERY_ATTEMPTS_MAX
    for backoff in ("minimum_backoff", "maximum_backoff"):
        assert 0 <= _seconds(delivery[backoff]) <= limits.BACKOFF_MAX_SECONDS, backoff
    assert limits.RETENTION_MIN_SECONDS <= _seconds(delivery["hold_retention"]) <= limits.RETENTION_MAX_SECONDS


def test_the_watch_schedule_is_a_cron_schedule_and_its_grace_shorter_than_a_gpu_task():
    minute, *rest = SETTINGS["watch"]["schedule"].split()
    assert len(rest) == 4 and re.fullmatch(r"\*(/\d+)?|\d+", minute), "a unix-cron schedule: five fields"
    assert SETTINGS["watch"]["grace_seconds"] < SETTINGS["trainer"]["task_timeout_seconds"]


def _seconds(duration: str) -> int:
    assert re.fullmatch(r"\d+s", duration), f"a duration in seconds, like '600s': {duration!r}"
    return int(duration[:-1])
