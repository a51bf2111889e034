"""Training job documents and the rules that keep them true. Pure functions.

The trainer publishes progress events {"job_id", "sequence", "type", ...} with
types started, epoch, completed, failed, cancelled. Sequences grow within a run
and every run of a job (a retried or resumed task) numbers above the runs
before it: sequence = run * RUN_STRIDE + n. So an event at or below the last
applied sequence is a duplicate or late and changes nothing.
"""
from __future__ import annotations

from common.domain import storable

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "queued", "running", "completed", "failed", "cancelled"
FINAL = (COMPLETED, CANCELLED)  # nothing changes after these; a failed job may be retried
EVENT_TYPES = ("started", "epoch", "completed", "failed", "cancelled")
RUN_STRIDE = 1_000_000


def sequence(run: int, n: int) -> int:
    return run * RUN_STRIDE + n


def queued_job(job_id: str, request_id: str, dataset: str, epochs: int, request: dict, now: float,
               created_at: float | None = None) -> dict:
    """A job not started yet. `created_at` is kept from the first sight of the
    request (the API's), so lists ordered by it never move a job."""
    return {"id": job_id, "request_id": request_id, "dataset": dataset, "status": QUEUED,
            "epoch": 0, "epochs": epochs, "history": [], "error": None, "model_id": None,
            "request": request, "sequence": -1, "created_at": created_at or now, "updated_at": now,
            "started_at": None, "finished_at": None}


def received_job(job_id: str, request_id: str, body: dict, now: float) -> dict:
    """A job the API has accepted and the training function has not taken yet."""
    dataset, epochs = body.get("dataset"), body.get("epochs")
    return queued_job(job_id, request_id, dataset if isinstance(dataset, str) else None,
                      epochs if isinstance(epochs, int) else None, body, now)


def failed_job(job_id: str, request_id: str, dataset, request, reason: str, now: float,
               created_at: float | None = None) -> dict:
    """A request that can never run: the job exists so the requester learns why."""
    job = queued_job(job_id, request_id, dataset if isinstance(dataset, str) else None, 0,
                     request if isinstance(request, dict) and storable.problem(request) is None
                     else {"raw": repr(request)[:2000]}, now, created_at)
    return {**job, "status": FAILED, "error": reason, "finished_at": now}


def apply_event(job: dict, event: dict, now: float) -> dict | None:
    """The fields to update for `event`, or None when it changes nothing."""
    if job["status"] in FINAL or event["sequence"] <= job.get("sequence", -1):
        return None
    kind = event["type"]
    update = {"sequence": event["sequence"], "updated_at": now}
    if kind == "started":
        update.update(status=RUNNING, error=None, run=event.get("run"), device=event.get("device"),
                      resumed_from_epoch=event.get("resumed_from_epoch"), images=event.get("images"),
                      materialize_seconds=event.get("materialize_seconds"),
                      started_at=job.get("started_at") or now)
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
    else:
        raise ValueError(f"unknown progress event type {kind!r}")
    return update


def _history_row(event: dict) -> dict:
    return {"epoch": event["epoch"], "run": event.get("run"), "seconds": event.get("seconds"),
            **(event.get("metrics") or {})}


def _with_epoch(history: list[dict], row: dict) -> list[dict]:
    """A resumed run may repeat an epoch: the newest report of it wins."""
    return [h for h in history if h["epoch"] < row["epoch"]] + [row]


def model_id_for(job_id: str) -> str:
    return "model-" + job_id.removeprefix("job-")


def model_document(job: dict, event: dict) -> dict:
    return {"id": model_id_for(job["id"]), "dataset": job["dataset"], "job_id": job["id"],
            "manifest": job.get("manifest"), "classes": event.get("classes") or [],
            "metrics": event.get("metrics") or {}, "weights": event.get("weights") or {},
            "base_model": (job.get("request") or {}).get("model"), "epochs": event.get("epoch"),
            "created_at": event.get("time")}


def job_view(job: dict) -> dict:
    """What the API shows of a job document."""
    keys = ("id", "dataset", "status", "epoch", "epochs", "history", "error", "model_id", "request_id",
            "request", "manifest", "execution", "device", "run", "resumed_from_epoch", "images", "excluded",
            "metrics", "weights", "cancel_requested", "materialize_seconds",
            "created_at", "launched_at", "started_at", "finished_at", "updated_at")
    return {k: job.get(k) for k in keys}
