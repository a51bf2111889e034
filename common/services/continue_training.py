"""A training longer than one task: its next execution, started exactly once per continuation.

The trainer stops after its last whole epoch that fits its task (jobs/trainer/main.py), publishes `continued`
and exits 0. The progress function records the continuation on the job and asks for the next execution here,
with a message on the training topic (continuation_requests.request); the watch asks again when that was lost
(training_job.awaits_continuation). The training function (start_training hands such messages here) starts the
execution once: a claim on the job document, then the launcher's own lookup of an execution already started
for that continuation (the run that stopped, CONTINUES_RUN), so a message delivered twice, or a launch whose
answer was lost, starts no second one. The new execution resumes from the bucket checkpoint; the job stays
running throughout, with one history and, at the end, one model.
"""
from __future__ import annotations

import time
import uuid

from common.cloud import executions, job_store, launcher, training_store
from common.domain import jobs as kernel
from common.domain import accelerators, training_job
from common.domain.messages import ContinuationRequest
from common.platform.events import PubSubMessage, decode
from common.platform.failures import is_transient
from common.platform.handler import Outcome, Result

STOPPING_SECONDS = 60  # how long the stopping execution may take to exit before the message is retried


class ContinuationBusy(RuntimeError):
    """Another delivery is starting this continuation, or the execution that asked for it has not ended yet."""


def is_continuation(message: PubSubMessage) -> bool:
    return message.attributes.get(training_job.CONTINUATION_ATTRIBUTE) == "1"


def handle(message: PubSubMessage) -> Outcome:
    request = decode(message, ContinuationRequest)
    job_id, run = request.job_id, request.continues_run
    claimed = _claim(job_id, run, message.message_id)
    if not claimed.taken:
        return Outcome(Result.DUPLICATE, f"continuation after run {run} of {job_id}: nothing to start",
                       {"job_id": job_id})
    job = claimed.found  # _may_start refuses a job that does not exist
    try:
        _wait_until_stopped(job)
        if not _may_start(training_store.read(job_id) or {}, run):
            job_store.release(claimed)
            return Outcome(Result.DUPLICATE, f"continuation after run {run} of {job_id}: superseded while the "
                                             "execution stopped", {"job_id": job_id})
        execution = launcher.launch_once(launcher.for_accelerator(accelerators.of_job(job)), job_id,
                                         job["manifest"], continues_run=run)
    except Exception as exc:
        job_store.release(claimed)
        if is_transient(exc) or isinstance(exc, ContinuationBusy):
            raise
        _fail(job_id, job, f"the next execution of the training could not be started: {exc!r}; check the trainer "
                        "configuration, then resume it with the command the watch gives")
        raise
    _record(job_id, run, execution)
    return Outcome(Result.APPLIED, f"job {job_id} continues after run {run} as {execution}", {"job_id": job_id})


def _claim(job_id: str, run: int, message_id: str) -> job_store.Claim:
    """The job, taken by this delivery when it may start the continuation after `run`; not taken when there is
    nothing to start (no such job, not running, a newer continuation, or this one started already).
    ContinuationBusy while another delivery starts it."""
    try:
        return training_store.claim(job_id, training_job.CONTINUATION_LEASE, f"{message_id}:{uuid.uuid4().hex[:8]}",
                                    lambda job: _may_start(job, run))
    except kernel.LeaseHeld as held:
        raise ContinuationBusy(f"the continuation after run {run} of {job_id} is being started by message "
                               f"{held.holder}") from None


def _may_start(job: dict, run: int) -> bool:
    """The continuation after `run` is the job's newest and was not started. Read again once the execution that
    asked has stopped: a retry of its task (its exit failed after it asked) may have trained on and asked for a
    newer continuation meanwhile, and only that one may start."""
    return job.get("status") == training_job.RUNNING and (job.get("continuation") or {}).get("run") == run \
        and not training_job.continuation_launched(job, run)


def _wait_until_stopped(job: dict) -> None:
    """The execution that asked publishes `continued` just before it exits: start the next one only once it has
    ended, so that a retry of its task (had its exit failed) never trains beside the next execution."""
    deadline = time.monotonic() + STOPPING_SECONDS
    while executions.observe(job).running:
        if time.monotonic() > deadline:
            raise ContinuationBusy(f"{job['execution']} still runs {STOPPING_SECONDS} s after it asked to continue")
        time.sleep(0.5)  # polling the platform for the end of the execution


def _record(job_id: str, run: int, execution: str) -> None:
    def launched(job: dict) -> dict | None:
        if training_job.continuation_launched(job, run):
            return None
        row = training_job.launched_execution(execution, run, time.time())
        return {"executions": [*(job.get("executions") or []), row], "execution": execution,
                "updated_at": time.time()}
    training_store.transition(job_id, launched)


def _fail(job_id: str, job: dict, reason: str) -> None:
    training_store.update(job_id, {"status": training_job.FAILED, "error": reason, "finished_at": time.time(),
                                   "sequence": training_job.closing_sequence(job)})
