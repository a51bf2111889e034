"""Firestore collections of training: jobs and registered models.

This store owns the job document's writes: a job's whole lifecycle (prepared, launched, continued, progressed,
watched, cancelled) changes it through the functions below, each decision taken by common.domain.training_job.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from common.cloud import db, job_store, pages
from common.domain import jobs as kernel
from common.domain import layout, training_job


class NoSuchJob(LookupError):
    """No training job of that id."""


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


def model(model_id: str, deadline_seconds: float | None = None) -> dict | None:
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


def claim(job_id: str, lease: kernel.Lease, holder: str, allows: Callable[[dict], bool]) -> job_store.Claim:
    """The job's claim for `holder` (common.cloud.job_store.claim): LeaseHeld while another holder's runs."""
    return job_store.claim_job(jobs(), job_id, lease, holder, allows)


def merge(job_id: str, fields: dict) -> None:
    """Write `fields` on the job, creating it when there is none."""
    jobs().document(job_id).set(fields, merge=True, **db.deadline())


def replace(job_id: str, document: dict) -> None:
    jobs().document(job_id).set(document, **db.deadline())


def update(job_id: str, fields: dict) -> None:
    jobs().document(job_id).update(fields, **db.deadline())


def transition(job_id: str, decide: Callable[[dict], dict | None],
               registers: Callable[[dict], dict | None] = lambda job: None) -> dict | None:
    """In one transaction: `decide(the job as it is now)` -> the fields to write, or None to leave it; with
    them, the model `registers(the job as it was)` names (None: none) is registered. The fields written, or
    None; NoSuchJob when there is no such job."""
    ref = jobs().document(job_id)

    def work(transaction) -> dict | None:
        found = ref.get(transaction=transaction, **db.deadline())
        if not found.exists:
            raise NoSuchJob(job_id)
        job = found.to_dict()
        fields = decide(job)
        if fields is None:
            return None
        transaction.update(ref, fields)
        model_document = registers(job)
        if model_document is not None:
            transaction.set(models().document(model_document["id"]), model_document)
        return fields

    return db.in_transaction(work)


def watched() -> list[dict]:
    """The jobs waiting on their trainer (training_job.WATCHED)."""
    query = job_store.status_query(jobs(), training_job.WATCHED)
    return [snapshot.to_dict() for snapshot in query.stream(**db.deadline())]
