"""The job kernel's documents in Firestore, for any collection of jobs:

    <jobs>/{job}                 the job (common.domain.jobs): status, plan size, who asked, error
    <jobs>/{job}/plan/{n}        unit n's pinned input, written before any unit is asked for
    <jobs>/{job}/chunks/{n}      unit n done: written once, by the unit that did the work, with its counts

The job's own document changes a few times in its life; what moves every
second lives in the units' documents, one writer each.
"""
from __future__ import annotations

import time
from typing import Callable

from google.api_core.exceptions import AlreadyExists
from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db
from common.domain import jobs as kernel

PLAN_WRITES = 400  # plan documents per batch (under Firestore's 500 writes of one commit)


def create(jobs, job: dict, deadline: float | None = None) -> dict:
    """The job as stored: `job` when it was created now, else the one of that id made before."""
    ref = jobs.document(job["id"])
    try:
        ref.create(job, **db.deadline(deadline))
        return job
    except AlreadyExists:
        return ref.get(**db.deadline(deadline)).to_dict()


def get(jobs, job_id: str, deadline: float | None = None) -> dict | None:
    snapshot = jobs.document(job_id).get(**db.deadline(deadline))
    return snapshot.to_dict() if snapshot.exists else None


def update(jobs, job_id: str, **fields) -> None:
    jobs.document(job_id).update(fields, **db.deadline())


def write_plan(jobs, job_id: str, units: list[list]) -> None:
    """Each unit's input, before the job says it is planned (a plan written twice is written the same)."""
    plan = jobs.document(job_id).collection("plan")
    for start in range(0, len(units), PLAN_WRITES):
        batch = db.client().batch()
        for number in range(start, min(start + PLAN_WRITES, len(units))):
            batch.set(plan.document(str(number)), {"items": units[number]})
        batch.commit(**db.deadline())


def mark_planned(jobs, job_id: str, units_total: int, items_total: int) -> bool:
    """Record the plan once: False when the job was planned (or ended) meanwhile."""
    ref = jobs.document(job_id)

    def work(transaction) -> bool:
        job = ref.get(transaction=transaction, **db.deadline()).to_dict()
        if job["planned"] or job["status"] in kernel.FINAL:
            return False
        transaction.update(ref, {"planned": True, "status": kernel.RUNNING, "units_total": units_total,
                                 "files_total": items_total, "started_at": time.time()})
        return True

    return db.in_transaction(work)


def unit_items(jobs, job_id: str, number: int) -> list | None:
    snapshot = jobs.document(job_id).collection("plan").document(str(number)).get(**db.deadline())
    return snapshot.get("items") if snapshot.exists else None


def finish_unit(jobs, job_id: str, number: int, files: int, **counts) -> bool:
    """Record unit `number` as done; False when it was already (a redelivery)."""
    try:
        jobs.document(job_id).collection("chunks").document(str(number)).create(
            {"files": files, "finished_at": time.time(), **counts}, **db.deadline())
    except AlreadyExists:
        return False
    return True


def is_unit_done(jobs, job_id: str, number: int) -> bool:
    return jobs.document(job_id).collection("chunks").document(str(number)).get(**db.deadline()).exists


def undone_units(jobs, job_id: str, units_total: int) -> list[int]:
    done = {int(snapshot.id) for snapshot in jobs.document(job_id).collection("chunks").select([]).stream(
        **db.deadline())}
    return [number for number in range(units_total) if number not in done]


def progress(jobs, job_id: str, deadline: float | None = None,
             counted: tuple[str, ...] = ()) -> tuple[int, int, dict]:
    """(units done, files done, the `counted` fields summed) from the units' documents, by aggregation.
    Name only fields every unit of the job writes: an aggregation with several sums counts only the
    documents that hold all of them."""
    units = jobs.document(job_id).collection("chunks")
    aggregation = units.count(alias="chunks").sum("files", alias="files")
    for name in counted:
        aggregation = aggregation.sum(name, alias=name)
    results = {result.alias: int(result.value or 0) for result in aggregation.get(**db.deadline(deadline))[0]}
    return results["chunks"], results["files"], {name: results[name] for name in counted}


def last_activity(jobs, job_id: str, job: dict) -> float:
    """When the job last moved: its start, or the newest unit's end."""
    newest = list(jobs.document(job_id).collection("chunks").order_by("finished_at", direction="DESCENDING")
                  .limit(1).select(["finished_at"]).stream(**db.deadline()))
    return max([job.get("started_at") or 0.0, job.get("created_at") or 0.0,
                *(snapshot.get("finished_at") for snapshot in newest)])


def finish(jobs, job_id: str, status: str, **fields) -> bool:
    """Move the job to a final state once: False when it had ended already (another ender was first)."""
    ref = jobs.document(job_id)

    def work(transaction) -> bool:
        job = ref.get(transaction=transaction, **db.deadline()).to_dict()
        if job["status"] in kernel.FINAL:
            return False
        transaction.update(ref, {"status": status, "finished_at": time.time(), **fields})
        return True

    return db.in_transaction(work)


def cancel(jobs, job_id: str, rule_of: Callable[[dict], kernel.Cancel], by: str | None) -> dict | None:
    """Move the job to cancelled in one transaction where its rule (`rule_of(job)`) allows it: the job as it is
    now (a cancelled one as it was), None when there is none; CannotCancel with the reason otherwise. Any
    collection whose documents hold a kernel `status` (dataset jobs, exports)."""
    ref = jobs.document(job_id)

    def work(transaction) -> dict | None:
        found = ref.get(transaction=transaction, **db.deadline())
        job = found.to_dict() if found.exists else None
        if job is None or job["status"] == kernel.CANCELLED:
            return job
        refusal = kernel.cancel_refusal(job["status"], rule_of(job))
        if refusal:
            raise kernel.CannotCancel(refusal)
        fields = kernel.cancelled(by, time.time())
        transaction.update(ref, fields)
        return {**job, **fields}

    return db.in_transaction(work)


def reopen(jobs, job_id: str, ended: tuple[str, ...] = (kernel.FAILED,)) -> dict | None:
    """A job that ended in a state of `ended` (failed) back to where it was (running when planned, else queued):
    the job, or None when it had not ended so (any more)."""
    ref = jobs.document(job_id)

    def work(transaction) -> dict | None:
        job = ref.get(transaction=transaction, **db.deadline()).to_dict()
        if job["status"] not in ended:
            return None
        fields = {"status": kernel.RUNNING if job["planned"] else kernel.QUEUED, "error": None, "finished_at": None,
                  "cancelled_by": None, "republishes": 0, "stalled_at_progress": None, "planning_until": None,
                  "reopened_at": time.time()}
        transaction.update(ref, fields)
        return {**job, **fields}

    return db.in_transaction(work)


def note_republished(jobs, job: dict, progress: object) -> None:
    """The watch sent the job's messages again, the job being at `progress` (units done, or its state)."""
    jobs.document(job["id"]).update(republished(job, progress), **db.deadline())


def republished(job: dict, progress: object) -> dict:
    """The fields that record one more sending again (common.domain.jobs.resend_action)."""
    return {"republishes": kernel.republishes_without_progress(job, progress) + 1, "stalled_at_progress": progress,
            "republished_at": time.time()}


def active(jobs) -> list[dict]:
    """The jobs that have not ended."""
    query = jobs.where(filter=FieldFilter("status", "in", list(kernel.ACTIVE)))
    return [snapshot.to_dict() for snapshot in query.stream(**db.deadline())]
