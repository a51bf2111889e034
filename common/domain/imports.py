"""Imports: an archive (a URL or a gs:// object) unpacked into datasets/<dataset>/ by a job of parallel tasks.

Pure rules: the import's document and its states, how the members of a zip are
shared out among tasks (contiguous runs of about equal bytes, so that each
task reads one stretch of the archive front to back), and the view a person
gets, its counts summed from one document per task (no document is written by
every task at every step).

Its status is the job kernel's (common.domain.jobs); while running, its phase
says which step it is at:

    queued ──▶ running ──▶ completed | failed | cancelled
               phase: staging ──▶ staged ──▶ unpacking
                      └──────────────────────────┘
A source that cannot be read by ranges (a zip from a server without Range
support) is first copied once into the bucket by one task (staging; staged
once copied, until the unpack tasks start); a tar stream is unpacked by one
task as it arrives. Documents written before imports used the kernel's words
hold `staging` or `staged` as their status: `state` reads them as running.
"""
from __future__ import annotations

import hashlib
from typing import Any, TypeVar, cast
from collections.abc import Sequence

from common.domain import jobs
from common.domain.jobs import CANCELLED as CANCELLED  # read as imports.CANCELLED
from common.domain.jobs import COMPLETED, FAILED, FINAL, QUEUED, RUNNING

STATUSES = jobs.STATES
STAGING, STAGED, UNPACKING = "staging", "staged", "unpacking"  # the phases of a running import
PHASES = (STAGING, STAGED, UNPACKING)
STORED_ACTIVE = (QUEUED, RUNNING, STAGING, STAGED)  # statuses stored on an import not ended (old ones included)
FORMATS = ("yolo", "coco")
STAGE, UNPACK = "stage", "unpack"  # the two phases a job execution runs
MAX_ISSUES_KEPT = 200  # an archive of a million bad members names the first ones and counts the rest
# One upload's fixed cost, in bytes of transfer it is worth. A task keeps 8 uploads in flight, so at
# Cloud Storage's tens of milliseconds per object write it finishes ~160 objects/s, while its bandwidth
# moves tens of MB/s: an object costs about what half a megabyte does. (Against fake-gcs-server here a
# label costs 0.58 of a 100 KB image: bench.imports.)
MEMBER_COST_BYTES = 512 * 1024
TASK_FIELDS = ("members_total", "bytes_total", "members_done", "bytes_done", "skipped")

M = TypeVar("M")


class InvalidImportRequest(ValueError):
    pass


MAX_TASKS = 64


ARCHIVE_EXTENSIONS = (".zip", ".tar", ".tar.gz", ".tgz")


def check_bucket_source(bucket: str, name: str, data_bucket: str, dataset: str,
                        allowed_buckets: frozenset[str] = frozenset()) -> None:
    """A gs:// source is read with the importer's own account, so it is read only where an operator allowed
    (the data bucket and `allowed_buckets`), and in the data bucket only what was put there for this dataset:
    imports/<dataset>.<ext> with <ext> exactly an archive extension, or imports/<dataset>/… (so dataset x
    cannot read imports/x.tar.zip, which is dataset x.tar's)."""
    if bucket != data_bucket and bucket not in allowed_buckets:
        raise InvalidImportRequest(f"gs://{bucket} is not a bucket imports may read (the importer would read it "
                                   "with its own account, not yours): make a signed URL of the object "
                                   f"(gcloud storage sign-url gs://{bucket}/{name} --duration=12h) and import that "
                                   "https URL, or ask the operator to add the bucket to IMPORT_BUCKETS")
    if bucket == data_bucket and not is_dataset_import(name, dataset):
        raise InvalidImportRequest(f"in the data bucket an import reads only imports/{dataset}.zip (.tar, "
                                   f".tar.gz, .tgz) or objects under imports/{dataset}/")


def is_dataset_import(name: str, dataset: str) -> bool:
    """Whether data-bucket object `name` was put there for `dataset` (names matched exactly)."""
    if name.startswith(f"imports/{dataset}/"):
        return True
    stem = f"imports/{dataset}"
    return name.startswith(stem) and name[len(stem):].lower() in ARCHIVE_EXTENSIONS


def new_import(import_id: str, dataset: str, source: str, archive: str | None, archive_format: str | None,
               requested_by: str | None, now: float, generation: int | None = None) -> dict[str, Any]:
    return {"id": import_id, "dataset": dataset, "source": source, "generation": generation, "archive": archive,
            "format": archive_format, "status": QUEUED, "phase": None, "requested_by": requested_by, "created_at": now,
            "started_at": None, "finished_at": None, "tasks": None, "issues": [], "issues_total": 0,
            "members_total": None, "bytes_total": None, "tasks_finished": [], "error": None}


def drop_import_id(object_name: str, generation: int) -> str:
    """The one import a dropped archive generation starts, however often its event comes."""
    return "import-" + hashlib.sha256(f"{object_name}#{generation}".encode()).hexdigest()[:16]


def share(members: Sequence[M], sizes: Sequence[int], task_index: int, task_count: int) -> list[M]:
    """The members task `task_index` of `task_count` unpacks: members in archive
    order are cut into `task_count` contiguous runs of about equal work (a
    member belongs to the run where its first byte falls). A member's work is
    its compressed bytes plus MEMBER_COST_BYTES: each is one upload, so a
    thousand 100-byte labels weigh like a hundred images, not like one."""
    sizes = [size + MEMBER_COST_BYTES for size in sizes]
    total = sum(sizes)
    if total == 0:
        return list(members[task_index::task_count])
    mine, start = [], 0
    for member, size in zip(members, sizes):
        if min(start * task_count // total, task_count - 1) == task_index:
            mine.append(member)
        start += size
    return mine


def task_document(index: int, attempt: int, members_total: int, bytes_total: int) -> dict[str, Any]:
    return {"index": index, "attempt": attempt, "status": RUNNING, "members_total": members_total,
            "bytes_total": bytes_total, "members_done": 0, "bytes_done": 0, "skipped": 0, "error": None}


def after_task(document: dict[str, Any], index: int, failed_with: str | None) -> dict[str, Any]:
    """The fields of the import to change when task `index` ends (None: nothing to change)."""
    if document["status"] in FINAL:
        return {}
    if failed_with:
        return {"status": FAILED, "error": failed_with}
    finished = sorted(set(document.get("tasks_finished") or []) | {index})
    change: dict[str, Any] = {"tasks_finished": finished}
    if len(finished) >= (document.get("tasks") or 1):
        change["status"] = COMPLETED
    return change


def state(document: dict[str, Any]) -> tuple[str, str | None]:
    """(status, phase) in the kernel's words, whichever deployment wrote the document: an old `staging` or
    `staged` status is running at that phase, and an old running import (no phase) was unpacking."""
    status, phase = jobs.state_of(document)
    return status, (phase or UNPACKING) if status == RUNNING else phase


def step(document: dict[str, Any]) -> str:
    """The finest word for where the import is: its phase while it runs, else its status."""
    status, phase = state(document)
    return cast(str, phase) if status == RUNNING else status  # state() gives a running import its phase


EXECUTION_PHASES = (STAGING, UNPACKING)  # phases a job execution runs (staged waits on a message)
WATCHED_STORED = (RUNNING, STAGING)  # statuses stored on an import that may wait on an execution


def waits_on_execution(document: dict[str, Any]) -> bool:
    return step(document) in EXECUTION_PHASES


def execution_ended(document: dict[str, Any], running: bool, ended_at: float | None, detail: str, last_activity: float,
                    now: float, grace: float) -> dict[str, Any] | None:
    """The update for an import whose execution ended while it still waited on it (tasks out of
    retries, killed for memory, a local process gone), or None. It fails `grace` seconds after
    the end, or after its tasks' last sign of life where the platform gives no end time."""
    if not waits_on_execution(document) or not document.get("execution") or running:
        return None
    if now - max(ended_at or 0.0, last_activity) < grace:
        return None
    finished = len(document.get("tasks_finished") or [])
    return {"status": FAILED, "finished_at": now,
            "error": (f"the import job's execution {document['execution']} ended with {finished} of "
                      f"{document.get('tasks') or 1} tasks done{f' ({detail})' if detail else ''}. Start it again "
                      f"(`yolodrop import {document['dataset']} {document['source']}`): what is unpacked is kept "
                      "and written again, unchanged")}


def limited_issues(issues: list[M]) -> tuple[list[M], int]:
    """The issues a document keeps (Issues or their dicts), and how many there were."""
    return issues[:MAX_ISSUES_KEPT], len(issues)


def view(document: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """What GET /imports/{id} answers: the import with its tasks' counts summed."""
    summed = {name: sum(task.get(name) or 0 for task in tasks) for name in TASK_FIELDS}
    status, phase = state(document)
    return {
        "id": document["id"], "dataset": document["dataset"], "status": status, "phase": phase,
        "source": document["source"], "format": document.get("format"), "archive": document.get("archive"),
        "layout": document.get("layout"),
        "members_total": document.get("members_total") if document.get("members_total") is not None
        else (summed["members_total"] if tasks else None),
        "bytes_total": document.get("bytes_total") if document.get("bytes_total") is not None
        else (summed["bytes_total"] if tasks else None),
        "members_done": summed["members_done"], "bytes_done": summed["bytes_done"], "skipped": summed["skipped"],
        "tasks": document.get("tasks"), "issues": document.get("issues") or [],
        "issues_total": document.get("issues_total") or 0, "error": document.get("error"),
        "requested_by": document.get("requested_by"), "created_at": document.get("created_at"),
        "started_at": document.get("started_at"), "finished_at": document.get("finished_at"),
    }
