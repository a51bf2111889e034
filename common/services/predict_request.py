"""The prediction function's HTTP side: POST /models/{model_id}/predict.

The caller is authenticated by the API's own request context and every error
has the API's JSON shape. The body is one of: the raw bytes of one image;
multipart/form-data with `file` parts (a batch); JSON {"images": [gs:// URIs]}.
Parameters come from the query string, or the JSON body or form fields.

Order matters: the caller is authenticated, counted against the prediction rate
limit and the model authorized (404 as the API answers) before a byte of the body
is read; the body is read no further than its cap (413).
"""
from __future__ import annotations

import json
import re
import time
import traceback

from flask import Request, Response
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from common.api import context, rate_limiting
from common.api.context import RequestContext
from common.api.errors import ApiError, error_body, is_unavailable
from common.domain.prediction import Thresholds
from common.platform import config, log
from common.services import predict

MAX_JSON_BYTES = 64 * 1024  # a JSON body only names images: 32 URIs of at most 1 KiB each, and parameters
RATE_LIMIT_KIND = "predict"
ROUTE = re.compile(r"/models/(?P<model_id>[^/]+)/predict/?")
PARAMETERS = ("conf", "iou", "max_det", "classes")
NUMBERS = {"conf": (0.0, 1.0, 0.25), "iou": (0.0, 1.0, 0.7)}
MAX_DET = (1, 1000, 300)


# The page (served by the API, another origin) calls prediction from the browser with a bearer token, never a
# cookie, so any origin may: the token is the check.
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Request-Id",
        "Access-Control-Allow-Methods": "POST", "Access-Control-Expose-Headers": "X-Request-Id, Server-Timing",
        "Access-Control-Max-Age": "3600"}


def handle(request: Request) -> Response:
    request_id = context.request_id_of(request)
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        return Response(status=204, headers={**CORS, "X-Request-Id": request_id})  # a browser's preflight
    try:
        answer, timing = _answer(request, request_id)
        return _json(200, answer, request_id, {"Server-Timing": timing})
    except ApiError as exc:
        return _json(exc.status, exc.body(request_id), request_id, exc.headers)
    except HTTPException as exc:  # werkzeug's own refusals while reading the body (413)
        return framework_error(exc, request)
    except Exception as exc:  # noqa: BLE001 - every answer is JSON
        return _failure(exc, request, request_id)


def _answer(request: Request, request_id: str) -> tuple[dict, str]:
    """The answer, and its Server-Timing: milliseconds spent on the caller, the model, the body, and each stage."""
    started = time.perf_counter()
    model_id = _route(request)
    cap = config.predict_max_bytes()
    _check_declared_size(request, cap)
    ctx = context.build(request, request_id, public=False)
    _count_against_limit(ctx)
    spent = {"auth": time.perf_counter()}
    model = predict.find_model(model_id, ctx)  # before a byte of the body is read
    session = predict.loaded(model)
    spent["model"] = time.perf_counter()
    fields, sources = _read_body(request, ctx, cap)
    given = _parameters(request.args, fields)
    thresholds = Thresholds(conf=given["conf"], iou=given["iou"], max_det=given["max_det"],
                            classes=predict.class_filter(given["classes"], session.names))
    spent["body"] = time.perf_counter()
    answer = predict.predict(model, session, predict.Decoding(sources, session, config.predict_max_pixels()),
                             thresholds)
    if request.mimetype not in ("multipart/form-data", "application/json") and "error" in answer["predictions"][0]:
        error = answer["predictions"][0]["error"]
        raise ApiError(400, f"the body is not an image prediction can run on: {error['message']}", "body")
    return answer, _server_timing(started, spent, answer["speed_ms"])


def _server_timing(started: float, marks: dict[str, float], stages: dict[str, float]) -> str:
    spent, previous = {}, started
    for name, mark in marks.items():
        spent[name], previous = (mark - previous) * 1000, mark
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in {**spent, **stages}.items())


def _route(request: Request) -> str:
    match = ROUTE.fullmatch(request.path)
    if not match:
        raise ApiError(404, f"no route {request.path[:200]!r}; POST /models/{{model_id}}/predict")
    if request.method != "POST":
        raise ApiError(405, f"{request.method} is not allowed on {request.path[:200]!r}; use POST",
                       headers={"Allow": "POST"})
    return match["model_id"]


def _check_declared_size(request: Request, cap: int) -> None:
    """A body whose Content-Length is over the cap is refused before anything else; one sent without it
    (chunked) is read no further than the cap."""
    if (request.content_length or 0) > cap:
        raise _too_large(cap, request.content_length)
    # One byte more than the cap, so that reading cap + 1 bytes of a chunked body tells one over the cap
    # (werkzeug stops such a stream at the limit and raises only on the read after).
    request.max_content_length = cap + 1
    request.max_form_parts = 2 * (predict.MAX_BATCH + len(PARAMETERS))  # more parts than that: a 413 too


def _too_large(cap: int, size: int | None = None) -> ApiError:
    told = f"{size} bytes" if size is not None else "larger than that"
    return ApiError(413, f"the body is {told}; a prediction request takes at most {cap} bytes ({cap >> 20} MiB) "
                         f"of images and {predict.MAX_BATCH} images: send fewer or smaller images per request",
                    "body")


def _count_against_limit(ctx: RequestContext) -> None:
    """Prediction requests are counted per person and window."""
    limit, seconds = config.predict_rate_limit()
    rate_limiting.count_against_limit(ctx, RATE_LIMIT_KIND, limit, seconds, "prediction")


# ---- the body ------------------------------------------------------------------

def _read_body(request: Request, ctx: RequestContext, cap: int) -> tuple[dict, list[predict.ImageSource]]:
    """Parameters given in the body, and the images."""
    try:
        if request.mimetype == "multipart/form-data":
            return _form(request)
        if request.mimetype == "application/json":
            return _json_body(request, ctx, cap)
        return {}, [predict.ImageSource("body", _raw(request, cap))]
    except RequestEntityTooLarge:  # werkzeug's, while it reads a body sent without Content-Length
        raise _too_large(cap) from None


def _raw(request: Request, cap: int) -> bytes:
    data = request.stream.read(cap + 1)
    if len(data) > cap:
        raise _too_large(cap)
    if not data:
        raise ApiError(400, "the body is empty: send the bytes of an image, multipart/form-data with 'file' "
                            "parts, or JSON {\"images\": [\"gs://...\"]}", "body")
    return data


def _form(request: Request) -> tuple[dict, list[predict.ImageSource]]:
    files = request.files.getlist("file")
    unknown = sorted(set(request.files) - {"file"} | set(request.form) - set(PARAMETERS))
    if unknown:
        raise ApiError(400, f"unknown form field {unknown[0]!r}; send 'file' parts and {', '.join(PARAMETERS)}",
                       unknown[0])
    _check_batch(len(files), "file")
    sources = [predict.ImageSource(part.filename or f"file[{i}]", part.read()) for i, part in enumerate(files)]
    fields = {name: (request.form.getlist(name) if name == "classes" else request.form[name])
              for name in PARAMETERS if name in request.form}
    return fields, sources


def _json_body(request: Request, ctx: RequestContext, cap: int) -> tuple[dict, list[predict.ImageSource]]:
    body = _json_document(request)
    if not isinstance(body, dict) or not isinstance(body.get("images"), list):
        raise ApiError(400, "the JSON body must be an object {\"images\": [\"gs://<bucket>/datasets/...\"], "
                            "\"conf\"?, \"iou\"?, \"max_det\"?, \"classes\"?}", "images")
    unknown = sorted(set(body) - {"images", *PARAMETERS})
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}", unknown[0])
    _check_batch(len(body["images"]), "images")
    fields = {name: body[name] for name in PARAMETERS if name in body}
    return fields, predict.bucket_sources(body["images"], ctx, cap)


def _json_document(request: Request):
    """The JSON body, read no further than MAX_JSON_BYTES; None when it is not JSON."""
    data = request.stream.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ApiError(413, f"the JSON body is larger than {MAX_JSON_BYTES} bytes; it only names images "
                            f"(at most {predict.MAX_BATCH}): send the images themselves as multipart/form-data",
                       "body")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's own limit
        return None


def _check_batch(count: int, param: str) -> None:
    if not 1 <= count <= predict.MAX_BATCH:
        raise ApiError(400, f"{param}: {count} images; send 1 to {predict.MAX_BATCH}", param)


# ---- parameters ----------------------------------------------------------------

def _parameters(query, fields: dict) -> dict:
    unknown = next((name for name in query if name not in PARAMETERS), None)
    if unknown is not None:
        raise ApiError(400, f"unknown parameter {unknown[:100]!r}; this route takes {', '.join(PARAMETERS)}", unknown)
    raw = {name: query.get(name) for name in PARAMETERS if name in query}
    if "classes" in query:
        raw["classes"] = [item for value in query.getlist("classes") for item in value.split(",") if item]
    raw.update(fields)
    return {**{name: _number(name, raw.get(name)) for name in NUMBERS}, "max_det": _max_det(raw.get("max_det")),
            "classes": _classes(raw.get("classes"))}


def _number(name: str, value) -> float:
    low, high, default = NUMBERS[name]
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not low <= number <= high:
        raise ApiError(400, f"{name} must be a number from {low:g} to {high:g}, got {str(value)[:100]!r}", name)
    return number


def _max_det(value) -> int:
    low, high, default = MAX_DET
    if value is None:
        return default
    text = str(value)
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
        raise ApiError(400, f"max_det must be an integer from {low} to {high}, got {text[:100]!r}", "max_det")
    return int(text)


def _classes(value) -> list | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items or any(not isinstance(item, (str, int)) or isinstance(item, bool) for item in items):
        raise ApiError(400, "classes must be class names or ids", "classes")
    return items


# ---- answers -------------------------------------------------------------------

def _failure(exc: Exception, request: Request, request_id: str) -> Response:
    unavailable = is_unavailable(exc)
    status = 503 if unavailable else 500
    message = (f"a cloud service did not answer in time ({type(exc).__name__}); try again" if unavailable
               else "unexpected error; the log has it under this request_id")
    log.error("predict request failed", request_id=request_id, path=request.path, status=status,
              error=repr(exc)[:2000], traceback=traceback.format_exc())
    return _json(status, error_body(status, message, request_id), request_id,
                 {"Retry-After": "1"} if unavailable else {})


def framework_error(error: HTTPException, request: Request) -> Response:
    """An HTTP error raised before the handler runs (e.g. the framework's own routing): JSON too."""
    request_id = context.request_id_of(request)
    status = error.code or 500
    return _json(status, error_body(status, error.description or error.name, request_id), request_id)


def _json(status: int, body: dict, request_id: str, headers: dict | None = None) -> Response:
    data = json.dumps(body).encode()
    # Given as an iterator (a "streamed" answer), so that functions-framework's after-request hook does not read
    # whatever the handler left of the body (a refused one: a stranger's, or one over the cap) into memory
    # before answering; gunicorn discards those bytes in small reads once the answer is sent.
    return Response(iter([data]), status=status, mimetype="application/json",
                    headers={"X-Request-Id": request_id, "Content-Length": str(len(data)), **CORS, **(headers or {})})

