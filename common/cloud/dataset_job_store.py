"""Dataset jobs in Firestore: `dataset_jobs/{job}`, laid out as every kernel job (common.cloud.job_store)."""
from __future__ import annotations

from collections.abc import Sequence

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db, job_store, pages
from common.domain import dataset_jobs


def jobs():
    return db.client().collection("dataset_jobs")


def get(job_id: str, deadline: float | None = None) -> dict | None:
    return job_store.get(jobs(), job_id, deadline)


def record(job_id: str, **fields) -> None:
    """Write what planning learned (e.g. an auto-labelling job's class map) on the job."""
    job_store.update(jobs(), job_id, **fields)


def progress(job_id: str, deadline: float | None = None,
             counted: tuple[str, ...] = ()) -> tuple[int, int, dict]:
    """(chunks done, files done, the `counted` fields summed): common.cloud.job_store.progress."""
    return job_store.progress(jobs(), job_id, deadline, counted)


def failures(job_id: str, limit: int = 100, deadline: float | None = None) -> list[dict]:
    """The items chunks recorded as failed ({"image", "reason"}), at most `limit`."""
    query = jobs().document(job_id).collection("chunks").where(filter=FieldFilter("failures", ">", 0))
    found = [failure for snapshot in query.stream(**db.deadline(deadline))
             for failure in snapshot.get("failed") or []]
    return found[:limit]


def pending_of(dataset: str, deadline: float | None = None, kind: str | None = None) -> int:
    """How many jobs of the dataset have not ended."""
    query = jobs().where(filter=FieldFilter("dataset", "==", dataset)).where(
        filter=FieldFilter("status", "in", [dataset_jobs.QUEUED, dataset_jobs.RUNNING]))
    if kind:
        query = query.where(filter=FieldFilter("kind", "==", kind))
    return int(query.count(alias="n").get(**db.deadline(deadline))[0][0].value)


def newest_first(datasets: Sequence[str] | None = None, statuses: Sequence[str] = (),
                 kind: str | None = None) -> pages.Query:
    """Jobs of these datasets (None: of every one), with one of these statuses (none: any), of `kind` (None: of
    any), newest first."""
    return pages.newest_first(jobs(), datasets, statuses, **({"kind": kind} if kind else {}))
