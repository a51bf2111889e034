"""Versions: freeze a dataset, list its versions, read one.

A version is frozen by the export function (the request is a message on the
export topic), so the answer is 202 with the version's id: its status is the
job kernel's, `queued`, then `running` (phase `freezing`), then `completed`
(phase `ready`), or `failed` with the reason. It is asked for by the one
request path (common.services.job_requests): recorded, then published while
queued; a failed publish answers 503 and leaves it queued, for a retry with
the same request_id or the watch (common.services.watch_versions) to start. Before versions used the
kernel's words the status itself said `freezing` and `ready`: a client that
waited for `ready` waits for `completed` now (the phase keeps the old word)."""
from __future__ import annotations

from common.api import access, pagination, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.resources.datasets import DATASET
from common.api.routes import Route
from common.api.schema import ANY, NUMBER, STRING, nullable, obj, page_of
from common.cloud import version_store
from common.domain import request_bodies
from common.domain import versions as version_rules
from common.domain.messages import VersionRequest
from common.platform import config
from common.services import job_requests, versions

VERSION_PARAM = params.path("version", "the version id (v1, v2, ...)")
STATUS = {"type": "string", "enum": list(version_rules.STATUSES)}
PHASE = {**nullable({"type": "string", "enum": list(version_rules.PHASES)}),
         "description": "freezing while running, ready once completed: the status words before the job kernel's"}
VERSION = obj(required=("id", "dataset", "status"), id=STRING, dataset=STRING, name=nullable(STRING),
              note=nullable(STRING), status=STATUS, phase=PHASE, classes=ANY, stats=ANY, storage=ANY,
              snapshot=nullable(STRING), error=nullable(STRING), requested_by=nullable(STRING),
              created_at=nullable(NUMBER), frozen_at=nullable(NUMBER))


def create_version(ctx: RequestContext, args: dict) -> dict:
    dataset, body = args["dataset"], args["body"]
    fields, request_id = {"name": body.name, "note": body.note}, body.request_id
    asked_by = version_store.version_request(dataset, ctx.principal.name, request_id) if request_id else None
    made = versions.request(dataset, fields, ctx.principal.name, ctx.deadline_seconds, asked_by)
    document = made if "status" in made else version_store.read_version(dataset, made["id"], ctx.deadline_seconds)
    if document is None:  # deleted since it was requested
        raise ApiError(404, f"version {made['id']} of dataset {dataset!r} is gone")
    # a queued one (this request's, or the first of a retried request_id) is asked for: freezing is idempotent
    job_requests.ask_recorded(document, config.export_topic(), VersionRequest(dataset=dataset, version=document["id"]),
                              ctx.deadline_seconds, requested_by=ctx.principal.name)
    return {"version": document["id"], "status": version_rules.state(document)[0]}


def list_versions(ctx: RequestContext, args: dict) -> dict:
    dataset = args["dataset"]
    source = pagination.Source(version_store.versions_listed(dataset),
                               items=lambda version: [version_rules.view(version)])
    return pagination.page("versions", f"versions:{dataset}", [source], args, ctx)


def get_version(ctx: RequestContext, args: dict) -> dict:
    document = version_store.read_version(args["dataset"], args["version"], ctx.deadline_seconds)
    if document is None:
        raise ApiError(404, f"no version {args['version']!r} of dataset {args['dataset']!r}")
    return version_rules.view(document)


ROUTES = [
    Route("POST", "/datasets/{dataset}/versions", create_version, "Freeze the dataset as a new version",
          status=202, response=obj(version=STRING, status=STATUS), params=(DATASET,), body=request_bodies.NewVersion,
          body_optional=True, role=access.EDITOR, rate_limited="exports"),
    Route("GET", "/datasets/{dataset}/versions", list_versions, "The dataset's versions, newest first",
          page_of("versions", VERSION), params=(DATASET, *pagination.page_params(default=20, maximum=100)),
          role=access.VIEWER),
    Route("GET", "/datasets/{dataset}/versions/{version}", get_version,
          "One version: counts, class balance, splits, what was excluded and why, storage", VERSION,
          params=(DATASET, VERSION_PARAM), role=access.VIEWER),
]
