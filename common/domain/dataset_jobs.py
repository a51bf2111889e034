"""Jobs over a whole dataset, fanned out in chunks: revalidating every label
against new classes, and remapping classes by rewriting label files. Pure.

A job is planned once (its items listed and cut into chunks), each chunk is a
message of its own, so many instances work in parallel and a redelivered chunk
does nothing twice. Progress is the sum over the chunks' own documents: no
document is written by every chunk.
"""
from __future__ import annotations

import hashlib
from typing import Any

from common.domain import jobs as kernel

REVALIDATE, REMAP = "revalidate", "remap"
AUTOLABEL, ACCEPT = "autolabel", "accept"  # proposals made by a model; proposals accepted in bulk
RESPLIT = "resplit"  # a drop's entries given the splits its image lists say (common.services.resplit)
REINDEX = "reindex"  # the index rebuilt from the bucket's listing (common.services.reindex)
KINDS = (REVALIDATE, REMAP, AUTOLABEL, ACCEPT, RESPLIT, REINDEX)
# What a kind's chunks count, summed over the chunks' documents (at most 3: one aggregation, 5 figures).
COUNTED = {REVALIDATE: ("rewritten",), REMAP: ("rewritten",), AUTOLABEL: ("boxes", "dropped", "failures"),
           ACCEPT: ("accepted", "skipped", "conflicts"), RESPLIT: ("moved",),
           REINDEX: ("indexed", "removed", "unchanged")}
QUEUED, RUNNING, COMPLETED, FAILED = kernel.QUEUED, kernel.RUNNING, kernel.COMPLETED, kernel.FAILED
CANCELLED = kernel.CANCELLED
ENDED, STATES = kernel.FINAL, kernel.STATES
# When each kind may be cancelled. Auto-labelling and bulk accepts stop between units: what they did stays (the
# proposals made, the proposals accepted). A remap only before it rewrote any file; revalidations and resplits
# keep the index true, so they always run to their end.
CANCEL = {
    AUTOLABEL: kernel.Cancel(kernel.ACTIVE),
    ACCEPT: kernel.Cancel(kernel.ACTIVE),
    REMAP: kernel.Cancel((QUEUED,), "this remap has started rewriting label files: stopped half-way it would leave "
                                    "labels under two class lists; wait for it to end, then remap back "
                                    "(POST .../classes/remap with the inverse map)"),
    REVALIDATE: kernel.Cancel((), "a revalidation keeps the index true to data.yaml's classes: it cannot be "
                                  "cancelled; it ends by itself"),
    RESPLIT: kernel.Cancel((), "a resplit keeps the index true to the drop's split lists: it cannot be "
                               "cancelled; it ends by itself"),
    # what its done chunks applied stays, as ingest would have applied it; a new reindex finishes the rest
    REINDEX: kernel.Cancel(kernel.ACTIVE),
}


def new_job(job_id: str, dataset: str, kind: str, now: float, requested_by: str | None,
            **details: Any) -> dict[str, Any]:
    return kernel.new_job(job_id, kind, now, requested_by, dataset=dataset, files_total=None, **details)


def remap_job_id(dataset: str, yaml_generation: int, mapping: dict[str, Any], names_after: list[str]) -> str:
    """One remap per (dataset, data.yaml generation, map): a retried request names the same job."""
    return kernel.job_id(REMAP, dataset, yaml_generation, sorted(mapping.items()), names_after)


def cancellable(job: dict[str, Any]) -> bool:
    """Whether the job can be cancelled now (CANCEL)."""
    return kernel.may_cancel(job["status"], CANCEL[job["kind"]])


def revalidation_job_id(dataset: str, yaml_generation: int, deleted: bool = False) -> str:
    """One revalidation per data.yaml generation written, and one more when that generation is deleted (its
    delete event carries the same generation): a redelivered event finds its job."""
    request = f"{dataset}\0{yaml_generation}" + ("\0deleted" if deleted else "")
    return "revalidate-" + hashlib.sha256(request.encode()).hexdigest()[:20]


def view(job: dict[str, Any], chunks_done: int, files_done: int) -> dict[str, Any]:
    keys = ("id", "dataset", "kind", "status", "created_at", "finished_at", "requested_by", "cancelled_by",
            "files_total", "error", "map", "names_before", "names_after", "rewritten", *COUNTED[REINDEX])
    return {**{key: job.get(key) for key in keys}, "chunks_total": job.get("units_total", job.get("chunks_total")),
            "files_done": files_done, "chunks_done": chunks_done}


def autolabel_view(job: dict[str, Any], files_done: int, counts: dict[str, Any],
                   failed: list[dict[str, Any]]) -> dict[str, Any]:
    """An auto-labelling job (or a bulk accept) as GET /autolabel/{job_id} shows it."""
    keys = ("id", "dataset", "kind", "status", "model_id", "conf", "iou", "images", "min_confidence", "merge",
            "dropped_classes", "error", "requested_by", "cancelled_by", "created_at", "finished_at")
    return {**{key: job.get(key) for key in keys}, "images_total": job.get("files_total") or 0,
            "images_done": files_done, **{name: counts.get(name, 0) for name in COUNTED[job["kind"]]},
            "failed": failed}
