"""The watch's work: one sweep over the training jobs that wait for their trainer (and the imports: watch_imports).

A trainer that dies without publishing (killed for memory, out of Cloud Run
retries, a local process killed) leaves its job queued or running for ever.
Each sweep (a Cloud Scheduler message in production, the local stack's
scheduler locally) asks the platform about the execution of every such job
(common/cloud/executions.py) and applies the rule of
common/domain/training_job.execution_ended in a transaction: a job whose
execution ended without a final event becomes failed, with how it ended and
how to resume. A job whose execution stopped in time to continue in the next
(continue_training) is not failed: if no next execution was started for it
within the grace period, the sweep asks for it again, and fails the job with
how to resume only once asking again did not help (the kernel's resend rule).
"""
from __future__ import annotations

import time

from common.cloud import executions, job_store, training_store
from common.domain import jobs as kernel
from common.domain import messages, training_job
from common.platform import config, log
from common.platform.events import PubSubMessage, decode
from common.platform.handler import Outcome, Result
from common.services import continuation_requests, jobs, reconcile, watch_exports, watch_imports, watch_versions


def handle(message: PubSubMessage) -> Outcome:
    """One sweep of training jobs, imports, exports, versions and the kernel's jobs; the message itself carries
    nothing but that it is one (messages.Sweep), or that it asks for the reconciliation instead."""
    if decode(message, messages.Sweep).reconcile:
        return reconcile.run()
    changes = {job["id"]: change for job in waiting_jobs() if (change := watch(job, time.time()))}
    failed = sorted(job_id for job_id, change in changes.items() if change.get("status") == training_job.FAILED)
    noted = sorted(set(changes) - set(failed))
    imports_failed = watch_imports.sweep()
    stalled = {"dataset job": jobs.watch(time.time()), "import": watch_imports.resend_waiting(time.time()),
               "export": watch_exports.resend_waiting(time.time()),
               "version": watch_versions.resend_waiting(time.time()), "training": resend_unlaunched(time.time())}
    jobs_acted = {name: action for acted in stalled.values() for name, action in acted.items()}
    report(failed, imports_failed, stalled)
    acted = changes or imports_failed or jobs_acted
    detail = (f"swept: {len(failed)} failed {failed}, {len(noted)} noted gone {noted}, "
              f"{len(imports_failed)} imports failed {imports_failed}, jobs {jobs_acted}") \
        if acted else "swept: all well"
    return Outcome(Result.APPLIED if acted else Result.DUPLICATE, detail,
                   {"failed": failed, "noted": noted, "imports_failed": imports_failed,
                    "jobs": jobs_acted})


def report(failed: list[str], imports_failed: list[str], stalled: dict[str, dict[str, str]]) -> None:
    """One line per job this sweep failed or found stalled (log.job_event), which the log-based metrics count:
    a training whose execution ended without its final event, an import whose execution failed, and every job
    quiet for JOB_STALL_SECONDS, with what was done (sent again, failed; "moved": it moved meanwhile)."""
    for job_id in failed:
        log.job_event(log.JOB_FAILED, "training", job_id, by="watch")
    for import_id in imports_failed:
        log.job_event(log.JOB_FAILED, "import", import_id, by="watch")
    for kind, acted in stalled.items():
        for name, action in acted.items():
            if action == "moved":
                continue
            log.job_event(log.JOB_STALLED, kind, name, action=action)
            if action == "failed":
                log.job_event(log.JOB_FAILED, kind, name, by="watch")


def _unlaunched_failed(job: dict, reason: str, now: float) -> dict:
    return {"status": training_job.FAILED, "finished_at": now, "updated_at": now,
            "error": f"the training was never started: {reason}"}


# Queued jobs the training function never launched (their request lost, or every delivery failed first).
UNLAUNCHED = jobs.Waiting(
    training_store.jobs, (training_job.QUEUED,), config.training_topic,
    message=lambda job: (messages.TrainingRequest.model_validate(training_job.request_again(job)),
                         {"requested_by": job["requested_by"]} if job.get("requested_by") else {}),
    waits=training_job.waits_for_request,
    activity=lambda job: max(kernel.stored(job, training_job.CLAIM_LEASE.at) or 0.0, job.get("updated_at") or 0.0),
    progress=lambda job: job["status"], failed=_unlaunched_failed)


def resend_unlaunched(now: float) -> dict[str, str]:
    """{job id: what was done}: the request of a job never launched sent again, or the job failed once that did
    not help (common.services.jobs.resend_stalled)."""
    return jobs.resend_stalled(UNLAUNCHED, now)


def _ask_to_continue(job: dict, state: training_job.ExecutionState, now: float) -> dict | None:
    """The continuation nobody started is asked for again every grace period, and the job failed once that
    did not help MAX_REPUBLISHES times (common.domain.jobs.resend_action)."""
    run, grace = job["continuation"]["run"], config.watch_grace_seconds()
    progress = f"continuation after run {run}"
    quiet_since = max(state.ended_at or 0.0, job["continuation"].get("at") or 0.0)
    stalled = kernel.resend_action(job, progress, quiet_since, now, grace)
    if stalled is None:
        return None

    def asked_again(current: dict) -> dict | None:
        if not training_job.awaits_continuation(current, state, now, grace):
            return None  # started meanwhile
        return (training_job.continuation_never_started(current, state, stalled.reason, now)
                if stalled.action == "fail" else job_store.republished(current, progress))

    fields = training_store.transition(job["id"], asked_again)
    if fields and stalled.action != "fail":
        continuation_requests.request(job["id"], run)
    return fields


def waiting_jobs() -> list[dict]:
    """Jobs that wait for events and name the execution they wait for."""
    return [job for job in training_store.watched() if job.get("execution")]


def watch(job: dict, now: float) -> dict | None:
    """Ask the platform about the job's execution, then apply the rule to the job as it is now."""
    state = executions.observe(job)
    if state.running:
        return None
    if training_job.awaits_continuation(job, state, now, config.watch_grace_seconds()):
        return _ask_to_continue(job, state, now)

    def ended(current: dict) -> dict | None:
        return training_job.execution_ended(current, state, now, config.watch_grace_seconds(),
                                            silent_grace=config.job_stall_seconds()) or None

    return training_store.transition(job["id"], ended)
