"""The job kernel's rules, pure: one state machine for every long piece of work.

    queued -> running -> completed | failed | cancelled

A job is asked for once under a deterministic id: "create it if absent, publish
its first message whenever it is still queued" may be repeated by anyone (the
caller's retry, the watch) and starts the job exactly once. The work is cut
into units whose input the plan pins; a unit is done exactly when its output
records that pin, so a unit run twice changes nothing. The end is a step of
its own that whoever sees every unit done may run, as often as it takes: the
kind's finishing work is idempotent, and exactly one transaction moves the job
to its final state. The watch looks at every job that has not ended, by age.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast


QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "queued", "running", "completed", "failed", "cancelled"
STATES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
FINAL = (COMPLETED, FAILED, CANCELLED)
ACTIVE = (QUEUED, RUNNING)
# How many times the watch sends a stalled job's messages again before it fails the job: a unit that fails on
# every delivery (it is in the dead letters) must not be retried for ever.
MAX_REPUBLISHES = 3
# Status words that older deployments stored before imports and versions used the kernel's: each one's kernel
# word. The old word is the job's phase (the kind's finer step), which is where it is stored now.
LEGACY_STATUSES: dict[str | None, str] = {"staging": RUNNING, "staged": RUNNING, "freezing": RUNNING,
                                          "ready": COMPLETED}


class CannotRun(ValueError):
    """A job cannot be planned, for a reason said to the person who asked: the job fails with it."""


class CannotCancel(ValueError):
    """A job that cannot be cancelled now (it ended, or its kind cannot stop safely where it is): the reason
    says why and what to do instead (the API's 409)."""


class NoSuchJob(LookupError):
    """No job of that id (of that dataset): the API's 404."""


@dataclass(frozen=True)
class Cancel:
    """When a kind's jobs may be cancelled: in `states` (some of ACTIVE); in another state not ended, `refusal`
    says why not and what to do instead. The default: never."""
    states: tuple[str, ...] = ()
    refusal: str = "a job of this kind cannot be cancelled: it ends by itself"


def cancel_refusal(status: str, rule: Cancel) -> str | None:
    """Why a job in `status` cannot be cancelled; None when it can, or when it is cancelled already (a retried
    cancel gets the cancelled job, no error)."""
    if status == CANCELLED:
        return None
    if status not in ACTIVE:
        return f"the job has ended ({status}): nothing to cancel"
    return None if status in rule.states else rule.refusal


def may_cancel(status: str, rule: Cancel) -> bool:
    """Whether a job in `status` can be cancelled now (what a view shows as `cancellable`)."""
    return status in ACTIVE and status in rule.states


def cancelled(by: str | None, now: float) -> dict[str, Any]:
    """The fields that cancel a job."""
    return {"status": CANCELLED, "finished_at": now, "cancelled_by": by}


# ---- one claim: a lease on a document, one holder at a time ---------------------------------------------------

@dataclass(frozen=True)
class Lease:
    """A claim on a document: one holder works on it at a time, for `seconds` after it took the lease or last
    renewed it (its heartbeat); a lease that ran out may be taken over. `at` and `holder` name the document's
    fields (a dotted path for a nested one) that say since when and who: each kind keeps its stored names, so
    documents an older deployment wrote read the same (one without a holder field is held by nobody in
    particular, by its time alone)."""
    seconds: float
    at: str
    holder: str | None = None


# One planner at a time per job; one that died holding the plan lease is replaced after PLAN_LEASE_SECONDS.
# (An older deployment's `planning_until` is not read: a second planner is harmless, the plan is marked once.)
PLAN_LEASE_SECONDS = 300.0
PLAN_LEASE = Lease(PLAN_LEASE_SECONDS, at="planning_at", holder="planning_by")


class LeaseHeld(RuntimeError):
    """Another holder's lease on the document runs: try again later (it may die, and its lease run out)."""

    def __init__(self, document_id: str, holder: object):
        super().__init__(f"{document_id} is claimed by {holder or 'another worker'}")
        self.document_id, self.holder = document_id, holder


def stored(document: dict[str, Any], path: str) -> Any:
    """A field of a document by its dotted path; None when absent."""
    value: Any = document
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def lease_runs(document: dict[str, Any], lease: Lease, now: float) -> bool:
    """Whether a lease on the document still runs at `now` (whoever holds it)."""
    return now - (stored(document, lease.at) or 0.0) < lease.seconds


def held_by_other(document: dict[str, Any], lease: Lease, holder: str, now: float) -> bool:
    """Whether someone other than `holder` holds a lease that still runs at `now` (the holder's own, seen again
    when its claim is retried, is not another's)."""
    mine = lease.holder is not None and stored(document, lease.holder) == holder
    return lease_runs(document, lease, now) and not mine


def holds(document: dict[str, Any], lease: Lease, holder: str) -> bool:
    """Whether `holder` still holds the lease (not released, not taken over), run out or not: it may renew it.
    A lease with no holder field is anyone's to renew while it is not released."""
    taken = bool(stored(document, lease.at))
    return taken and (lease.holder is None or stored(document, lease.holder) == holder)


def lease_taken(lease: Lease, holder: str, now: float) -> dict[str, Any]:
    """The fields that give the lease to `holder` at `now`."""
    return {lease.at: now, **({lease.holder: holder} if lease.holder else {})}


def lease_renewed(lease: Lease, now: float) -> dict[str, Any]:
    """The fields of a heartbeat: the lease runs `lease.seconds` from `now`."""
    return {lease.at: now}


def lease_released(lease: Lease) -> dict[str, Any]:
    """The fields that let the lease go: the next claim takes it at once."""
    return {lease.at: 0.0}


def job_id(kind: str, *request: object) -> str:
    """The same request always names the same job: `<kind>-<hash of the request>`."""
    digest = hashlib.sha256("\0".join(str(part) for part in (kind, *request)).encode()).hexdigest()[:20]
    return f"{kind}-{digest}"


def new_job(job_id_: str, kind: str, now: float, requested_by: str | None, **fields: Any) -> dict[str, Any]:
    return {"id": job_id_, "kind": kind, "status": QUEUED, "created_at": now, "started_at": None,
            "finished_at": None, "requested_by": requested_by, "planned": False, "units_total": None,
            "republishes": 0, "stalled_at_progress": None, "republished_at": None, "error": None, **fields}


def state_of(document: dict[str, Any]) -> tuple[str, str | None]:
    """(status, phase) of a stored job in the kernel's words, whichever deployment wrote it: a legacy status
    word (LEGACY_STATUSES) becomes its kernel word, and the old word the phase."""
    status = cast(str, document.get("status"))  # a stored job always has one
    if status in LEGACY_STATUSES:
        return LEGACY_STATUSES[status], status
    return status, document.get("phase")


def may_publish_start(job: dict[str, Any]) -> bool:
    """Whether asking for the job's first step (again) is due: it was never planned and has not ended."""
    return job["status"] == QUEUED and not job.get("planned")


def all_units_done(job: dict[str, Any], units_done: int) -> bool:
    """Every unit the plan made is done (a job not planned yet has none done, whatever a unit says)."""
    return bool(job.get("planned")) and job.get("units_total") is not None and units_done >= job["units_total"]


@dataclass(frozen=True)
class Stalled:
    """What the watch does about a job that has not ended: `action` is "start" (publish its first step again),
    "units" (publish its undone units again), "end" (finish it) or "fail" (with `reason`)."""
    action: str
    reason: str = ""


def watch_action(job: dict[str, Any], units_done: int, last_activity: float, now: float,
                 grace: float) -> Stalled | None:
    """The watch's rule for a job not ended: nothing while it moved within `grace` seconds; else finish it when
    every unit is done, ask again for what is missing, or fail it once asking again did not help."""
    if job["status"] in FINAL:
        return None
    if all_units_done(job, units_done):
        return Stalled("end")
    return resend_action(job, units_done, last_activity, now, grace, "units" if job.get("planned") else "start")


def resend_action(job: dict[str, Any], progress: object, last_activity: float, now: float, grace: float,
                  action: str = "start") -> Stalled | None:
    """The watch's rule for a job that waits on a message (its next step, or its units): nothing while it moved
    within `grace` seconds; else send the message again (`action`), or fail the job once sending it again
    MAX_REPUBLISHES times in a row brought no progress (`progress`: what moves when the job does)."""
    quiet_since = max(last_activity, job.get("republished_at") or 0.0, job.get("created_at") or 0.0)
    if now - quiet_since < grace:
        return None
    if republishes_without_progress(job, progress) >= MAX_REPUBLISHES:
        return Stalled("fail", f"the job made no progress after its messages were sent {MAX_REPUBLISHES} more "
                               f"times (it is at {progress}): a step fails on every delivery (see the dead-letter "
                               "topic and the function's log); ask for the job again once the cause is fixed")
    return Stalled(action)


def republishes_without_progress(job: dict[str, Any], progress: object) -> int:
    """How many times in a row the watch sent the job's messages again with no progress since (`progress`: the
    units done, or the state, as the watch last saw it)."""
    return job.get("republishes", 0) if job.get("stalled_at_progress") == progress else 0
