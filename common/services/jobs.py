"""The job kernel: asking for a job, planning it, running its units, ending it, and the watch over it.

A family of jobs (one Firestore collection, one topic) supplies its kinds: what
a kind plans (a list of items, cut into units), what it does with one unit's
items (idempotent by construction: the output records the unit's pin), and how
it finishes (idempotent too). The kernel does the rest, the same way for every
kind (common.domain.jobs):

- `request`: create the job if absent, publish its plan step whenever it is
  still queued and unplanned: repeating it (a retry, the watch) is safe.
- plan step: under a lease (one planner at a time), each unit's items are
  written, the job is marked planned, then one message per unit is published.
- unit step: the unit's items are read from the plan (a unit that runs before
  the plan is recorded cannot exist: units are published after it), the work
  is done, the unit is recorded done once, and the end is tried.
- end: whoever sees every unit done runs the kind's finishing work and moves
  the job to its final state in one transaction; a crash in between is
  finished by the next unit's delivery or by the watch.
- watch: every job not ended, by age: its plan or its undone units asked for
  again, its end run, or after MAX_REPUBLISHES tries it fails with a reason.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from collections.abc import Callable

from common.cloud import dataset_job_store, job_store, topics
from common.domain import jobs as kernel
from common.domain.messages import JobStep, Message
from common.platform import config, log
from common.platform.events import PubSubMessage, decode
from common.platform.handler import Outcome, Result
from common.services import job_requests


@dataclass(frozen=True)
class Kind:
    plan: Callable[[dict], list]                 # the job's items (may record details on the job first)
    unit: Callable[[dict, list], dict]           # do one unit's items; its counts
    finish: Callable[[dict], str | None] = lambda job: None  # idempotent end work; an error fails the job
    counted: tuple[str, ...] = ()               # the counts units write, summed into the ended job
    cancel: kernel.Cancel = kernel.Cancel()  # noqa: RUF009 (frozen: one shared value is safe). When its jobs may be cancelled (default: never)


@dataclass(frozen=True)
class Family:
    """Jobs of one collection and one topic. Its kinds are given where its units run (the watch, which only
    publishes and records, loads none of their code)."""
    name: str
    source: Callable[[], object]  # its store's collection
    topic: Callable[[], str]
    unit_size: Callable[[], int]

    def jobs(self):
        return self.source()


DATASET_JOBS = Family("dataset job", dataset_job_store.jobs, config.dataset_jobs_topic, config.dataset_job_chunk_size)
FAMILIES = (DATASET_JOBS,)  # what the watch sweeps


def request(family: Family, job: dict, deadline: float | None = None,
            resumed: tuple[str, ...] = (kernel.FAILED,)) -> dict:
    """Create the job unless a job of its id exists, and ask for its plan while it is still queued. One that
    ended in a state of `resumed` (failed; a job named by what it does, cancelled too) resumes when asked for
    again: its done units stay done."""
    stored = job_store.create(family.jobs(), job, deadline)
    reopened = job_store.reopen(family.jobs(), stored["id"], resumed) if stored["status"] in resumed else None
    return job_requests.ask_recorded(reopened or stored, family.topic(), JobStep(job_id=stored["id"], step="plan"),
                                     deadline, (lambda _: True) if reopened else kernel.may_publish_start)


def cancel(family: Family, kinds: dict[str, Kind], job_id: str, by: str | None) -> dict:
    """Cancel the job where its kind allows it (Kind.cancel), in one transaction: the job as it is now. A plan
    step or unit delivered later finds it ended and does nothing, its end never runs, and the watch leaves it
    alone; a unit under way finishes its items (what they did stays). CannotCancel says why not; NoSuchJob."""
    job = job_store.cancel(family.jobs(), job_id, lambda found: kinds[found["kind"]].cancel, by)
    if job is None:
        raise kernel.NoSuchJob(f"no {family.name} {job_id!r}")
    return job


def handle(family: Family, kinds: dict[str, Kind], message: PubSubMessage) -> Outcome:
    step = decode(message, JobStep)
    job = job_store.get(family.jobs(), step.job_id)
    if job is None:
        return Outcome(Result.REJECTED, f"no {family.name} {step.job_id!r}")
    if job["status"] in kernel.FINAL:
        return Outcome(Result.DUPLICATE, f"job {job['id']} has ended")
    if step.step == "plan":
        return _plan(family, kinds, job)
    if step.step == "end":
        ended = try_end(family, kinds, job["id"])
        return Outcome(Result.APPLIED if ended else Result.DUPLICATE, f"job {job['id']} ended: {ended}")
    return _unit(family, kinds, job, step.chunk or 0, step.items)


def _plan(family: Family, kinds: dict[str, Kind], job: dict) -> Outcome:
    if job["planned"]:
        sent = _publish_units(family, job)  # a redelivered plan step repairs units whose messages were lost
        try_end(family, kinds, job["id"])   # and an end that failed after the last unit
        return Outcome(Result.DUPLICATE, f"job {job['id']} is planned already; {sent} undone units asked again")
    planning = _claim_planning(family, job["id"])
    if planning is None:
        return Outcome(Result.DUPLICATE, f"job {job['id']} is being planned by another worker")
    try:
        units = _planned_units(family, kinds, job)
    except kernel.CannotRun as unusable:
        _fail(family, job["id"], str(unusable))
        return Outcome(Result.REJECTED, f"job {job['id']} cannot run: {unusable}", {"job_id": job["id"]})
    except BaseException:
        job_store.release(planning)  # the redelivery plans at once
        raise
    for number in range(len(units)):
        topics.publish(family.topic(), JobStep(job_id=job["id"], step="chunk", chunk=number))
    try_end(family, kinds, job["id"])  # a plan of no units ends here
    return Outcome(Result.APPLIED, f"job {job['id']} planned: {sum(map(len, units))} files in {len(units)} chunks",
                   {"job_id": job["id"]})


def _planned_units(family: Family, kinds: dict[str, Kind], job: dict) -> list[list]:
    """The kind's items cut into units, each unit's items written, then the job marked planned."""
    items = kinds[job["kind"]].plan(job)
    units = [items[i:i + family.unit_size()] for i in range(0, len(items), family.unit_size())]
    job_store.write_plan(family.jobs(), job["id"], units)
    if not job_store.mark_planned(family.jobs(), job["id"], len(units), len(items)):
        return []  # planned meanwhile (a lease run out): that planner published its units
    return units


def _claim_planning(family: Family, job_id: str) -> job_store.Claim | None:
    """One planner at a time: the plan lease, taken unless the job is planned or ended, or another holds it."""
    try:
        planning = job_store.claim_job(family.jobs(), job_id, kernel.PLAN_LEASE, uuid.uuid4().hex,
                                       lambda job: not job["planned"] and job["status"] not in kernel.FINAL)
    except kernel.LeaseHeld:
        return None
    return planning if planning.taken else None


def _unit(family: Family, kinds: dict[str, Kind], job: dict, number: int, sent_items: list | None) -> Outcome:
    if job_store.is_unit_done(family.jobs(), job["id"], number):
        try_end(family, kinds, job["id"])  # the delivery that recorded it may have died before it ended the job
        return Outcome(Result.DUPLICATE, f"chunk {number} of {job['id']} is done")
    items = job_store.unit_items(family.jobs(), job["id"], number)
    items = sent_items if items is None else items  # a message sent before plans were stored carries its items
    if items is None:
        return Outcome(Result.REJECTED, f"job {job['id']} has no chunk {number}")
    counts = kinds[job["kind"]].unit(job, items)
    if not job_store.finish_unit(family.jobs(), job["id"], number, len(items), **counts):
        return Outcome(Result.DUPLICATE, f"chunk {number} of {job['id']} was done meanwhile")
    try_end(family, kinds, job["id"])
    return Outcome(Result.APPLIED, f"chunk {number} of {job['id']}: {len(items)} files",
                   {"job_id": job["id"], **counts})


def try_end(family: Family, kinds: dict[str, Kind], job_id: str) -> bool:
    """End the job when every unit is done: the kind's finishing work (idempotent), then the final state in
    one transaction (exactly one caller moves it). True when this call ended it."""
    job = job_store.get(family.jobs(), job_id)
    if job is None or job["status"] in kernel.FINAL:
        return False
    kind = kinds[job["kind"]]
    units_done, _, _ = job_store.progress(family.jobs(), job_id)
    if not kernel.all_units_done(job, units_done):
        return False
    problem = kind.finish(job)
    if problem:
        return _fail(family, job_id, problem)
    _, _, counts = job_store.progress(family.jobs(), job_id, counted=kind.counted)
    return job_store.finish(family.jobs(), job_id, kernel.COMPLETED, **counts)


def _fail(family: Family, job_id: str, reason: str) -> bool:
    """Fail the job once (False when it had ended already), in a line the failed-jobs metric counts; the watch
    reports the jobs it fails itself (watch_training.report)."""
    ended = job_store.finish(family.jobs(), job_id, kernel.FAILED, error=reason)
    if ended:
        log.job_event(log.JOB_FAILED, family.name, job_id, reason=reason)
    return ended


def _publish_units(family: Family, job: dict) -> int:
    undone = job_store.undone_units(family.jobs(), job["id"], job.get("units_total") or 0)
    for number in undone:
        topics.publish(family.topic(), JobStep(job_id=job["id"], step="chunk", chunk=number))
    return len(undone)


def watch(now: float, grace: float | None = None) -> dict[str, str]:
    """One sweep over every family's jobs that have not ended: {job id: what was done} for those acted on."""
    return {job_id: action for family in FAMILIES for job_id, action in watch_family(family, now, grace).items()}


def watch_family(family: Family, now: float, grace: float | None = None) -> dict[str, str]:
    grace = config.job_stall_seconds() if grace is None else grace
    acted = {}
    for job in job_store.active(family.jobs()):
        units_done, _, _ = job_store.progress(family.jobs(), job["id"])
        stalled = kernel.watch_action(job, units_done, job_store.last_activity(family.jobs(), job["id"], job),
                                      now, grace)
        if stalled is not None:
            acted[job["id"]] = _act(family, job, stalled, units_done)
    return acted


def _act(family: Family, job: dict, stalled: kernel.Stalled, units_done: int) -> str:
    if stalled.action == "end":  # where the kind's finishing code runs
        topics.publish(family.topic(), JobStep(job_id=job["id"], step="end"))
        return "end asked"
    if stalled.action == "fail":
        job_store.finish(family.jobs(), job["id"], kernel.FAILED, error=stalled.reason)
        return "failed"
    job_store.note_republished(family.jobs(), job, units_done)
    if stalled.action == "start":
        topics.publish(family.topic(), JobStep(job_id=job["id"], step="plan"))
        return "plan asked again"
    return f"{_publish_units(family, job)} chunks asked again"


@dataclass(frozen=True)
class Waiting:
    """Documents outside the kernel's families that wait on a message of theirs (a request, a continuation):
    how the watch finds them, tells their progress, and sends the message again."""
    source: Callable[[], object]                   # its store's collection, or query (every dataset's versions)
    statuses: tuple[str, ...]
    topic: Callable[[], str]
    message: Callable[[dict], tuple[Message, dict]]  # the document -> (message, attributes) to send again
    waits: Callable[[dict], bool]                  # still waiting on that message (not followed another way)
    activity: Callable[[dict], float]              # when it last moved
    progress: Callable[[dict], object]             # what moves when it does
    failed: Callable[[dict, str, float], dict]     # the fields that fail it, given the watch's reason
    name: Callable[[dict], str] = lambda document: document["id"]  # how the watch's report names it


def resend_stalled(waiting: Waiting, now: float) -> dict[str, str]:
    """{document name: what was done} for the documents quiet for JOB_STALL_SECONDS: their message sent again,
    or the document failed once sending it again did not help (common.domain.jobs.resend_action)."""
    acted = {}
    for found in job_store.with_status(waiting.source(), waiting.statuses):
        document = found.document
        if not waiting.waits(document):
            continue
        stalled = kernel.resend_action(document, waiting.progress(document), waiting.activity(document), now,
                                       config.job_stall_seconds())
        if stalled is not None:
            acted[waiting.name(document)] = _resend(waiting, found, stalled, now)
    return acted


def _resend(waiting: Waiting, found: job_store.Found, stalled: kernel.Stalled, now: float) -> str:
    document = found.document

    def resent_or_failed(current: dict) -> dict | None:
        if current.get("status") not in waiting.statuses or not waiting.waits(current) or \
                waiting.progress(current) != waiting.progress(document):
            return None  # it moved meanwhile
        return waiting.failed(current, stalled.reason, now) if stalled.action == "fail" else \
            job_store.republished(current, waiting.progress(current))

    if job_store.transition(found, resent_or_failed) is None:
        return "moved"
    if stalled.action == "fail":
        return "failed"
    message, attributes = waiting.message(document)
    topics.publish(waiting.topic(), message, **attributes)
    return "sent again"
