"""The prediction function's HTTP side: POST /models/{model_id}/predict.

The caller is authenticated by the API's own request context and every error
has the API's JSON shape. The body is one of: the raw bytes of one image;
multipart/form-data with `file` parts (a batch); JSON {"images": [gs:// URIs]}.
Parameters come from the query string, or the JSON body or form fields.
"""
from __future__ import annotations

import json
import re
import time
import traceback

from flask import Request, Response
from werkzeug.exceptions import HTTPException

from common.api import context
from common.api.context import RequestContext
from common.api.errors import ApiError, error_body, is_unavailable
from common.domain.prediction import Thresholds
from common.platform import log
from common.services import predict

MAX_BODY_BYTES = 32 * 1024 * 1024
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
    """The answer, and its Server-Timing: milliseconds spent on the caller, the body, the model, and each stage."""
    started = time.perf_counter()
    model_id = _route(request)
    ctx = context.build(request, request_id, public=False)
    spent = {"auth": time.perf_counter()}
    _check_size(request)
    fields, sources = _read_body(request, ctx)
    given = _parameters(request.args, fields)
    decoding = predict.Decoding(sources)  # while the model is looked up
    spent["body"] = time.perf_counter()
    model = predict.find_model(model_id, ctx)
    session = predict.loaded(model)
    spent["model"] = time.perf_counter()
    thresholds = Thresholds(conf=given["conf"], iou=given["iou"], max_det=given["max_det"],
                            classes=predict.class_filter(given["classes"], session.names))
    answer = predict.predict(model, session, decoding, thresholds)
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


def _check_size(request: Request) -> None:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise _too_large(request.content_length)
    request.max_content_length = MAX_BODY_BYTES  # also bounds a body sent without Content-Length


def _too_large(size: int) -> ApiError:
    return ApiError(413, f"the body is {size} bytes; at most {MAX_BODY_BYTES} ({MAX_BODY_BYTES >> 20} MiB)")


# ---- the body ------------------------------------------------------------------

def _read_body(request: Request, ctx: RequestContext) -> tuple[dict, list[predict.ImageSource]]:
    """Parameters given in the body, and the images."""
    if request.mimetype == "multipart/form-data":
        return _form(request)
    if request.mimetype == "application/json":
        return _json_body(request, ctx)
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise _too_large(len(data))
    if not data:
        raise ApiError(400, "the body is empty: send the bytes of an image, multipart/form-data with 'file' "
                            "parts, or JSON {\"images\": [\"gs://...\"]}", "body")
    return {}, [predict.ImageSource("body", data)]


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


def _json_body(request: Request, ctx: RequestContext) -> tuple[dict, list[predict.ImageSource]]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("images"), list):
        raise ApiError(400, "the JSON body must be an object {\"images\": [\"gs://<bucket>/datasets/...\"], "
                            "\"conf\"?, \"iou\"?, \"max_det\"?, \"classes\"?}", "images")
    unknown = sorted(set(body) - {"images", *PARAMETERS})
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}", unknown[0])
    _check_batch(len(body["images"]), "images")
    fields = {name: body[name] for name in PARAMETERS if name in body}
    return fields, predict.bucket_sources(body["images"], ctx)


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
    return Response(json.dumps(body), status=status, mimetype="application/json",
                    headers={"X-Request-Id": request_id, **CORS, **(headers or {})})

