"""Exports: a version of a dataset as a YOLO, COCO or Pascal VOC zip under derived/exports/.

The export function writes it (a message on the export topic), so the answer
is 202 with the export's id; `GET /exports/{export_id}` follows it."""
from __future__ import annotations

import time

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.resources import documents
from common.api.resources.datasets import DATASET
from common.api.routes import Route
from common.api.schema import ANY, BOOLEAN, INTEGER, NUMBER, STRING, nullable, obj, page_of
from common.cloud import version_store
from common.domain import exports, request_bodies
from common.domain.jobs import CannotCancel
from common.domain.messages import ExportRequest
from common.platform import config
from common.services import export, job_requests

COUNTS = {"type": "object", "additionalProperties": INTEGER}
EXPORT_ID = params.path("export_id", "the export id (export-<hex>)")
EXPORT = obj(required=("id", "dataset", "format", "status"), id=STRING, dataset=STRING,
             format={"type": "string", "enum": list(exports.FORMATS)}, version=nullable(STRING),
             background=nullable(BOOLEAN), status={"type": "string", "enum": list(exports.STATUSES)},
             files_total=nullable(INTEGER), files_done=nullable(INTEGER), bytes=nullable(INTEGER),
             uri=nullable(STRING), excluded=ANY,
             splits={**nullable(COUNTS), "description": "images per split: {split: images}"},
             boxes_per_class={**nullable({"type": "object", "additionalProperties": COUNTS}),
                              "description": "boxes per class, per split: {split: {class name: boxes}}"},
             error=nullable(STRING), cancelled_by=nullable(STRING),
             requested_by=nullable(STRING), created_at=nullable(NUMBER), started_at=nullable(NUMBER),
             finished_at=nullable(NUMBER))


def create_export(ctx: RequestContext, args: dict) -> dict:
    dataset, request = args["dataset"], args["body"]
    if request.version and version_store.read_version(dataset, request.version, ctx.deadline_seconds) is None:
        raise ApiError(404, f"no version {request.version!r} of dataset {dataset!r}", "version")
    export_id = job_requests.job_id("export", dataset, ctx.principal.name, request.request_id)
    document = exports.new_document(export_id, dataset, request, ctx.principal.name, time.time())
    job_requests.ask_recorded(version_store.record_export(document, ctx.deadline_seconds), config.export_topic(),
                              ExportRequest(export_id=export_id), ctx.deadline_seconds, requested_by=ctx.principal.name)
    return {"export_id": export_id}


def cancel_export(ctx: RequestContext, args: dict) -> tuple[int, dict]:
    """Stop an export: 202 with it, cancelled; 409 once it has ended. The call writing it stops at its next part."""
    document = documents.find_in_dataset(version_store.read_export, args["export_id"], "export", ctx, access.EDITOR)
    try:
        return 202, exports.view(export.cancel(document["id"], ctx.principal.name))
    except CannotCancel as refused:
        raise ApiError(409, f"export {document['id']} cannot be cancelled: {refused}") from None


def list_exports(ctx: RequestContext, args: dict) -> dict:
    return documents.newest_first("exports", version_store.exports_newest_first, exports.view, args, ctx)


def get_export(ctx: RequestContext, args: dict) -> dict:
    return exports.view(documents.find_in_dataset(version_store.read_export, args["export_id"], "export", ctx,
                                                  access.VIEWER))


ROUTES = [
    Route("POST", "/datasets/{dataset}/exports", create_export, "Export a version as a YOLO, COCO or Pascal VOC zip",
          status=202, response=obj(export_id=STRING), params=(DATASET,), body=request_bodies.ExportRequest,
          role=access.EDITOR, rate_limited="exports"),
    Route("GET", "/exports", list_exports, "Exports (of one dataset, or of those the caller may see), newest first",
          page_of("exports", EXPORT), params=(documents.DATASET_FILTER, *documents.NEWEST_FIRST_PAGE)),
    Route("GET", "/exports/{export_id}", get_export, "One export: status, progress, the zip's gs:// URI",
          EXPORT, params=(EXPORT_ID,)),
    Route("POST", "/exports/{export_id}/cancel", cancel_export,
          "Stop an export: no archive is made, its parts are removed (a cancelled one answers as it is)", EXPORT,
          status=202, params=(EXPORT_ID,), responses={409: ("the export has ended", ERROR_SCHEMA)}),
]
