"""Training jobs: request one, follow it, cancel it.

The API checks what a person could abuse before anything is published: the
role on the dataset, the model (never a path; a registered model only when
the caller may view it, else 404 as GET /models/{id}), and names the job by
caller and request_id. A request takes the one request path of every job
(common.services.job_requests): recorded as a queued job, then published to the
training topic while the job still waits, so a publish that fails (a 503) is
repaired by a retry with the same request_id (the CLI sends one and retries) or,
when nobody retries, by the watch, which sends the recorded request again.
"""
from __future__ import annotations

import time
import uuid

from common.api import access, params, quotas
from common.domain import storable
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.resources import documents, models
from common.api.routes import Route
from common.api.schema import ANY, BOOLEAN, INTEGER, NUMBER, STRING, array, nullable, obj, page_of
from common.cloud import storage, training_store
from common.domain import layout, messages, request_bodies, training_job, training_request
from common.platform import config
from common.services import job_requests

ENDED = (training_job.COMPLETED, training_job.FAILED, training_job.CANCELLED)
JOB_ID = params.path("job_id", "the job id (job-<hash of the caller and the request_id>)")
STATUS = {"type": "string", "enum": [training_job.QUEUED, training_job.RUNNING, *ENDED]}
TIMES = ("created_at", "launched_at", "started_at", "finished_at", "updated_at")
JOB = obj(required=("id", "status"), id=STRING, dataset=nullable(STRING), status=STATUS,
          epoch=nullable(INTEGER), epochs=nullable(INTEGER), history=array({"type": "object"}),
          error=nullable(STRING), model_id=nullable(STRING), request_id=nullable(STRING), request=ANY,
          cancel_requested=nullable(BOOLEAN), **{name: nullable(NUMBER) for name in TIMES},
          accelerator=nullable({**obj(type=STRING, count=INTEGER),
                                "description": "the GPUs it asked for (Vertex AI); null: the Cloud Run Job's one"}))


def request_training(ctx: RequestContext, args: dict) -> dict:
    request_id = args["body"].request_id or uuid.uuid4().hex
    body = args["body"].request(request_id)
    if not ctx.principal.is_admin:  # the administrator's requests may fail as jobs, as published ones do
        access.require(ctx, body.get("dataset"), access.EDITOR)
    job_id = training_request.job_id_for(request_id, ctx.principal.name)
    if not _recorded(job_id, ctx):  # a retry of this caller's request was checked the first time
        problem = storable.problem(body)
        if problem:
            raise ApiError(400, f"the body cannot be recorded as a job: {problem}")
        _check_request(body, request_id)
        quotas.check_training(ctx, body)  # the caps, the jobs at once, today's trainer hours (not the administrator's)
        _check_model(ctx, body["model"])
    job = training_job.received_job(job_id, request_id, body, time.time(), ctx.principal.name)
    job_requests.ask_recorded(training_store.record_job(job, ctx.deadline_seconds), config.training_topic(),
                              messages.TrainingRequest.model_validate(body), ctx.deadline_seconds,
                              training_job.waits_for_request, requested_by=ctx.principal.name)
    return {"job_id": job_id, "request_id": request_id}


def _recorded(job_id: str, ctx: RequestContext) -> bool:
    return training_store.read(job_id, ctx.deadline_seconds) is not None


def _check_request(body: dict, request_id: str) -> None:
    """400 for what the training function would refuse in any dataset: its arguments, and GPUs the operator does
    not allow. What depends on the dataset's files (its labels, its classes) the training function checks."""
    try:
        training_request.validate(body, request_id, config.trainer_accelerator_limits())
    except training_request.InvalidRequest as invalid:
        raise ApiError(400, f"the training request cannot run: {invalid}") from None


def _check_model(ctx: RequestContext, model: str) -> None:
    """404 for a registered model the caller may not view, exactly as GET /models/{id} answers (a model no
    request may name, a path or an unknown name, the body's model refuses; the training function checks
    again)."""
    if training_request.model_kind(model) == "registered":
        models.get_model(ctx, {"model_id": model})


def get_job(ctx: RequestContext, args: dict) -> dict:
    return training_job.job_view(documents.find_in_dataset(training_store.read, args["job_id"], "training job", ctx,
                                                            access.VIEWER))


def list_jobs(ctx: RequestContext, args: dict) -> dict:
    return documents.newest_first("jobs", training_store.jobs_newest_first, training_job.job_view, args, ctx)


def cancel_job(ctx: RequestContext, args: dict) -> dict:
    job_id = args["job_id"]
    job = documents.find_in_dataset(training_store.read, job_id, "training job", ctx, access.EDITOR)
    if job.get("status") in ENDED:
        raise ApiError(409, f"job {job_id} is already {job['status']}; nothing to cancel")
    # The marker first: a trainer launched meanwhile still finds it and stops after its first epoch.
    storage.upload(layout.training_cancel_marker(job_id), b"cancel requested", "text/plain",
                   timeout=ctx.deadline_seconds)
    if training_store.cancel_if_waiting(job_id, {**training_job.cancelled_fields(ctx.principal.name, time.time()),
                                                 "cancel_requested": True}):
        return {"id": job_id, "status": training_job.CANCELLED, "cancel_requested": True}
    training_store.request_cancel(job_id, ctx.deadline_seconds)
    return {"id": job_id, "status": job.get("status"), "cancel_requested": True}


ROUTES = [
    Route("POST", "/training", request_training, "Request a training job", status=202,
          response=obj(job_id=STRING, request_id=STRING), body=request_bodies.TrainingBody, rate_limited="training",
          responses={404: ("no such dataset or registered model, or not one the caller may see", ERROR_SCHEMA)}),
    Route("GET", "/training", list_jobs, "Training jobs, newest first",
          page_of("jobs", JOB), params=(documents.DATASET_FILTER, *documents.NEWEST_FIRST_PAGE)),
    Route("GET", "/training/{job_id}", get_job, "One training job with its per-epoch history",
          JOB, params=(JOB_ID,)),
    Route("POST", "/training/{job_id}/cancel", cancel_job, "Stop a job after its current epoch", status=202,
          response=obj(id=STRING, status=STATUS, cancel_requested={"const": True}), params=(JOB_ID,),
          responses={409: ("the job has already ended", ERROR_SCHEMA)}),
]
