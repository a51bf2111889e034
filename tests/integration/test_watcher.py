"""The watch through the local stack: a trainer SIGKILLed before it publishes
anything final leaves its job running until the watch (the watch function, fed
by the stack's scheduler) sees its process gone and fails it with a reason
that says how to resume; a late event of the dead run changes nothing; the
command the reason gives resumes the job."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid

import pytest

from common.cloud import training_store
from common.domain import training_job
from common.domain.training_request import job_id_for
from common.platform.events import PubSubMessage
from common.platform.handler import Result
from common.services import watch_training
from infra.local.client import wait_for
from tests.integration.test_training import (TINY, TRAIN_DEADLINE, _progress_outcomes, _tail, finished, job_when,
                                             publish, tiny)  # noqa: F401 (tiny: a fixture)

WATCH_DEADLINE = 60  # the stack's watch: a tick a second, failed 5 s after the process is first seen gone


def test_a_killed_trainer_ends_failed_with_how_to_resume_and_late_events_change_nothing(
        stack, api, tiny, monkeypatch, tmp_path):
    job_id, first = _launch_with_drill(stack, tiny, monkeypatch, kill_after_epoch=1, epochs=3)
    assert first.wait(timeout=TRAIN_DEADLINE) == -signal.SIGKILL, _tail(stack.state_dir / f"trainer-{job_id}.log")
    killed_at = time.monotonic()

    job = job_when(api, job_id, lambda j: j["status"] == "failed", "to be failed by the watch", WATCH_DEADLINE)
    print(f"\nkilled -> failed by the watch: {time.monotonic() - killed_at:.1f} s")
    assert f"the trainer's execution local-run-{job_id} ended without reporting a result" in job["error"], job
    assert f"Task local-run-{job_id}-task0 failed after 0 retries: its last attempt (0) was killed by signal 9" \
        in job["error"]
    assert "Epoch 1 of 3 is checkpointed: resume from it with `JOB_ID=" in job["error"]
    assert job["epoch"] == 1 and job["execution"] == f"local-run-{job_id}"
    # Said once, in the line the failed-jobs metric counts (infra/terraform/.../monitoring.tf).
    assert wait_for(lambda: _job_events(stack, job_id), lambda events: events, 30, "the watch's line") == \
        [("failed", "training", "watch")]

    late = {"job_id": job_id, "type": "epoch", "sequence": training_job.sequence(0, 99), "run": 0,
            "epoch": 2, "epochs": 3, "metrics": {"mAP50": 0.5}}
    assert _progress_event(stack, late) == "duplicate"
    assert api.get(f"/training/{job_id}")["status"] == "failed"

    _run_the_reasons_command(job["error"], tmp_path)
    resumed = finished(api, job_id)
    assert resumed["status"] == "completed" and resumed["run"] == 1 and resumed["resumed_from_epoch"] == 1, resumed
    assert [(h["epoch"], h["run"]) for h in resumed["history"]] == [(1, 0), (2, 1), (3, 1)]


def _launch_with_drill(stack, dataset: str, monkeypatch, kill_after_epoch: int, epochs: int):
    """The training function's own code with the SIGKILL drill's launcher (as in
    test_training's resume test); the job id and the trainer process."""
    from common.cloud import launcher
    from common.services import start_training
    from tests.integration.trainer_drill import drill_launcher
    drill = drill_launcher(kill_after_epoch=kill_after_epoch, log_dir=stack.state_dir)
    monkeypatch.setattr(launcher, "from_config", lambda: drill)
    body = {"dataset": dataset, "epochs": epochs, "request_id": f"watch-{uuid.uuid4().hex[:8]}", **TINY}
    outcome = start_training.handle(PubSubMessage("watch-message", json.dumps(body).encode(), "watch-event", {}))
    assert outcome.result is Result.APPLIED, outcome
    job_id = outcome.fields["job_id"]
    assert training_store.jobs().document(job_id).get().to_dict()["execution"] == f"local-run-{job_id}"
    return job_id, drill.processes[job_id]


def _job_events(stack, job_id: str) -> list[tuple[str, str, str]]:
    """(job_event, job_kind, by) of each line the watch wrote about `job_id` with log.job_event."""
    lines = (stack.state_dir / "watch.log").read_text(errors="replace").splitlines()
    records = (json.loads(line) for line in lines if line.startswith("{"))
    return [(r["job_event"], r["job_kind"], r.get("by")) for r in records
            if r.get("job_id") == job_id and "job_event" in r]


def _progress_event(stack, event: dict) -> str:
    """Publish one progress event; the progress function's outcome for it."""
    before = len(_progress_outcomes(stack, event["job_id"]))
    publish("training-progress", event)
    outcomes = wait_for(lambda: _progress_outcomes(stack, event["job_id"]), lambda o: len(o) > before, 30,
                        "the progress function to handle the late event")
    return outcomes[before]


def _run_the_reasons_command(reason: str, tmp_path) -> None:
    """Run `VAR=... python -m jobs.trainer` exactly as the reason spells it."""
    words = shlex.split(reason.split("`")[1])
    assignments = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    argv = [sys.executable if word == "python" else word for word in words if word not in
            {f"{k}={v}" for k, v in assignments.items()}]
    env = {**os.environ, **assignments, "TRAINER_WORK_DIR": str(tmp_path / "fresh-disk")}
    done = subprocess.run(argv, env=env, capture_output=True, timeout=TRAIN_DEADLINE)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_queued_training_whose_request_never_reached_the_training_function_is_sent_again_by_the_watch(api):
    """The API recorded the job but its message was lost (or every delivery failed before the launch): the
    watch sends the recorded request again, and the training function handles it. A request for a dataset that
    does not exist is used here, so that the function's answer (the job failed with its reason) comes at once."""
    request_id = f"lost-{uuid.uuid4().hex[:8]}"
    body = {"dataset": f"nowhere-{uuid.uuid4().hex[:8]}", "model": "yolo11n.yaml", "epochs": 1,
            "request_id": request_id}
    job_id = training_job_id(request_id)
    training_store.jobs().document(job_id).create(
        training_job.received_job(job_id, request_id, body, time.time(), "admin"))
    assert watch_training.resend_unlaunched(time.time() + 10 ** 6)[job_id] == "sent again"
    job = job_when(api, job_id, lambda j: j["status"] == "failed", "to be failed by the training function", 60)
    assert "nowhere-" in job["error"] and job["request_id"] == request_id


def training_job_id(request_id: str) -> str:
    return job_id_for(request_id, "admin")


def test_a_continuation_superseded_while_its_execution_stopped_starts_nothing(stack, monkeypatch):
    """A task asked to continue after run 5, then its exit failed and its retry trained on and asked to continue
    after run 6 while the first delivery waited for the execution to stop: only run 6's continuation may start
    (else two executions train the same job at once)."""
    from common.cloud import launcher
    from common.platform.events import PubSubMessage
    from common.platform.handler import Result
    from common.services import continue_training

    job_id = f"job-superseded-{uuid.uuid4().hex[:8]}"
    ref = training_store.jobs().document(job_id)
    ref.set({**training_job.queued_job(job_id, "r", "d", 10, {}, time.time()), "status": training_job.RUNNING,
             "manifest": "gs://b/m.json", "execution": "local-pid-1", "continuation": {"run": 5, "after_epoch": 4}})
    monkeypatch.setattr(continue_training, "_wait_until_stopped",
                        lambda job: ref.update({"continuation": {"run": 6, "after_epoch": 7}}))
    monkeypatch.setattr(launcher, "from_config", lambda: pytest.fail("a superseded continuation was started"))
    message = PubSubMessage("m-5", json.dumps({"job_id": job_id, "continues_run": 5}).encode(), "e-5",
                            {training_job.CONTINUATION_ATTRIBUTE: "1"})
    assert continue_training.handle(message).result is Result.DUPLICATE
    assert not ref.get().to_dict().get("executions")
    assert not (ref.get().to_dict()["continuation"].get("claimed_by"))  # its claim let go for run 6's delivery
