"""The job kernel's documents in Firestore, for any collection of jobs:

    <jobs>/{job}                 the job (common.domain.jobs): status, plan size, who asked, error
    <jobs>/{job}/plan/{n}        unit n's pinned input, written before any unit is asked for
    <jobs>/{job}/chunks/{n}      unit n done: written once, by the unit that did the work, with its counts

The job's own document changes a few times in its life; what moves every
second lives in the units' documents, one writer each.

One claim for any document (a job being planned, an export being written, a
training being prepared): `claim` takes a lease (common.domain.jobs.Lease) in
one transaction, `Heartbeat` renews it while a long call works, `release` lets
it go.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from collections.abc import Callable, Iterable
from typing import Any

from google.api_core.exceptions import AlreadyExists
from google.cloud.firestore import DocumentReference
from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db
from common.domain import jobs as kernel
from common.platform import log

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
                  "cancelled_by": None, "republishes": 0, "stalled_at_progress": None,
                  **kernel.lease_released(kernel.PLAN_LEASE), "reopened_at": time.time()}
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


# ---- documents found by their status, changed one by one ----------------------------------------------------

@dataclass(frozen=True)
class Found:
    """A document a query found: what it held then, and where it is (for `transition`)."""
    document: dict
    ref: Any


def status_query(source, statuses: Iterable[str]):
    """The documents of `source` (a store's collection or collection-group query) in one of `statuses`."""
    return source.where(filter=FieldFilter("status", "in", list(statuses)))


def with_status(source, statuses: Iterable[str]) -> list[Found]:
    return [Found(snapshot.to_dict(), snapshot.reference)
            for snapshot in status_query(source, statuses).stream(**db.deadline())]


def transition(found: Found, decide: Callable[[dict], dict | None]) -> dict | None:
    """In one transaction: `decide(the document as it is now)` -> the fields to write, or None to leave it. The
    fields written; None when nothing was, or the document is gone."""
    def work(transaction) -> dict | None:
        snapshot = found.ref.get(transaction=transaction, **db.deadline())
        fields = decide(snapshot.to_dict()) if snapshot.exists else None
        if fields is not None:
            transaction.update(found.ref, fields)
        return fields
    return db.in_transaction(work)


# ---- one claim: a lease on any document ---------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """One holder's claim on a document: the document as it was found (None when there is none), and whether
    the lease is the holder's now (what renew, release and Heartbeat need to act for it)."""
    ref: DocumentReference
    lease: kernel.Lease
    holder: str
    document: dict | None
    taken: bool

    @property
    def found(self) -> dict:
        """The document a taken claim found, for a claim whose `allows` refuses a document that does not exist."""
        if self.document is None:
            raise LookupError(f"{self.ref.path}: claimed where there was no document")
        return self.document


def claim_job(jobs, job_id: str, lease: kernel.Lease, holder: str, allows: Callable[[dict], bool],
              taking: Callable[[dict], dict] = lambda found: {}) -> Claim:
    """`claim` on the job `job_id` of the collection `jobs`."""
    return claim(jobs.document(job_id), lease, holder, allows, taking)


def claim(ref, lease: kernel.Lease, holder: str, allows: Callable[[dict], bool],
          taking: Callable[[dict], dict] = lambda found: {}) -> Claim:
    """In one transaction: take `lease` on the document for `holder` when `allows(document)` ({} for a document
    that does not exist; one is then created with the lease's top-level fields), writing `taking(document)`
    with it. LeaseHeld while another holder's lease runs; not taken when `allows` refuses. `holder` names one
    attempt (a delivery), so that two deliveries of one message are two holders."""
    def work(transaction) -> Claim:
        found = ref.get(transaction=transaction, **db.deadline())
        document = found.to_dict() if found.exists else None
        if not allows(document or {}):
            return Claim(ref, lease, holder, document, False)
        now = time.time()
        if kernel.held_by_other(document or {}, lease, holder, now):
            raise kernel.LeaseHeld(ref.id, kernel.stored(document or {}, lease.holder) if lease.holder else None)
        fields = {**taking(document or {}), **kernel.lease_taken(lease, holder, now)}
        if document is None:
            transaction.set(ref, fields)
        else:
            transaction.update(ref, fields)
        return Claim(ref, lease, holder, document, True)
    return db.in_transaction(work)


def _while_held(held: Claim, fields: dict) -> bool:
    """Write `fields` in one transaction while the claim's holder holds the lease: False when it does not."""
    def work(transaction) -> bool:
        found = held.ref.get(transaction=transaction, **db.deadline())
        if not found.exists or not kernel.holds(found.to_dict() or {}, held.lease, held.holder):
            return False
        transaction.update(held.ref, fields)
        return True
    return db.in_transaction(work)


def renew(held: Claim) -> bool:
    """The holder's heartbeat: its lease runs again from now; False when it was taken over or released."""
    return _while_held(held, kernel.lease_renewed(held.lease, time.time()))


def release(held: Claim, **fields) -> bool:
    """Let the holder's lease go (with `fields`), so that the next claim takes it at once; False (nothing
    written) when it is not the holder's any more."""
    return _while_held(held, {**fields, **kernel.lease_released(held.lease)})


class Heartbeat:
    """`with Heartbeat(claim):` keeps the holder's lease alive while a long call works, whatever it does (a beat
    every quarter of the lease, from a thread); stopped on the way out, before any release. A lease taken over
    meanwhile is not renewed: its beats stop."""

    def __init__(self, held: Claim):
        self.held, self.stopped = held, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def _beat(self) -> None:
        while not self.stopped.wait(self.held.lease.seconds / 4):
            try:
                if not renew(self.held):
                    log.log("WARNING", "lease lost: no more heartbeats", document=self.held.ref.path,
                            holder=self.held.holder)
                    return
            except Exception as exc:
                log.log("WARNING", "heartbeat missed", document=self.held.ref.path, error=repr(exc))

    def __exit__(self, *failure) -> None:
        self.stopped.set()
        self.thread.join()
