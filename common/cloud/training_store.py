"""Firestore collections of training: jobs and registered models."""
from __future__ import annotations

from common.cloud import db
from common.domain import training_job


def jobs():
    return db.client().collection("training_jobs")


def models():
    return db.client().collection("models")


def cancel_if_waiting(job_id: str, cancelled: dict) -> bool:
    """Give the job `cancelled` (its fields) when it still waits for its request (training_job.waits_for_request):
    nothing was launched, so nothing else needs to stop. False when it was launched meanwhile or has ended."""
    ref = jobs().document(job_id)

    def work(transaction) -> bool:
        found = ref.get(transaction=transaction, **db.deadline())
        if not (found.exists and training_job.waits_for_request(found.to_dict())):
            return False
        transaction.update(ref, cancelled)
        return True

    return db.in_transaction(work)
