"""The progress function's work: apply one trainer event to its job document.

The job update and, on `completed`, the model registration are one transaction,
so a duplicate or late event (by sequence) changes nothing and a completed job
always has its model. A `continued` event (the trainer stopped in time before
its task's limit) asks the training function for the next execution, applied or
duplicate alike: a delivery that crashed before asking is made good by the next
(continue_training starts one execution per continuation however often asked).
"""
from __future__ import annotations

import time

from google.api_core.exceptions import NotFound

from common.cloud import storage, training_store
from common.domain import training_job
from common.domain.messages import ProgressEvent
from common.platform import config, log
from common.platform.events import PubSubMessage, decode
from common.platform.handler import Outcome, Result
from common.services import continuation_requests


def handle(message: PubSubMessage) -> Outcome:
    event = decode(message, ProgressEvent).fields()
    outcome = _apply(event)
    run = event.get("run")  # the trainer names the run it stopped in; an event without one asks for nothing here
    if event["type"] == "continued" and isinstance(run, int) and outcome.result in (Result.APPLIED, Result.DUPLICATE):
        continuation_requests.request(event["job_id"], run)
    return outcome


def _apply(event: dict) -> Outcome:
    """The job update and, on `completed`, its model registration, in one transaction."""
    what = f"{event['type']} #{event['sequence']} of {event['job_id']}"
    onnx = _checked_onnx(event) if event["type"] == "completed" else None

    def applied(job: dict) -> dict | None:
        return training_job.apply_event(job, event, time.time())

    def registers(job: dict) -> dict | None:
        return training_job.model_document(job, event, onnx) if onnx is not None else None  # completed

    try:
        update = training_store.transition(event["job_id"], applied, registers)
    except training_store.NoSuchJob:
        return Outcome(Result.REJECTED, f"{what}: no such training job")
    if update is None:
        return Outcome(Result.DUPLICATE, f"{what} ignored: duplicate or late")
    if update.get("status") == training_job.FAILED:  # the trainer said so: counted with the watch's failures
        log.job_event(log.JOB_FAILED, "training", event["job_id"], reason=update.get("error"))
    return Outcome(Result.APPLIED, f"{what} applied")


def _checked_onnx(event: dict) -> dict:
    """Registration makes sure the ONNX prediction needs is in the bucket, at the generation the trainer wrote."""
    claimed = training_job.onnx_claimed(event)
    uri = claimed.get("uri")
    in_bucket = isinstance(uri, str) and uri.startswith("gs://") and _in_bucket(uri, claimed.get("generation"))
    return training_job.registered_onnx(event, in_bucket)


def _in_bucket(uri: str, generation: int | None) -> bool:
    blob = storage.blob_at(uri)
    pinned = blob.bucket.blob(blob.name, generation=generation)
    try:
        pinned.reload(timeout=config.cloud_deadline())
    except NotFound:
        return False
    return True
