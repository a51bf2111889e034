"""The one view of a job, whatever its kind: the kernel's status words, the kind's own finer phase, progress
in the unit the kind counts, and whether it may be cancelled. Pure: each kind's document (and the counts its
tasks or chunks sum) in, a JOB out (docs/jobs.md, "Following any job").

Documents written by older deployments may hold legacy status words (imports `staging`/`staged`, versions
`freezing`/`ready`): the view maps them to the kernel's and keeps the old word as the phase.
"""
from __future__ import annotations

import re
from typing import Any, TypeVar, cast
from collections.abc import Callable

from common.domain import dataset_jobs, exports, imports, jobs, versions

TRAINING, IMPORT, EXPORT, VERSION = "training", "import", "export", "version"
KINDS = (TRAINING, IMPORT, EXPORT, VERSION, *dataset_jobs.KINDS)
STATUSES = jobs.STATES
LEGACY_OF = {IMPORT: (imports.STAGING, imports.STAGED), VERSION: (versions.FREEZING, versions.READY)}
# When each kind may be cancelled (exports and the dataset-job kinds say it in their own modules): training and
# imports while queued or running; a version never (one short step).
CANCEL = {TRAINING: jobs.Cancel(jobs.ACTIVE), IMPORT: jobs.Cancel(jobs.ACTIVE), EXPORT: exports.CANCEL,
          VERSION: jobs.Cancel((), "a version is frozen in one short step: it cannot be cancelled; it ends by itself"),
          **dataset_jobs.CANCEL}
T = TypeVar("T")
VERSION_REF = re.compile(r"(?P<dataset>[^:]+):(?P<version>v[0-9]+)")


def ref(kind: str, job_id: str) -> str:
    return f"{kind}/{job_id}"


def version_job_id(dataset: str, version: str) -> str:
    """A version's job id: '{dataset}:{version}'."""
    return versions.qualified_id(dataset, version)


def version_of(job_id: str) -> tuple[str, str] | None:
    """(dataset, version) of a version's job id, or None when it is not one."""
    found = VERSION_REF.fullmatch(job_id)
    return (found["dataset"], found["version"]) if found else None


def kernel_status(status: str | None) -> str:
    """The kernel's word for a stored status (a legacy word mapped; an unknown one reads as failed, never as
    a job that may still end)."""
    status = jobs.LEGACY_STATUSES.get(status, status)
    return status if status in STATUSES else jobs.FAILED


def stored_statuses(kind: str, active: bool) -> list[str]:
    """The status words a document of `kind` may hold for an active (queued, running) or an ended job: the
    kernel's and the kind's legacy ones (what a list filters its query by)."""
    words = [*STATUSES, *LEGACY_OF.get(kind, ())]
    return [word for word in words if (kernel_status(word) in jobs.ACTIVE) == active]


def job(kind: str, job_id: str, document: dict[str, Any], status: str | None, phase: str | None, done: int | None,
        total: int | None, unit: str, self_link: str, finished_at: float | None = None) -> dict[str, Any]:
    """A JOB from what every kind's view found in its document."""
    status = kernel_status(status)
    return {"kind": kind, "id": job_id, "ref": ref(kind, job_id), "dataset": document.get("dataset"),
            "status": status, "phase": phase, "progress": {"done": done or 0, "total": total, "unit": unit},
            "error": document.get("error"), "requested_by": document.get("requested_by"),
            "created_at": document.get("created_at"), "started_at": document.get("started_at"),
            "finished_at": finished_at if finished_at is not None else document.get("finished_at"),
            "cancellable": jobs.may_cancel(status, CANCEL.get(kind, jobs.Cancel())), "links": {"self": self_link}}


def training(document: dict[str, Any]) -> dict[str, Any]:
    job_id = document["id"]
    return job(TRAINING, job_id, document, document.get("status"), training_phase(document), document.get("epoch"),
               document.get("epochs"), "epochs", f"/training/{job_id}")


def training_phase(document: dict[str, Any]) -> str | None:
    """'epoch N/E'; 'continuing after epoch N' between two executions; 'cancel requested' once asked."""
    if kernel_status(document.get("status")) not in jobs.ACTIVE:
        return None
    if document.get("cancel_requested"):
        return "cancel requested"
    continuation = document.get("continuation") or {}
    if continuation and continuation.get("after_epoch") == document.get("epoch"):
        return f"continuing after epoch {continuation.get('after_epoch')}"
    if document.get("epoch"):
        return f"epoch {document['epoch']}/{document.get('epochs')}"
    return None


def import_(document: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """An import, its members counted as GET /imports/{id} sums them over its tasks."""
    summed = imports.view(document, tasks)  # its status and phase in the kernel's words, whoever wrote it
    return job(IMPORT, document["id"], document, summed["status"], summed["phase"], summed["members_done"],
               summed["members_total"], "members", f"/imports/{document['id']}")


def export(document: dict[str, Any]) -> dict[str, Any]:
    return job(EXPORT, document["id"], document, document.get("status"), document.get("phase"),
               document.get("files_done"), document.get("files_total"), "files", f"/exports/{document['id']}")


def version(document: dict[str, Any]) -> dict[str, Any]:
    """A version counts its images, known once it is frozen."""
    (status, phase), dataset = versions.state(document), cast(str, document.get("dataset"))
    images = (document.get("stats") or {}).get("images")
    frozen = kernel_status(status) == jobs.COMPLETED
    return job(VERSION, version_job_id(dataset, document["id"]), document, status, phase,
               images if frozen else 0, images, "images", f"/datasets/{dataset}/versions/{document['id']}",
               finished_at=document.get("frozen_at"))


def dataset_job(document: dict[str, Any], files_done: int) -> dict[str, Any]:
    """A dataset job (revalidate, remap, autolabel, accept, resplit), its files summed over its chunks."""
    kind, job_id = cast(str, document.get("kind")), document["id"]
    review = kind in (dataset_jobs.AUTOLABEL, dataset_jobs.ACCEPT)
    link = f"/autolabel/{job_id}" if review else f"/datasets/{document.get('dataset')}/jobs/{job_id}"
    return job(kind, job_id, document, document.get("status"), document.get("phase"), files_done,
               document.get("files_total"), "images" if review else "files", link)


def newest_first(found: list[T], limit: int, created_at: Callable[[T], object]) -> list[T]:
    """The `limit` newest of several kinds' lists merged, by created_at (a document without one: last)."""
    return sorted(found, key=lambda item: _time(created_at(item)), reverse=True)[:limit]


def _time(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
