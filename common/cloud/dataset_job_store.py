"""Dataset jobs in Firestore: `dataset_jobs/{job}` and one document per chunk
under it (`chunks/{n}`), written once by the chunk that did the work."""
from __future__ import annotations

import time

from google.api_core.exceptions import AlreadyExists
from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db
from common.domain import dataset_jobs


def jobs():
    return db.client().collection("dataset_jobs")


def create(job: dict, deadline: float | None = None) -> bool:
    """Record a new job; False when a job of that id exists."""
    try:
        jobs().document(job["id"]).create(job, **db.deadline(deadline))
    except AlreadyExists:
        return False
    return True


def get(job_id: str, deadline: float | None = None) -> dict | None:
    snapshot = jobs().document(job_id).get(**db.deadline(deadline))
    return snapshot.to_dict() if snapshot.exists else None


def plan(job_id: str, chunks_total: int, files_total: int) -> None:
    jobs().document(job_id).update({"planned": True, "status": dataset_jobs.RUNNING, "chunks_total": chunks_total,
                                    "files_total": files_total, "started_at": time.time()}, **db.deadline())


def record(job_id: str, **fields) -> None:
    """Write what planning learned (e.g. an auto-labelling job's class map) on the job."""
    jobs().document(job_id).update(fields, **db.deadline())


def finish_chunk(job_id: str, number: int, files: int, **counts: int) -> bool:
    """Record chunk `number` as done; False when it was already (a redelivery)."""
    try:
        jobs().document(job_id).collection("chunks").document(str(number)).create(
            {"files": files, "finished_at": time.time(), **counts}, **db.deadline())
    except AlreadyExists:
        return False
    return True


def is_chunk_done(job_id: str, number: int) -> bool:
    return jobs().document(job_id).collection("chunks").document(str(number)).get(**db.deadline()).exists


def progress(job_id: str, deadline: float | None = None,
             counted: tuple[str, ...] = ()) -> tuple[int, int, dict]:
    """(chunks done, files done, the `counted` fields summed) from the chunks' documents, by aggregation.
    Name only fields every chunk of the job writes: an aggregation with several sums counts only the
    documents that hold all of them."""
    chunks = jobs().document(job_id).collection("chunks")
    aggregation = chunks.count(alias="chunks").sum("files", alias="files")
    for name in counted:
        aggregation = aggregation.sum(name, alias=name)
    results = {result.alias: int(result.value or 0) for result in aggregation.get(**db.deadline(deadline))[0]}
    return results["chunks"], results["files"], {name: results[name] for name in counted}


def failures(job_id: str, limit: int = 100, deadline: float | None = None) -> list[dict]:
    """The items chunks recorded as failed ({"image", "reason"}), at most `limit`."""
    query = jobs().document(job_id).collection("chunks").where(filter=FieldFilter("failures", ">", 0))
    found = [failure for snapshot in query.stream(**db.deadline(deadline))
             for failure in snapshot.get("failed") or []]
    return found[:limit]


def claim_ending(job_id: str) -> bool:
    """True for exactly one caller: the one that ends the job."""
    ref = jobs().document(job_id)

    def work(transaction) -> bool:
        job = ref.get(transaction=transaction, **db.deadline()).to_dict()
        if job["status"] in dataset_jobs.ENDED or job.get("ending"):
            return False
        transaction.update(ref, {"ending": True})
        return True

    return db.in_transaction(work)


def end(job_id: str, status: str, **fields) -> None:
    jobs().document(job_id).update({"status": status, "finished_at": time.time(), **fields}, **db.deadline())


def pending_of(dataset: str, deadline: float | None = None, kind: str | None = None) -> int:
    """How many jobs of the dataset have not ended."""
    query = jobs().where(filter=FieldFilter("dataset", "==", dataset)).where(
        filter=FieldFilter("status", "in", [dataset_jobs.QUEUED, dataset_jobs.RUNNING]))
    if kind:
        query = query.where(filter=FieldFilter("kind", "==", kind))
    return int(query.count(alias="n").get(**db.deadline(deadline))[0][0].value)


def newest_of(dataset: str):
    """The query of the dataset's jobs (for the API's newest-first list)."""
    return jobs().where(filter=FieldFilter("dataset", "==", dataset))

