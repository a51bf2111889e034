"""POST /models/{model_id}/predict: served by the prediction function alone (functions/predict/main.py),
through the same router as the API, which documents it in /openapi.json.

The body is one of: the raw bytes of one image; multipart/form-data with `file` parts (a batch); JSON
{"images": [gs:// URIs]}. Parameters come from the query string, or the form fields or JSON body (which win).

Order matters: a Content-Length over the cap is refused first (413); then the caller is authenticated, counted
against the prediction rate limit (both by the router) and the model authorized (404 as the API answers)
before a byte of the body is read; the body is read no further than its cap.

This module stays light: the API imports it to document the route, so the model runtime (numpy, Pillow,
ONNX Runtime: common.services.predict) is imported only where a prediction is answered.
"""
from __future__ import annotations

import json
import time

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.openapi import ERROR_REF
from common.api.resources.models import MODEL_ID
from common.api.routes import RawBody, Route
from common.api.schema import INTEGER, NUMBER, STRING, array, nullable, obj
from common.domain import bodies, bounded_json
from common.domain.prediction_request import MAX_BATCH, PredictImages
from common.platform import config
from common.platform.ttl_cache import TtlCache

MAX_JSON_BYTES = 64 * 1024  # a JSON body only names images: 32 URIs of at most 1 KiB each, and parameters
CONF = params.number("conf", "the confidence a box needs at least", 0.0, 1.0, 0.25)
IOU = params.number("iou", "the overlap (IoU) above which NMS keeps only the more confident box", 0.0, 1.0, 0.7)
MAX_DET = params.integer("max_det", "boxes per image at most", 1, 1000, 300)
CLASSES = params.items("classes", "only these classes: names or ids, repeated or separated by commas")
PARAMETERS = (CONF, IOU, MAX_DET, CLASSES)
PARAMETER_NAMES = tuple(param.name for param in PARAMETERS)
# The page (served by the API, another origin) calls prediction from the browser with a bearer token, never a
# cookie, so any origin may: the token is the check.
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Request-Id",
        "Access-Control-Allow-Methods": "POST", "Access-Control-Expose-Headers": "X-Request-Id, Server-Timing",
        "Access-Control-Max-Age": "3600"}


def predict(ctx: RequestContext, args: dict) -> tuple[int, dict, dict]:
    """The answer, and its Server-Timing: milliseconds spent on the caller, the model, the body, and each stage."""
    from common.services import predict as service  # the model runtime: here, not when the API documents this

    request: Request = args["request"]
    spent = {"auth": time.perf_counter()}
    model = service.find_model(args["model_id"], _may_see(ctx), ctx.deadline_seconds)  # before the body is read
    session = service.loaded(model)
    spent["model"] = time.perf_counter()
    fields, sources = _read_body(request, ctx, config.predict_max_bytes())
    given = {**{name: args[name] for name in PARAMETER_NAMES}, **fields}
    thresholds = service.Thresholds(conf=given["conf"], iou=given["iou"], max_det=given["max_det"],
                                    classes=service.class_filter(given["classes"], session.names))
    spent["body"] = time.perf_counter()
    answer = service.predict(model, session, service.Decoding(sources, session, config.predict_max_pixels()),
                             thresholds)
    if request.mimetype not in ("multipart/form-data", "application/json") and "error" in answer["predictions"][0]:
        error = answer["predictions"][0]["error"]
        raise ApiError(400, f"the body is not an image prediction can run on: {error['message']}", "body")
    return 200, answer, {"Server-Timing": _server_timing(ctx.started, spent, answer["speed_ms"])}


# Whom prediction let in, kept PREDICT_ACCESS_SECONDS per instance (a refusal is never kept): a person removed
# from a dataset stops predicting within that period, as ingest stops accepting their uploads within its 5 s
# (common.cloud.uploader) and every route stops a disabled account within ACCOUNT_CHECK_SECONDS (30 s). A
# prediction only reads a model; the period spares the dataset's members read from each request.
_ADMITTED: TtlCache[bool] = TtlCache(config.predict_access_seconds)


def _may_see(ctx: RequestContext):
    def may_see(dataset: str) -> bool:
        if config.predict_access_seconds() <= 0:
            return access.may_see(ctx, dataset)
        caller = (ctx.principal.kind, ctx.principal.uid, dataset)
        return _ADMITTED.get(caller, lambda: access.may_see(ctx, dataset), keep=bool)
    return may_see


def _server_timing(started: float, marks: dict[str, float], stages: dict[str, float]) -> str:
    spent, previous = {}, started
    for name, mark in marks.items():
        spent[name], previous = (mark - previous) * 1000, mark
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in {**spent, **stages}.items())


def _too_large(size: int | None = None, cap: int | None = None) -> ApiError:
    cap = cap or config.predict_max_bytes()
    told = f"{size} bytes" if size is not None else "larger than that"
    return ApiError(413, f"the body is {told}; a prediction request takes at most {cap} bytes ({cap >> 20} MiB) "
                         f"of images and {MAX_BATCH} images: send fewer or smaller images per request", "body")


# ---- the body ------------------------------------------------------------------

def _read_body(request: Request, ctx: RequestContext, cap: int) -> tuple[dict, list]:
    """Parameters given in the body, and the images."""
    from common.services.predict import ImageSource
    request.max_form_parts = 2 * (MAX_BATCH + len(PARAMETERS))  # more parts than that: a 413 too
    try:
        if request.mimetype == "multipart/form-data":
            return _form(request)
        if request.mimetype == "application/json":
            return _json_body(request, ctx, cap)
        return {}, [ImageSource("body", _raw(request, cap))]
    except RequestEntityTooLarge:  # werkzeug's, while it reads a body sent without Content-Length
        raise _too_large(cap=cap) from None


def _raw(request: Request, cap: int) -> bytes:
    data = request.stream.read(cap + 1)
    if len(data) > cap:
        raise _too_large(cap=cap)
    if not data:
        raise ApiError(400, "the body is empty: send the bytes of an image, multipart/form-data with 'file' "
                            "parts, or JSON {\"images\": [\"gs://...\"]}", "body")
    return data


def _form(request: Request) -> tuple[dict, list]:
    from common.services.predict import ImageSource
    files = request.files.getlist("file")
    unknown = sorted(set(request.files) - {"file"} | set(request.form) - set(PARAMETER_NAMES))
    if unknown:
        raise ApiError(400, f"unknown form field {unknown[0]!r}; send 'file' parts and {', '.join(PARAMETER_NAMES)}",
                       unknown[0])
    _check_batch(len(files), "file")
    sources = [ImageSource(part.filename or f"file[{i}]", part.read()) for i, part in enumerate(files)]
    fields = {param.name: _field(param, request.form.getlist(param.name) if param is CLASSES
                                 else request.form[param.name])
              for param in PARAMETERS if param.name in request.form}
    return fields, sources


def _json_body(request: Request, ctx: RequestContext, cap: int) -> tuple[dict, list]:
    from common.services import predict as service
    body = bodies.parse(PredictImages, _json_document(request))
    given = body.model_dump(exclude_none=True)
    fields = {param.name: _field(param, given[param.name]) for param in PARAMETERS if param.name in given}
    return fields, service.bucket_sources(list(body.images), _may_see(ctx), ctx.deadline_seconds, cap)


def _json_document(request: Request) -> object:
    """The JSON body, read no further than MAX_JSON_BYTES."""
    data = request.stream.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ApiError(413, f"the JSON body is larger than {MAX_JSON_BYTES} bytes; it only names images "
                            f"(at most {MAX_BATCH}): send the images themselves as multipart/form-data", "body")
    try:
        return bounded_json.loads(data)
    except ValueError as exc:  # not JSON, or nested too deep (bounded_json.TooDeep says so)
        raise ApiError(400, f"the body is not JSON prediction reads ({exc}): send {{\"images\": "
                            "[\"gs://<bucket>/datasets/...\"]}", "body") from None


def _check_batch(count: int, param: str) -> None:
    if not 1 <= count <= MAX_BATCH:
        raise ApiError(400, f"{param}: {count} images; send 1 to {MAX_BATCH}", param)


def _field(param: params.Param, value):
    """A parameter given in the body, read by the same declaration as the query's: a JSON number or text, or
    for classes a list of names or ids (a form's repeated field); null is the default."""
    if value is None:
        return param.read(None)
    if param is CLASSES:
        values = value if isinstance(value, list) else [value]
        if not values or any(not isinstance(item, (str, int)) or isinstance(item, bool) for item in values):
            raise ApiError(400, "classes must be class names or ids", "classes")
        return values
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise param.invalid(_EXPECTED[param.schema["type"]], json.dumps(value)[:100])
    return param.read(str(value))


_EXPECTED = {"number": "a number", "integer": "an integer"}


# ---- the declaration -------------------------------------------------------------

BOX = obj(class_id=INTEGER, class_name=nullable(STRING), confidence=NUMBER, x1=NUMBER, y1=NUMBER, x2=NUMBER,
          y2=NUMBER, cx=NUMBER, cy=NUMBER, w=NUMBER, h=NUMBER)
PREDICTION = obj(required=("source", "width", "height", "boxes"), source=STRING, width=nullable(INTEGER),
                 height=nullable(INTEGER), boxes=array(BOX),
                 error=obj(code=STRING, message=STRING))  # an image that could not be predicted, and why
ANSWER = obj(model_id=STRING, classes=array(STRING), predictions=array(PREDICTION),
             speed_ms={"type": "object", "additionalProperties": NUMBER})
BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}
IMAGES = RawBody(
    content={"image/*": {"schema": BINARY},
             "multipart/form-data": {"schema": obj(required=("file",), file=array(BINARY),
                                                   **{p.name: p.schema for p in PARAMETERS})},
             "application/json": {"schema": PredictImages.model_json_schema()}},
    cap=config.predict_max_bytes, refusal=_too_large)

ROUTES = [
    Route("POST", "/models/{model_id}/predict", predict,
          f"Predict boxes on 1 to {MAX_BATCH} images with a registered model's ONNX weights (viewer of its "
          "dataset); served by the prediction function (PREDICT_URL), not the API", ANSWER,
          params=(MODEL_ID, *PARAMETERS), raw_body=IMAGES, rate_limited="prediction",
          responses={409: ("the model's ONNX weights cannot predict (the export failed, or they do not load)",
                           ERROR_REF),
                     413: ("more bytes of images than a request takes", ERROR_REF)}),
]
