"""The progress function's work: apply one trainer event to its job document.

The job update and, on `completed`, the model registration are one transaction,
so a duplicate or late event (by sequence) changes nothing and a completed job
always has its model.
"""
from __future__ import annotations

import json
import time

from google.cloud import firestore

from common.cloud import dataset_index, db, training_store
from common.domain import training_job


class BadEvent(ValueError):
    """A progress message that can never be applied (acknowledged, not retried)."""


def parse(data: bytes) -> dict:
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise BadEvent(f"progress event is not JSON: {exc}") from exc
    if not isinstance(event, dict) or not isinstance(event.get("job_id"), str) \
            or not isinstance(event.get("sequence"), int) or event.get("type") not in training_job.EVENT_TYPES:
        raise BadEvent("progress event needs job_id, an integer sequence and a type "
                       f"({', '.join(training_job.EVENT_TYPES)})")
    return event


def handle(data: bytes) -> str:
    event = parse(data)
    ref = training_store.jobs().document(event["job_id"])

    @firestore.transactional
    def run(transaction) -> str:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            raise BadEvent(f"no training job {event['job_id']}")
        job = snapshot.to_dict()
        update = training_job.apply_event(job, event, time.time())
        if update is None:
            return f"{event['type']} #{event['sequence']} of {job['id']} ignored: duplicate or late"
        transaction.update(ref, update)
        if event["type"] == "completed":
            model = training_job.model_document(job, event)
            transaction.set(training_store.models().document(model["id"]), model)
        return f"{event['type']} #{event['sequence']} applied to {job['id']}"

    return run(db.client().transaction())
