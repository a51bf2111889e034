"""Firestore collections of training: jobs and registered models."""
from __future__ import annotations

from collections.abc import Sequence

from common.cloud import db, job_store, pages
from common.domain import layout, training_job


def jobs():
    return db.client().collection("training_jobs")


def models():
    return db.client().collection("models")


def record_job(job: dict, deadline_seconds: float | None = None) -> dict:
    """The job as stored: `job` when recorded now, else the one of its id recorded before (a retried request)."""
    return job_store.create(jobs(), job, deadline_seconds)


def jobs_newest_first(datasets: Sequence[str] | None = None, statuses: Sequence[str] = ()) -> pages.Query:
    return pages.newest_first(jobs(), datasets, statuses)


def models_newest_first(datasets: Sequence[str] | None = None) -> pages.Query:
    return pages.newest_first(models(), datasets)


def request_cancel(job_id: str, deadline_seconds: float | None = None) -> None:
    """Ask the job's trainer to stop (it reads cancel_requested after each epoch)."""
    jobs().document(job_id).update({"cancel_requested": True}, **db.deadline(deadline_seconds))


def read(job_id: str, deadline_seconds: float | None = None) -> dict | None:
    snapshot = jobs().document(job_id).get(**db.deadline(deadline_seconds))
    return snapshot.to_dict() if snapshot.exists else None


def model(model_id: str, deadline_seconds: float) -> dict | None:
    """The registered model's document; None when there is none, or `model_id` cannot name one."""
    if not layout.is_document_id(model_id):
        return None
    snapshot = models().document(model_id).get(**db.deadline(deadline_seconds))
    document = snapshot.to_dict() if snapshot.exists else None
    return document if document and document.get("id") else None


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
