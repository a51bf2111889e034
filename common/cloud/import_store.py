"""Imports in Firestore: imports/{import_id}, and imports/{import_id}/tasks/{index} written by each task.

The import's own document changes a few times in its life (claimed, launched,
planned, each task's end); the counts that move every second live in the task
documents, one writer each.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

from common.cloud import db, job_store, pages
from common.domain import imports


def collection():
    return db.client().collection("imports")


def ref(import_id: str):
    return collection().document(import_id)


def tasks_of(import_id: str):
    return ref(import_id).collection("tasks")


def create(document: dict, seconds: float | None = None) -> bool:
    """Store a new import; False when one with this id exists (a redelivered drop)."""
    try:
        ref(document["id"]).create(document, **db.deadline(seconds))
        return True
    except AlreadyExists:
        return False


def read(import_id: str, seconds: float | None = None) -> dict | None:
    snapshot = ref(import_id).get(**db.deadline(seconds))
    return snapshot.to_dict() if snapshot.exists else None


def record(document: dict, seconds: float | None = None) -> dict:
    """The import as stored: `document` when recorded now, else the one of its id recorded before (a retried
    request)."""
    return job_store.create(collection(), document, seconds)


def newest_first(datasets: Sequence[str] | None = None, statuses: Sequence[str] = ()) -> pages.Query:
    return pages.newest_first(collection(), datasets, statuses)


def read_tasks(import_id: str, seconds: float | None = None) -> list[dict]:
    return [snapshot.to_dict() for snapshot in tasks_of(import_id).stream(**db.deadline(seconds))]


def view(document: dict, seconds: float | None = None) -> dict:
    return imports.view(document, read_tasks(document["id"], seconds))


def status_of(import_id: str) -> str | None:
    found = db.read_fields(ref(import_id), ["status"])
    return found.get("status") if found else None


def update(import_id: str, fields: dict) -> None:
    ref(import_id).update(fields, **db.deadline())


def transition(import_id: str, change) -> dict | None:
    """Apply change(document) -> fields (or None: leave it) in a transaction; the fields written, or None."""
    def work(transaction: firestore.Transaction) -> dict | None:
        document = db.read_all([ref(import_id)], transaction)[ref(import_id).path]
        fields = change(document) if document else None
        if fields:
            transaction.update(ref(import_id), fields)
        return fields
    return db.in_transaction(work)


def with_status(statuses, seconds: float | None = None) -> list[dict]:
    """The imports in one of `statuses`."""
    query = job_store.status_query(collection(), statuses)
    return [snapshot.to_dict() for snapshot in query.stream(**db.deadline(seconds))]


def delete_task(import_id: str, index: int) -> None:
    tasks_of(import_id).document(str(index)).delete(**db.deadline())


def write_task(import_id: str, task: dict) -> None:
    tasks_of(import_id).document(str(task["index"])).set({**task, "updated_at": time.time()}, **db.deadline())


def finish_task(import_id: str, index: int, failed_with: str | None = None) -> dict | None:
    """Record the end of a task; the import's fields changed (status COMPLETED when it was the last)."""
    def change(document: dict) -> dict:
        fields = imports.after_task(document, index, failed_with)
        if fields.get("status") in imports.FINAL:
            fields["finished_at"] = time.time()
        return fields
    return transition(import_id, change)


def cancel(import_id: str) -> dict | None:
    def change(document: dict) -> dict | None:
        if document["status"] in imports.FINAL:
            return None
        return {"status": imports.CANCELLED, "finished_at": time.time()}
    return transition(import_id, change)
