"""The one request path of every job: record it, then ask for it while it waits.

Every kind (a dataset job, an export, an import, a training run) is asked for the same way: its document is
created unless a job of its id exists, then its request is published whenever the job still waits for it
(queued, not started). Repeating this is safe, since every consumer is idempotent: a publish that failed is
repaired by the caller's retry (with the same request id, so the same job id) or, when nobody retries, by the
watch, which publishes again the request of any job queued for JOB_STALL_SECONDS (docs/jobs.md).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable

from common.cloud import job_store, topics
from common.domain import jobs as kernel
from common.domain.messages import Message


def ask(collection, job: dict, topic: str, message: Message, deadline: float | None = None,
        waiting: Callable[[dict], bool] = kernel.may_publish_start, **attributes: str) -> dict:
    """The job as stored, its request published if it still waits; a failed publish raises (the job stays
    queued: asking again, or the watch, publishes it)."""
    return ask_recorded(job_store.create(collection, job, deadline), topic, message, deadline, waiting,
                        **attributes)


def ask_recorded(stored: dict, topic: str, message: Message, deadline: float | None = None,
                 waiting: Callable[[dict], bool] = kernel.may_publish_start, **attributes: str) -> dict:
    """`ask` for a job its kind recorded itself (a version, under the next free number): `stored` as it is now,
    its request published if it still waits; a failed publish raises and the job stays queued."""
    if waiting(stored):
        topics.publish(topic, message, deadline, **attributes)
    return stored


def job_id(kind: str, dataset: str, requested_by: str | None, request_id: str | None) -> str:
    """The job a person's request_id names: a retry after a lost answer gets the first job, and nobody else's
    request_id can name it (common.domain.jobs.job_id); a fresh one when the client sent no request_id."""
    return kernel.job_id(kind, dataset, requested_by, request_id) if request_id else f"{kind}-{uuid.uuid4().hex[:16]}"
