"""Imports: an archive at a URL (or a gs:// object) unpacked into a dataset by the import job.

The answer to a request is 202 with the import's id; `GET /imports/{import_id}`
follows it (counts summed from its tasks; its status is the job kernel's, and
while running its phase says staging, staged or unpacking),
`POST /imports/{import_id}/cancel` stops it (what is unpacked stays)."""
from __future__ import annotations

import time

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.resources import documents
from common.api.resources.datasets import DATASET
from common.api.routes import Route
from common.api.schema import ANY, INTEGER, NUMBER, STRING, array, nullable, obj, page_of
from common.cloud import import_store
from common.domain import imports, request_bodies, source_urls
from common.domain.imports import InvalidImportRequest
from common.domain.source_urls import InvalidSource
from common.domain.messages import ImportRequest
from common.platform import config
from common.services import job_requests

IMPORT_ID = params.path("import_id", "the import id (import-<hex>)")
IMPORT = obj(required=("id", "dataset", "status", "source"), id=STRING, dataset=STRING, source=STRING,
             status={"type": "string", "enum": list(imports.STATUSES)},
             phase={**nullable({"type": "string", "enum": list(imports.PHASES)}),
                    "description": "while running: staging (a zip copied into the bucket first), staged, unpacking"},
             format=nullable(STRING),
             archive=nullable(STRING), layout={**nullable(STRING), "description": "the export layout the files "
                                               "were recognised as (Ultralytics YOLO, CVAT COCO 1.0, Pascal VOC...)"},
             members_total=nullable(INTEGER), bytes_total=nullable(INTEGER),
             members_done=INTEGER, bytes_done=INTEGER, skipped=INTEGER, tasks=nullable(INTEGER),
             issues=array(ANY), issues_total=INTEGER, error=nullable(STRING), requested_by=nullable(STRING),
             created_at=nullable(NUMBER), started_at=nullable(NUMBER), finished_at=nullable(NUMBER))


def create_import(ctx: RequestContext, args: dict) -> dict:
    dataset, body = args["dataset"], args["body"]
    try:
        source = source_urls.parse(body.url)
        in_bucket = source.bucket_object()
        if in_bucket:
            imports.check_bucket_source(*in_bucket, config.data_bucket(), dataset, config.import_buckets())
    except (InvalidImportRequest, InvalidSource) as exc:
        raise ApiError(400, str(exc), "url") from None
    import_id = job_requests.job_id("import", dataset, ctx.principal.name, body.request_id)
    document = imports.new_import(import_id, dataset, source.url, source.archive, body.format,
                                  ctx.principal.name, time.time())
    document["tasks_wanted"] = body.tasks
    job_requests.ask_recorded(import_store.record(document, ctx.deadline_seconds), config.import_topic(),
                              ImportRequest(import_id=import_id), ctx.deadline_seconds, requested_by=ctx.principal.name)
    return {"import_id": import_id}


def get_import(ctx: RequestContext, args: dict) -> dict:
    document = documents.find_in_dataset(import_store.read, args["import_id"], "import", ctx, access.VIEWER)
    return import_store.view(document, ctx.deadline_seconds)


def list_imports(ctx: RequestContext, args: dict) -> dict:
    return documents.newest_first("imports", import_store.newest_first,
                                  lambda document: import_store.view(document, ctx.deadline_seconds), args, ctx)


def cancel_import(ctx: RequestContext, args: dict) -> dict:
    document = documents.find_in_dataset(import_store.read, args["import_id"], "import", ctx, access.EDITOR)
    if document["status"] in (imports.COMPLETED, imports.FAILED):  # cancelling twice is no error
        raise ApiError(409, f"import {document['id']} is {document['status']}: nothing to cancel")
    import_store.cancel(document["id"])
    cancelled = import_store.read(document["id"], ctx.deadline_seconds)
    if cancelled is None:  # an import is never deleted; a dataset's may be, meanwhile
        raise ApiError(404, f"import {document['id']} is gone")
    return import_store.view(cancelled, ctx.deadline_seconds)


ROUTES = [
    Route("POST", "/datasets/{dataset}/imports", create_import,
          "Import an archive from a URL or gs:// object into the dataset", status=202,
          response=obj(import_id=STRING), params=(DATASET,), body=request_bodies.NewImport, role=access.EDITOR,
          rate_limited="imports"),
    Route("GET", "/imports/{import_id}", get_import, "One import: status, progress, issues", IMPORT,
          params=(IMPORT_ID,)),
    Route("GET", "/imports", list_imports, "Imports (of one dataset, or of those the caller may see), newest first",
          page_of("imports", IMPORT), params=(documents.DATASET_FILTER, *documents.NEWEST_FIRST_PAGE)),
    Route("POST", "/imports/{import_id}/cancel", cancel_import,
          "Stop an import (what is unpacked stays; a cancelled one answers as it is)", IMPORT,
          params=(IMPORT_ID,), responses={409: ("the import has ended", ERROR_SCHEMA)}),
]
