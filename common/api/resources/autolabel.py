"""Auto-labelling: a registered model proposes boxes for a dataset's images
(a dataset job in chunks), and a person reviews them: accept (the label file is
written with a precondition, as PUT .../labels writes it) or reject.
Proposals never overwrite a label: they sit beside it in the index.
"""
from __future__ import annotations

import time

from common.api import access, pagination, params
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.resources import documents
from common.api.resources.datasets import DATASET
from common.api.resources.images import IMAGE_ID, find_image
from common.api.resources.labels import CONFLICT, label_conflict
from common.api.routes import Route
from common.api.schema import ANY, INTEGER, NUMBER, STRING, array, nullable, obj, page_of
from common.cloud import dataset_job_store, guarded_objects, proposal_store, training_store
from common.domain import dataset_jobs, layout, proposals, request_bodies
from common.services import dataset_jobs as job_service
from common.services import job_requests, proposal_review

REVIEW_KINDS = (dataset_jobs.AUTOLABEL, dataset_jobs.ACCEPT)
JOB_ID = params.path("autolabel_job_id", "the auto-labelling job id (autolabel-... or accept-...)")
JOB = obj(required=("id", "dataset", "kind", "status", "images_total", "images_done", "failed"),
          id=STRING, dataset=STRING, kind={"type": "string", "enum": list(REVIEW_KINDS)},
          status={"type": "string", "enum": list(dataset_jobs.STATES)},
          model_id=nullable(STRING), images_total=INTEGER, images_done=INTEGER, boxes=INTEGER, dropped=INTEGER,
          dropped_classes=nullable(array(STRING)), failures=INTEGER, accepted=INTEGER, skipped=INTEGER,
          conflicts=INTEGER, failed=array(obj(image=STRING, reason=STRING)), error=nullable(STRING),
          created_at=NUMBER, finished_at=nullable(NUMBER), conf=ANY, iou=ANY, images=ANY, min_confidence=ANY,
          merge=ANY, requested_by=nullable(STRING), cancelled_by=nullable(STRING))
STARTED = obj(job_id=STRING, status={"type": "string", "enum": list(dataset_jobs.STATES)})
ACCEPTED = obj(label_path=STRING, generation=INTEGER, accepted=INTEGER)
REVIEW_REFUSALS = {409: ("no proposal reaches min_confidence, or the image has a label and merge was not asked",
                         ERROR_SCHEMA),
                   412: ("the label changed since: nothing was written; the body has what is there now", CONFLICT)}


def start_autolabel(ctx: RequestContext, args: dict) -> tuple[int, dict]:
    dataset, body = args["dataset"], args["body"]
    job_id = job_requests.job_id(dataset_jobs.AUTOLABEL, dataset, ctx.principal.name, body.request_id)
    documents.find_in_dataset(training_store.model, body.model_id, "model", ctx, access.VIEWER)
    job = dataset_jobs.new_job(job_id, dataset, dataset_jobs.AUTOLABEL, time.time(), ctx.principal.name,
                               model_id=body.model_id, conf=body.conf, iou=body.iou, images=body.images)
    return _started(job, ctx)


def accept_all(ctx: RequestContext, args: dict) -> tuple[int, dict]:
    dataset, body = args["dataset"], args["body"]
    job_id = job_requests.job_id(dataset_jobs.ACCEPT, dataset, ctx.principal.name, body.request_id)
    job = dataset_jobs.new_job(job_id, dataset, dataset_jobs.ACCEPT, time.time(), ctx.principal.name,
                               min_confidence=body.min_confidence, merge=body.merge)
    return _started(job, ctx)


def _started(job: dict, ctx: RequestContext) -> tuple[int, dict]:
    """Ask for the job (the one of its id made before, when a request_id named it): its id and status now."""
    stored = job_service.start(job, ctx.deadline_seconds)
    return 202, {"job_id": stored["id"], "status": stored["status"]}


def get_job(ctx: RequestContext, args: dict) -> dict:
    job = documents.find_in_dataset(dataset_job_store.get, args["autolabel_job_id"], "auto-labelling job", ctx,
                                    access.VIEWER)
    if job.get("kind") not in REVIEW_KINDS:
        raise ApiError(404, f"no auto-labelling job {args['autolabel_job_id']!r}")
    return job_view(job, ctx)


def list_jobs(ctx: RequestContext, args: dict) -> dict:
    """Newest first, of one dataset or of every dataset the caller may see."""
    datasets = documents.datasets_listed(args["dataset"], ctx)
    if datasets == []:
        return {"jobs": [], "next_page_token": None}
    source = pagination.Source(dataset_job_store.newest_first(datasets, kind=dataset_jobs.AUTOLABEL),
                               items=lambda job: [job_view(job, ctx)])
    return pagination.page("jobs", "autolabel", [source], args, ctx)


def job_view(job: dict, ctx: RequestContext) -> dict:
    counted = dataset_jobs.COUNTED[job["kind"]]
    _, files_done, counts = dataset_job_store.progress(job["id"], ctx.deadline_seconds, counted)
    failed = dataset_job_store.failures(job["id"], deadline=ctx.deadline_seconds) if counts.get("failures") else []
    return dataset_jobs.autolabel_view(job, files_done, counts, failed)


def accept_image(ctx: RequestContext, args: dict) -> dict:
    classes, entry = find_image(ctx, args["dataset"], args["image_id"], with_image=True)
    body = args["body"]
    try:
        return proposal_review.accept(args["dataset"], entry, body.min_confidence, body.merge, ctx.principal.name,
                                      body.label_generation, ctx.deadline_seconds)
    except (proposals.NothingToAccept, proposals.HasLabels) as refused:
        raise ApiError(409, str(refused)) from None
    except guarded_objects.Moved as moved:
        raise label_conflict(moved, layout.label_path_for(entry["image"]["path"]), classes) from None
    except guarded_objects.TooLarge as too_large:
        raise ApiError(409, f"{too_large}: nothing was written; replace or delete that label file "
                            "(PUT or DELETE .../labels), then accept again") from None


def reject_image(ctx: RequestContext, args: dict) -> dict:
    _, entry = find_image(ctx, args["dataset"], args["image_id"])
    rejected = proposal_store.clear(args["dataset"], entry["key"], None)
    return {"id": entry["key"], "rejected": len(entry.get("proposals") or []) if rejected else 0}


ROUTES = [
    Route("POST", "/datasets/{dataset}/autolabel", start_autolabel,
          "Auto-label images with a registered model: proposals to review, in a job", STARTED, status=202,
          params=(DATASET,), role=access.EDITOR, rate_limited="autolabel", body=request_bodies.AutolabelRequest),
    Route("GET", "/autolabel/{autolabel_job_id}", get_job,
          "An auto-labelling (or bulk accept) job with its progress", JOB, params=(JOB_ID,)),
    Route("GET", "/autolabel", list_jobs,
          "Auto-labelling jobs (of one dataset, or of those the caller may see), newest first", page_of("jobs", JOB),
          params=(documents.DATASET_FILTER, *documents.NEWEST_FIRST_PAGE)),
    Route("POST", "/datasets/{dataset}/images/{image_id}/proposals/accept", accept_image,
          "Accept an image's proposals: writes its label file", ACCEPTED, params=(DATASET, IMAGE_ID),
          body=request_bodies.AcceptImage, body_optional=True, role=access.EDITOR, responses=REVIEW_REFUSALS),
    Route("POST", "/datasets/{dataset}/images/{image_id}/proposals/reject", reject_image,
          "Reject an image's proposals: drops them", obj(id=STRING, rejected=INTEGER), params=(DATASET, IMAGE_ID),
          role=access.EDITOR),
    Route("POST", "/datasets/{dataset}/proposals/accept", accept_all,
          "Accept every image's proposals, as a job with progress", STARTED, status=202, params=(DATASET,),
          body=request_bodies.AcceptAll, body_optional=True,
          role=access.EDITOR, rate_limited="autolabel"),
]
