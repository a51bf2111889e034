"""Training longer than its task, through the local stack: the local runner enforces the trainer job's task
timeout and retries as Cloud Run does (common/cloud/local_runner.py).

- With a task timeout far shorter than the training, the trainer stops after its last whole epoch that fits,
  the next execution resumes from the bucket checkpoint, and the run ends with every epoch once, in order, and
  one model; the job's document lists its executions and continuations, and no task met its timeout. Each
  continuation is asked for twice (the progress function's request, and the test's own, as a redelivery
  would): still one execution per continuation.
- A task that hangs (no checkpoint, no continuation) is stopped at its timeout (SIGTERM, then SIGKILL), retried as
  a new attempt of the same execution, and once out of retries the watch fails the job saying so.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest

from common.cloud import local_runner, storage
from common.domain import layout
from common.platform.events import PubSubMessage
from common.platform.handler import Result
from common.services import continuation_requests
from infra.local.client import wait_for
from tests.integration.test_training import TINY, job_when, run_markers, tiny  # noqa: F401 - fixture

pytestmark = pytest.mark.drill

TASK_TIMEOUT = 25  # seconds: a task starts in ~5 s (4x that under load still fits), an epoch of the tiny dataset ~0.7 s
EPOCHS = 40
DRILL_DEADLINE = 600
WATCH_DEADLINE = 60


@pytest.fixture
def short_trainer_tasks(stack):
    """The local trainer job with a TASK_TIMEOUT task timeout (`gcloud run jobs update` in production)."""
    before = local_runner.update_job_settings("trainer", task_timeout_seconds=TASK_TIMEOUT)
    yield
    local_runner.write_job_settings("trainer", before)


def test_a_training_longer_than_its_task_continues_over_executions_to_one_model(api, tiny, short_trainer_tasks):
    started = time.monotonic()
    body = {"dataset": tiny, "epochs": EPOCHS, "request_id": f"long-{uuid.uuid4().hex[:8]}", **TINY}
    job_id = api.session.post(f"{api.url}/training", json=body, timeout=30).json()["job_id"]
    asked_again: set[int] = set()
    job = wait_for(lambda: ask_each_continuation_again(api, job_id, asked_again),
                   lambda j: j is not None and j["status"] in ("completed", "failed", "cancelled"),
                   DRILL_DEADLINE, f"job {job_id} to finish", interval=0.2)
    seconds = time.monotonic() - started

    assert job["status"] == "completed", job
    assert [h["epoch"] for h in job["history"]] == list(range(1, EPOCHS + 1)) and job["epoch"] == EPOCHS
    executions, continuations = job["executions"], job["continuations"]
    print(f"\nlong training drill: {EPOCHS} epochs, task timeout {TASK_TIMEOUT} s, {len(executions)} executions, "
          f"epochs per execution {epochs_per_run(job['history'])}, {seconds:.0f} s")
    assert len(executions) >= 2, executions  # 3 here; a faster machine fits more epochs in a task
    # each execution after the first continues exactly one stopped run, in order; nothing was retried
    assert [e["continues_run"] for e in executions] == [None] + [c["run"] for c in continuations]
    assert asked_again == {c["run"] for c in continuations}
    assert [c["after_epoch"] for c in continuations] == sorted({c["after_epoch"] for c in continuations})
    assert len(run_markers(job_id)) == len(executions)
    runs = [h["run"] for h in job["history"]]
    assert runs == sorted(runs) and len(set(runs)) == len(executions)
    assert all(runs.count(run) >= 1 for run in set(runs))
    for execution in executions:  # each stopped itself in time: one attempt, not stopped by the timeout
        record = wait_for(lambda: local_runner.read_record(execution["execution"]),
                          lambda r: r["completion_time"] is not None, 60, f"{execution['execution']} to end")
        (task,) = record["tasks"]
        assert record["succeeded_count"] == 1 and [a["timed_out"] for a in task["attempts"]] == [False], record

    models = [m for m in api.get("/models", dataset=tiny)["models"] if m["job_id"] == job_id]
    assert [m["id"] for m in models] == [job["model_id"]] and models[0]["epochs"] == EPOCHS
    assert storage.bucket().blob(layout.training_weights(job_id, "best.onnx")).exists()


def ask_each_continuation_again(api, job_id: str, asked: set[int]) -> dict | None:
    """The job as it is now, once each continuation it shows has been asked for a second time."""
    job = api.get_or_none(f"/training/{job_id}")
    for continuation in (job or {}).get("continuations") or []:
        if continuation["run"] not in asked:
            asked.add(continuation["run"])
            continuation_requests.request(job_id, continuation["run"])
    return job


def epochs_per_run(history: list[dict]) -> list[int]:
    runs = [h["run"] for h in history]
    return [runs.count(run) for run in sorted(set(runs))]


def test_a_hung_task_is_stopped_at_its_timeout_retried_then_failed_by_the_watch(stack, api, tiny, monkeypatch):
    from common.cloud import launcher
    from common.services import start_training
    from tests.integration.trainer_drill import drill_launcher
    settings = local_runner.JobSettings(task_timeout_seconds=3, max_retries=1, grace_seconds=1)
    hung = drill_launcher("hang", stack.state_dir, settings)
    monkeypatch.setattr(launcher, "from_config", lambda: hung)
    body = {"dataset": tiny, "epochs": 2, "request_id": f"hung-{uuid.uuid4().hex[:8]}", **TINY}
    outcome = start_training.handle(PubSubMessage("hung-message", json.dumps(body).encode(), "hung-event", {}))
    assert outcome.result is Result.APPLIED, outcome
    job_id = outcome.fields["job_id"]

    job = job_when(api, job_id, lambda j: j["status"] == "failed", "to be failed by the watch",
                   timeout=2 * (3 + 1) + WATCH_DEADLINE)
    assert f"the trainer's execution local-run-{job_id} ended without reporting a result" in job["error"], job
    assert (f"Task local-run-{job_id}-task0 failed after 1 retry: its last attempt (1) was stopped by the task "
            "timeout of 3 s (SIGTERM, then SIGKILL 1 s later if still running)") in job["error"]
    assert "No epoch was checkpointed: start it again with `JOB_ID=" in job["error"]
    log = (stack.state_dir / f"trainer-{job_id}.log").read_text()
    assert [line.split()[2] for line in log.splitlines() if line.startswith("hung: attempt")] == ["0", "1"]
    record = local_runner.read_record(f"local-run-{job_id}")
    assert [(a["timed_out"], a["exit_code"]) for a in record["tasks"][0]["attempts"]] == [(True, -9), (True, -9)]
