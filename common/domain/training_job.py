"""Training job documents and the rules that keep them true. Pure functions.

The trainer publishes progress events {"job_id", "sequence", "type", ...} with
types started, epoch, completed, failed, cancelled, and continued (it stopped in
time before its task's limit; the next execution goes on: the job stays
running). Sequences grow within a run
and every run of a job (a retried or resumed task) numbers above the runs
before it: sequence = run * RUN_STRIDE + n. So an event at or below the last
applied sequence is a duplicate or late and changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from common.domain import jobs, storable

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "queued", "running", "completed", "failed", "cancelled"
FINAL = (COMPLETED, CANCELLED)  # nothing changes after these; a failed job may be retried
EVENT_TYPES = ("started", "epoch", "completed", "failed", "cancelled", "continued")
RUN_STRIDE = 1_000_000
CONTINUATION_ATTRIBUTE = "continuation"  # a training-topic message asking for a continuation, not a request
# The training function's claims (the kernel's one claim): preparing and launching a job, and starting the
# execution that continues one; a delivery that died holding one is replaced after its seconds.
CLAIM_LEASE = jobs.Lease(120.0, at="claimed_at", holder="claimed_by")
CONTINUATION_LEASE = jobs.Lease(120.0, at="continuation.claimed_at", holder="continuation.claimed_by")


def sequence(run: int, n: int) -> int:
    return run * RUN_STRIDE + n


def queued_job(job_id: str, request_id: str, dataset: str | None, epochs: int | None, request: dict[str, Any],
               now: float, created_at: float | None = None) -> dict[str, Any]:
    """A job not started yet. `created_at` is kept from the first sight of the
    request (the API's), so lists ordered by it never move a job."""
    return {"id": job_id, "request_id": request_id, "dataset": dataset, "status": QUEUED,
            "epoch": 0, "epochs": epochs, "history": [], "error": None, "model_id": None,
            "request": request, "sequence": -1, "created_at": created_at or now, "updated_at": now,
            "started_at": None, "finished_at": None}


def received_job(job_id: str, request_id: str, body: dict[str, Any], now: float,
                 requested_by: str | None = None) -> dict[str, Any]:
    """A job the API has accepted and the training function has not taken yet."""
    dataset, epochs = body.get("dataset"), body.get("epochs")
    return {**queued_job(job_id, request_id, dataset if isinstance(dataset, str) else None,
                         epochs if isinstance(epochs, int) else None, body, now), "requested_by": requested_by}


def failed_job(job_id: str, request_id: str, dataset: object, request: object, reason: str, now: float,
               created_at: float | None = None) -> dict[str, Any]:
    """A request that can never run: the job exists so the requester learns why."""
    job = queued_job(job_id, request_id, dataset if isinstance(dataset, str) else None, 0,
                     request if isinstance(request, dict) and storable.problem(request) is None
                     else {"raw": repr(request)[:2000]}, now, created_at)
    return {**job, "status": FAILED, "error": reason, "finished_at": now}


def apply_event(job: dict[str, Any], event: dict[str, Any], now: float) -> dict[str, Any] | None:
    """The fields to update for `event`, or None when it changes nothing."""
    if job["status"] in FINAL or event["sequence"] <= job.get("sequence", -1):
        return None
    kind = event["type"]
    update = {"sequence": event["sequence"], "updated_at": now}
    if kind == "started":
        update.update(status=RUNNING, error=None, run=event.get("run"), device=event.get("device"),
                      resumed_from_epoch=event.get("resumed_from_epoch"), images=event.get("images"),
                      materialize_seconds=event.get("materialize_seconds"),
                      started_at=job.get("started_at") or now,
                      execution=reported_execution(job.get("execution"), event.get("execution")))
    elif kind == "epoch":
        update.update(status=RUNNING, error=None, epoch=event["epoch"], epochs=event["epochs"],
                      history=_with_epoch(job.get("history", []), _history_row(event)))
    elif kind == "completed":
        update.update(status=COMPLETED, epoch=event.get("epoch", job.get("epoch")), metrics=event.get("metrics"),
                      weights=event.get("weights"), model_id=model_id_for(job["id"]), finished_at=now)
    elif kind == "failed":
        update.update(status=FAILED, error=event.get("error") or "the trainer failed", finished_at=now)
    elif kind == "cancelled":
        update.update(status=CANCELLED, weights=event.get("weights"), finished_at=now)
    elif kind == "continued":
        row = {"run": event.get("run"), "after_epoch": event.get("epoch"), "at": now,
               "execution": reported_execution(job.get("execution"), event.get("execution"))}
        # it repeats its run's last epoch, which an epoch event delivered after it would no longer bring
        update.update(status=RUNNING, error=None, continuation=row, epoch=event["epoch"],
                      history=_with_epoch(job.get("history", []), _history_row(event)),
                      continuations=[c for c in job.get("continuations", []) if c.get("run") != row["run"]] + [row])
    else:
        raise ValueError(f"unknown progress event type {kind!r}")
    return update


def _history_row(event: dict[str, Any]) -> dict[str, Any]:
    return {"epoch": event["epoch"], "run": event.get("run"), "seconds": event.get("seconds"),
            **(event.get("metrics") or {})}


def _with_epoch(history: list[dict[str, Any]], row: dict[str, Any]) -> list[dict[str, Any]]:
    """A resumed run may repeat an epoch: the newest report of it wins."""
    return [h for h in history if h["epoch"] < row["epoch"]] + [row]


def model_id_for(job_id: str) -> str:
    return "model-" + job_id.removeprefix("job-")


def model_document(job: dict[str, Any], event: dict[str, Any], onnx: dict[str, Any]) -> dict[str, Any]:
    """The registered model; `onnx` is what registration found of its ONNX weights (registered_onnx)."""
    return {"id": model_id_for(job["id"]), "dataset": job["dataset"], "job_id": job["id"],
            "manifest": job.get("manifest"), "classes": event.get("classes") or [],
            "metrics": event.get("metrics") or {}, "weights": event.get("weights") or {},
            "onnx": onnx,
            "evaluation": event.get("evaluation"),
            "base_model": (job.get("request") or {}).get("model"), "epochs": event.get("epoch"),
            "version": job.get("version"),
            "created_at": event.get("time")}


def onnx_claimed(event: dict[str, Any]) -> dict[str, Any]:
    """What the trainer says of the ONNX export: {"uri", "generation", "imgsz", "classes"} or {"error"};
    an older trainer's event only names weights.onnx."""
    onnx = event.get("onnx")
    if isinstance(onnx, dict):
        return onnx
    uri = (event.get("weights") or {}).get("onnx")
    return {"uri": uri} if uri else {"error": "the trainer exported no ONNX weights"}


def registered_onnx(event: dict[str, Any], in_bucket: bool) -> dict[str, Any]:
    """The ONNX record of a model: the trainer's claim, with an error when prediction could not use it
    (the export failed, its classes are not the model's, or the file is not in the bucket)."""
    onnx = onnx_claimed(event)
    if onnx.get("error"):
        return onnx
    classes = event.get("classes") or []
    if "classes" in onnx and onnx["classes"] != classes:
        return {**onnx, "error": f"the ONNX has the classes {onnx['classes']}, the model {classes}"}
    if not in_bucket:
        return {**onnx, "error": f"the ONNX weights {onnx['uri']} are not in the bucket"}
    return onnx


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of a job document."""
    keys = ("id", "dataset", "requested_by", "status", "epoch", "epochs", "history", "error", "model_id", "request_id",
            "request", "manifest", "version", "execution", "device", "run", "resumed_from_epoch", "images", "excluded",
            "metrics", "weights", "cancel_requested", "materialize_seconds", "executions", "continuations",
            "accelerator", "created_at", "launched_at", "started_at", "finished_at", "updated_at")
    return {k: job.get(k) for k in keys}


# ---- the watch: executions that end without a final event -----------------------------

WATCHED = (QUEUED, RUNNING)  # a job in these states waits for its trainer's events
LOCAL_EXECUTION_PREFIX = "local-pid-"  # + the pid: a trainer started by hand (the rerun command of a reason)
LOCAL_RUN_PREFIX = "local-run-"  # an execution of the local launcher's Cloud Run Job (common/cloud/local_runner.py)


def local_execution_name(job_id: str, continues_run: int | None = None) -> str:
    """The local launcher's execution for a job, or for the continuation of its run `continues_run`."""
    return f"{LOCAL_RUN_PREFIX}{job_id}" + ("" if continues_run is None else f"-after-run-{continues_run}")


def reported_execution(current: str | None, reported: str | None) -> str | None:
    """The execution that runs the job now: the one named by the latest `started`
    event (a rerun is a new execution), else the one the launcher recorded. A
    Cloud Run task knows only its execution's short name (CLOUD_RUN_EXECUTION), a
    Vertex AI custom job only its id (CLOUD_ML_JOB_ID): either is resolved against
    the full name the launcher recorded."""
    if not reported:
        return current
    if "/" in reported or not current or not ("/executions/" in current or "/customJobs/" in current):
        return reported
    return f"{current.rsplit('/', 1)[0]}/{reported}"


@dataclass(frozen=True)
class ExecutionState:
    """What the platform says of one trainer execution (common/cloud/executions.py)."""
    execution: str
    running: bool
    succeeded: bool = False
    ended_at: float | None = None  # None where the platform cannot say (a local process that is gone)
    detail: str = ""               # how it ended, in the platform's words: exit code, retries
    rerun: str = ""                # the command that runs the trainer again for this job


def execution_ended(job: dict[str, Any], state: ExecutionState, now: float, grace: float,
                    silent_grace: float | None = None) -> dict[str, Any] | None:
    """The update for a job whose execution ended without a final event, or None.

    The job fails only `grace` seconds after the end (a final event published
    just before it is still applied first); where the platform gives no end time
    the first sweep that sees the execution gone notes it, and a later one
    decides. An execution that succeeded published its final event (or its
    continuation) before it exited: its job fails only after `silent_grace`
    (None: never), long enough for any late event. The failure also closes every
    run the job has started, so a late event of a dead run changes nothing,
    while a rerun (a higher run) revives it."""
    if job.get("status") not in WATCHED or job.get("execution") != state.execution or state.running:
        return None
    if state.succeeded:
        if silent_grace is None or (job.get("continuation") or {}).get("execution") == state.execution:
            return None  # its continuation is followed by awaits_continuation
        grace = silent_grace
    noted = job.get("execution_gone") or {}
    ended_at = state.ended_at or (noted.get("at") if noted.get("execution") == state.execution else None)
    if ended_at is None:
        return {"execution_gone": {"execution": state.execution, "at": now}}
    if now - ended_at < grace:
        return None
    return {"status": FAILED, "error": execution_ended_reason(job, state), "finished_at": now, "updated_at": now,
            "sequence": closing_sequence(job)}


def launched_execution(execution: str, continues_run: int | None, now: float) -> dict[str, Any]:
    """A row of the job's `executions`: each execution started for it, the first and every continuation's."""
    return {"execution": execution, "continues_run": continues_run, "launched_at": now}


def continuation_launched(job: dict[str, Any], run: int | None) -> bool:
    return any(row.get("continues_run") == run for row in job.get("executions") or [])


def waits_for_request(job: dict[str, Any]) -> bool:
    """Queued and never launched: its request is still worth sending (the training function claims it once)."""
    return job.get("status") == QUEUED and not (job.get("execution") or job.get("launched_at"))


def cancelled_fields(by: str | None, now: float) -> dict[str, Any]:
    """A job cancelled before it was launched: it ends at once (common.domain.jobs.cancelled)."""
    return {**jobs.cancelled(by, now), "updated_at": now}


def request_again(job: dict[str, Any]) -> dict[str, Any]:
    """The request message of a job the training function never launched, as its requester sent it: the API's
    body, or what the function recorded of it before it died (the request's arguments and its dataset)."""
    request = dict(job.get("request") or {})
    request.setdefault("dataset", job.get("dataset"))
    request["request_id"] = job["request_id"]
    return request


def awaits_continuation(job: dict[str, Any], state: ExecutionState, now: float, grace: float) -> bool:
    """The job's execution stopped in time to continue (its trainer published `continued`, then exited 0) and,
    `grace` seconds after, no execution has been started for that continuation: it must be asked for again."""
    continuation = job.get("continuation") or {}
    if job.get("status") != RUNNING or not state.succeeded or continuation.get("execution") != state.execution:
        return False
    if continuation_launched(job, continuation.get("run")):
        return False
    return now - max(state.ended_at or 0, continuation.get("at") or 0) >= grace


def continuation_never_started(job: dict[str, Any], state: ExecutionState, reason: str, now: float) -> dict[str, Any]:
    """The update failing a job whose next execution was asked for in vain (the watch's resend rule gave up):
    its checkpoint is there, so the reason says how to resume from it."""
    continuation = job.get("continuation") or {}
    return {"status": FAILED, "finished_at": now, "updated_at": now, "sequence": closing_sequence(job),
            "error": f"the trainer stopped after epoch {continuation.get('after_epoch')} of {job.get('epochs')} to "
                     f"continue in a new execution, which was never started: {reason}. The epoch is "
                     f"checkpointed: resume from it with `{state.rerun}`"}


def closing_sequence(job: dict[str, Any]) -> int:
    """Above every event of the runs the job has started; below any later run's."""
    run = job.get("run")
    return cast(int, max(job.get("sequence", -1), -1 if run is None else sequence(run + 1, 0) - 1))


def execution_ended_reason(job: dict[str, Any], state: ExecutionState) -> str:
    ended = (f"the trainer's execution {state.execution} ended without reporting a result"
             f"{f' ({state.detail})' if state.detail else ''}")
    epoch = job.get("epoch") or 0
    if epoch:
        return (f"{ended}. Epoch {epoch} of {job.get('epochs')} is checkpointed: resume from it with "
                f"`{state.rerun}`")
    return (f"{ended}. No epoch was checkpointed: start it again with `{state.rerun}`, "
            "or send the request again with a new request_id")
