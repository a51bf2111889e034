"""Per-person quotas and the caps on a training request. Pure.

A quota is a named amount a person may hold or use (stored_bytes, datasets, concurrent_training,
gpu_hours_per_day); going over it is refused with a 403 whose message names the quota, the usage and the limit.
The administrator has none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

from common.domain import accelerators

DAY = 86_400
STORED_BYTES, DATASETS = "stored_bytes", "datasets"
CONCURRENT_TRAINING, GPU_HOURS_PER_DAY = "concurrent_training", "gpu_hours_per_day"
WHAT_TO_DO = {
    STORED_BYTES: "it counts every byte you were given an upload session for (deleting files does not lower "
                  "it); ask the operator to raise QUOTA_STORED_BYTES",
    DATASETS: "give the ownership of a dataset to someone else or ask the operator to raise QUOTA_DATASETS",
    CONCURRENT_TRAINING: "wait until one of your jobs ends, or cancel one",
    GPU_HOURS_PER_DAY: "try again after 00:00 UTC",
}


@dataclass
class Exceeded(Exception):
    quota: str
    usage: float
    adding: float
    limit: float

    def __str__(self) -> str:
        return (f"quota {self.quota} exceeded: you use {_shown(self.usage)} of {_shown(self.limit)} and this "
                f"would add {_shown(self.adding)}; {WHAT_TO_DO.get(self.quota, 'ask the operator')}")


def _shown(amount: float) -> str:
    return f"{amount:g}" if isinstance(amount, float) else str(amount)


def check(quota: str, usage: float, adding: float, limit: float) -> None:
    """Raise Exceeded when `usage` + `adding` goes over `limit`."""
    if usage + adding > limit:
        raise Exceeded(quota, usage, adding, limit)


def day_start(now: float) -> float:
    """The start of the UTC day of `now`."""
    return now // DAY * DAY


def hours_used(jobs: list[dict[str, Any]], now: float, since: float) -> float:
    """GPU hours of `jobs` since `since`: from each one's start (or `since`) to its end (or now), times the GPUs
    it holds (one on the Cloud Run Job, its accelerator's count on Vertex AI). A job not started yet has used
    nothing."""
    seconds = 0.0
    for job in jobs:
        started = job.get("started_at")
        if started is None:
            continue
        seconds += max(0.0, (job.get("finished_at") or now) - max(started, since)) * accelerators.gpus_of(job)
    return seconds / 3600


def training_cap_refusal(body: dict[str, Any], max_epochs: int, max_imgsz: int) -> tuple[str, str] | None:
    """(the field, why) when a training request asks for more than the caps (TRAINING_MAX_EPOCHS,
    TRAINING_MAX_IMGSZ); what is not a number is the training request's own check."""
    for field, cap, setting in (("epochs", max_epochs, "TRAINING_MAX_EPOCHS"), ("imgsz", max_imgsz,
                                                                               "TRAINING_MAX_IMGSZ")):
        value = body.get(field)
        largest = max((v for v in value if _is_number(v)), default=0) if isinstance(value, list) else value
        if _is_number(largest) and largest > cap:
            return field, f"{field} is at most {cap} here (the operator's {setting}); you asked for {value}"
    return None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
