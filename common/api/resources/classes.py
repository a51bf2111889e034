"""A dataset's classes: set the names (data.yaml is rewritten), or remap them
(merge, delete, reorder: a job rewrites the label files, then data.yaml), and
follow the dataset's jobs (remaps, and the revalidation every class change starts).
"""
from __future__ import annotations

import time


from common.api import access, pagination, params
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.resources.datasets import DATASET, find_dataset
from common.api.routes import Route
from common.api.schema import ANY, INTEGER, NUMBER, STRING, array, nullable, obj, page_of
from common.cloud import dataset_index, dataset_job_store, guarded_objects
from common.domain import class_changes, dataset_jobs, layout, request_bodies
from common.domain import jobs as kernel
from common.domain.datayaml import MAX_DATA_YAML_BYTES, DataYaml, parse_data_yaml, size_issue
from common.domain.layout import DATA_YAML_NAMES
from common.services import dataset_jobs as job_service

IF_MATCH = params.header("If-Match", "the data.yaml generation the change is based on (0: none yet)",
                         pattern=r"^\"?[0-9]{1,20}\"?$")
JOB_ID = params.path("dataset_job_id", "the job id (remap-... or revalidate-...)")
ISSUE = obj(code=STRING, message=STRING)
CLASSES = obj(names=array(STRING), generation=INTEGER, indexed_generation=INTEGER, path=STRING, issues=array(ISSUE))
JOB = obj(required=("id", "dataset", "kind", "status"), id=STRING, dataset=STRING,
          kind={"type": "string", "enum": list(dataset_jobs.KINDS)},
          status={"type": "string", "enum": [dataset_jobs.QUEUED, dataset_jobs.RUNNING, *dataset_jobs.ENDED]},
          files_total=nullable(INTEGER), files_done=INTEGER, chunks_total=nullable(INTEGER), chunks_done=INTEGER,
          created_at=NUMBER, finished_at=nullable(NUMBER), error=nullable(STRING), map=ANY,
          names_before=ANY, names_after=ANY, rewritten=nullable(INTEGER), requested_by=nullable(STRING),
          cancelled_by=nullable(STRING), indexed=nullable(INTEGER), removed=nullable(INTEGER),
          unchanged=nullable(INTEGER))
CHANGED = {412: ("data.yaml changed since: the body has its current names and generation", ERROR_SCHEMA),
           428: ("no If-Match", ERROR_SCHEMA)}


def get_classes(ctx: RequestContext, args: dict) -> dict:
    """The names data.yaml gives ([] when it gives none), and the problems that leave them unknown.
    generation: the bucket object's; indexed_generation: the one ingest applied to the index (equal once
    the index has caught up: what a client waits on)."""
    path = _data_yaml_path(args["dataset"], ctx)
    generation, parsed = _current_classes(path, ctx)
    indexed = find_dataset(args["dataset"], ctx).get("yaml_generation") or 0
    issues = [{"code": issue.code, "message": issue.message} for issue in parsed.issues] if parsed else []
    return {"names": (parsed.names if parsed else None) or [], "generation": generation,
            "indexed_generation": indexed, "path": path, "issues": issues}


def _current_classes(path: str, ctx: RequestContext) -> tuple[int, DataYaml | None]:
    """data.yaml's generation and what it says (None: there is none), read only when its size allows."""
    try:
        generation, data = guarded_objects.current(path, ctx.deadline_seconds, max_bytes=MAX_DATA_YAML_BYTES)
    except guarded_objects.TooLarge as too_large:
        issue = size_issue(too_large.size, path)  # always one: the read refused past the same limit
        return too_large.generation, DataYaml(None, [issue] if issue else [])
    return generation, parse_data_yaml(data, path) if data is not None else None


def put_classes(ctx: RequestContext, args: dict) -> dict:
    names = list(args["body"].names)
    if args["If-Match"] is None:
        raise ApiError(428, "send If-Match: <generation> of data.yaml (GET .../classes; 0 when there is none)",
                       "If-Match")
    path = _data_yaml_path(args["dataset"], ctx)
    based_on = int(args["If-Match"].strip('"'))
    try:
        generation, data = guarded_objects.current(path, ctx.deadline_seconds, max_bytes=MAX_DATA_YAML_BYTES)
    except guarded_objects.TooLarge as too_large:  # unreadable: the new names replace it whole
        generation, data = too_large.generation, None
    if generation != based_on:
        raise _moved(path, generation, data)
    try:
        written = guarded_objects.write(path, class_changes.with_names(data, names), based_on, ctx.principal.name,
                                        "application/x-yaml", ctx.deadline_seconds)
    except guarded_objects.Moved as moved:
        raise _moved(path, moved.generation, moved.data) from None
    return {"names": names, "generation": written, "path": path}


def _moved(path: str, generation: int, data: bytes | None) -> ApiError:
    error = ApiError(412, f"data.yaml is at generation {generation} now: nothing was written", "If-Match")
    error.extra = {"generation": generation, "names": parse_data_yaml(data, path).names if data else None}
    return error


def remap_classes(ctx: RequestContext, args: dict) -> tuple[int, dict]:
    dataset, body = args["dataset"], args["body"]
    found = find_dataset(dataset, ctx)
    names = found.get("classes")
    if not names:
        raise ApiError(409, f"dataset {dataset!r} has no classes yet: drop a data.yaml or PUT .../classes first")
    try:
        remap = class_changes.plan_remap(names, dict(body.map), body.names)
    except ValueError as exc:
        raise ApiError(400, str(exc), "map") from None
    # The same remap of the same data.yaml is one job: a retried request finds it (and asks for it again
    # while it waits), a failed one asked for again resumes without remapping a file twice, and a cancelled
    # one starts again (unless another remap runs).
    job_id = dataset_jobs.remap_job_id(dataset, found.get("yaml_generation") or 0, dict(body.map), remap.names)
    asked_before = dataset_job_store.get(job_id, ctx.deadline_seconds)
    if (asked_before is None or asked_before["status"] == dataset_jobs.CANCELLED) and \
            dataset_job_store.pending_of(dataset, ctx.deadline_seconds, kind=dataset_jobs.REMAP):
        raise ApiError(409, f"a remap of {dataset!r} is running: wait for it to end")
    job = dataset_jobs.new_job(job_id, dataset, dataset_jobs.REMAP, time.time(),
                               ctx.principal.name, map=dict(body.map), names_before=names, names_after=remap.names,
                               ids={str(old): new for old, new in remap.ids.items()},
                               data_yaml=_data_yaml_name(dataset, ctx))
    job_service.start(job, ctx.deadline_seconds)
    return 202, {"job_id": job["id"], "names_after": remap.names}


def get_job(ctx: RequestContext, args: dict) -> dict:
    job_id = args["dataset_job_id"]
    job = dataset_job_store.get(job_id, ctx.deadline_seconds) if layout.is_document_id(job_id) else None
    if job is None or job["dataset"] != args["dataset"]:
        raise ApiError(404, f"no job {job_id!r} of dataset {args['dataset']!r}")
    return _view(job, ctx)


def cancel_dataset_job(ctx: RequestContext, args: dict) -> tuple[int, dict]:
    """Cancel a job of the dataset where its kind allows it: 202 with the job; 409 with the reason."""
    try:
        job = job_service.cancel(args["dataset"], args["dataset_job_id"], ctx.principal.name)
    except kernel.NoSuchJob as missing:
        raise ApiError(404, str(missing)) from None
    except kernel.CannotCancel as refused:
        raise ApiError(409, f"job {args['dataset_job_id']} cannot be cancelled: {refused}") from None
    return 202, _view(job, ctx)


def list_jobs(ctx: RequestContext, args: dict) -> dict:
    source = pagination.Source(dataset_job_store.newest_first([args["dataset"]]),
                               items=lambda job: [_view(job, ctx)])
    return pagination.page("jobs", "dataset-jobs", [source], args, ctx)


def _view(job: dict, ctx: RequestContext) -> dict:
    chunks_done, files_done, _ = dataset_job_store.progress(job["id"], ctx.deadline_seconds)
    return dataset_jobs.view(job, chunks_done, files_done)


def _data_yaml_name(dataset: str, ctx: RequestContext) -> str:
    """data.yaml, or data.yml where the dataset has that one."""
    for name in DATA_YAML_NAMES:
        if dataset_index.is_present_file(dataset, layout.dataset_object(dataset, name), ctx.deadline_seconds):
            return name
    return DATA_YAML_NAMES[0]


def _data_yaml_path(dataset: str, ctx: RequestContext) -> str:
    return layout.dataset_object(dataset, _data_yaml_name(dataset, ctx))


ROUTES = [
    Route("GET", "/datasets/{dataset}/classes", get_classes, "The class names and data.yaml's generation",
          CLASSES, params=(DATASET,), role=access.VIEWER),
    Route("PUT", "/datasets/{dataset}/classes", put_classes, "Set the class names: rewrites data.yaml",
          CLASSES, params=(DATASET, IF_MATCH), body=request_bodies.ClassNames, role=access.EDITOR, responses=CHANGED,
          rate_limited="classes"),  # each change rewrites data.yaml and revalidates every label
    Route("POST", "/datasets/{dataset}/classes/remap", remap_classes,
          "Merge, delete or reorder classes: a job rewrites every label file, then data.yaml", status=202,
          response=obj(job_id=STRING, names_after=array(STRING)), params=(DATASET,),
          body=request_bodies.Remap, role=access.EDITOR,
          rate_limited="remaps", responses={409: ("no classes yet, or a remap is running", ERROR_SCHEMA)}),
    Route("GET", "/datasets/{dataset}/jobs", list_jobs, "The dataset's jobs (remaps, revalidations), newest first",
          page_of("jobs", JOB), params=(DATASET, *pagination.page_params(default=20, maximum=100)),
          role=access.VIEWER),
    Route("GET", "/datasets/{dataset}/jobs/{dataset_job_id}", get_job, "One job of the dataset, with its progress", JOB,
          params=(DATASET, JOB_ID), role=access.VIEWER),
    Route("POST", "/datasets/{dataset}/jobs/{dataset_job_id}/cancel", cancel_dataset_job,
          "Cancel a job: auto-labelling and bulk accepts while queued or running (what they did stays), a remap "
          "only while queued; revalidations and resplits never", JOB, status=202, params=(DATASET, JOB_ID),
          role=access.EDITOR, responses={409: ("the job has ended, or its kind cannot stop where it is: the reason "
                                               "says what to do", ERROR_SCHEMA)}),
]

