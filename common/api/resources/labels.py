"""Editing an image's labels: the label file is written to the bucket, and the
index learns of it through the ordinary object event, as of a drop.

Every write names the label generation it was based on (If-Match, from the
image view's label_generation; 0 or `If-None-Match: *` when there is no label
yet), so two people editing one image never silently overwrite each other:
the second gets a 412 with what is there now.
"""
from __future__ import annotations

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.resources.datasets import DATASET
from common.api.resources.images import BOX, IMAGE_ID, boxes_view, find_image
from common.api.routes import Route
from common.api.schema import INTEGER, STRING, array, obj
from common.cloud import guarded_objects
from common.domain import layout, request_bodies
from common.domain.labels import parse_label, rows_from_boxes, write_label

IF_MATCH = params.header("If-Match", "the label_generation the edit is based on; 0 when the image has no label",
                         pattern=r"^\"?[0-9]{1,20}\"?$")
IF_NONE_MATCH = params.header("If-None-Match", "* : write only if the image has no label yet", pattern=r"^\*$")
WRITTEN = obj(label_path=STRING, generation=INTEGER)
CONFLICT = obj(error=ERROR_SCHEMA["properties"]["error"], generation=INTEGER, labels=array(BOX))
PRECONDITIONS = {412: ("the label changed since: the body has what is there now", CONFLICT),
                 428: ("neither If-Match nor If-None-Match: *", ERROR_SCHEMA)}


def put_labels(ctx: RequestContext, args: dict) -> dict:
    classes, entry = find_image(ctx, args["dataset"], args["image_id"], with_image=True)
    rows, problems = rows_from_boxes([box.sent() for box in args["body"].labels], classes)
    if problems:
        raise ApiError(400, "nothing was written: " + "; ".join(problems), "labels")
    based_on, path = _based_on(args), _label_path(entry)
    try:
        generation = guarded_objects.write(path, write_label(rows), based_on, ctx.principal.name, "text/plain",
                                           timeout=ctx.deadline_seconds)
    except guarded_objects.Moved as moved:
        raise label_conflict(moved, path, classes) from None
    return {"label_path": path, "generation": generation}


def delete_labels(ctx: RequestContext, args: dict) -> dict:
    classes, entry = find_image(ctx, args["dataset"], args["image_id"])
    based_on, path = _based_on(args), _label_path(entry)
    try:
        guarded_objects.delete(path, based_on, timeout=ctx.deadline_seconds)
    except guarded_objects.Moved as moved:
        raise label_conflict(moved, path, classes) from None
    return {"label_path": path, "generation": 0}


def _based_on(args: dict) -> int:
    if args["If-Match"] is not None:
        return int(args["If-Match"].strip('"'))
    if args["If-None-Match"] is not None:
        return 0
    raise ApiError(428, "send If-Match: <label_generation> (from the image; 0 when it has no label) "
                        "or If-None-Match: * so that no one else's edit is overwritten", "If-Match")


def _label_path(entry: dict) -> str:
    image, label = entry.get("image"), entry.get("label")
    if label:
        return label["path"]
    if image:
        return layout.label_path_for(image["path"])
    raise ApiError(404, "this entry has neither an image nor a label now", "image_id")


def label_conflict(moved: guarded_objects.Moved, path: str, classes: list[str] | None) -> ApiError:
    boxes = [box.to_dict() for box in parse_label(moved.data, path).boxes] if moved.data is not None else []
    error = ApiError(412, f"the label is at generation {moved.generation} now, not the one this edit was "
                          "based on: nothing was written; look at it and edit again", "If-Match")
    error.extra = {"generation": moved.generation, "labels": boxes_view(boxes, classes)}
    return error


ROUTES = [
    Route("PUT", "/datasets/{dataset}/images/{image_id}/labels", put_labels,
          "Replace an image's labels: writes its YOLO label file", WRITTEN,
          params=(DATASET, IMAGE_ID, IF_MATCH, IF_NONE_MATCH), body=request_bodies.Labels, role=access.EDITOR,
          responses=PRECONDITIONS),
    Route("DELETE", "/datasets/{dataset}/images/{image_id}/labels", delete_labels,
          "Remove an image's label file", WRITTEN, params=(DATASET, IMAGE_ID, IF_MATCH, IF_NONE_MATCH),
          role=access.EDITOR, responses=PRECONDITIONS),
]
