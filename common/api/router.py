"""The router: one place that matches a route, builds the request context,
reads the declared parameters, calls the resource and turns every outcome into
JSON. A cloud service that fails or does not answer in time is a 503, anything
unexpected a 500; both carry the request id, which the log line carries too."""
from __future__ import annotations

import json
import re
import traceback

from flask import Request, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from common.api import access, context, openapi, params, rate_limiting
from common.api.errors import ApiError, error_body, is_unavailable
from common.domain import bounded_json
from common.domain.storable import quoted
from common.api.resources import (api_keys, classes, datasets, health, images, issues, labels, members, models,
                                  training, uploads)
from common.api.resources import exports, versions
from common.api.resources import media, page
from common.api.resources import autolabel, files, imports
from common.api.resources import jobs
from common.api.routes import Route
from common.platform import config, log

API_ROUTES: list[Route] = [*health.ROUTES, *datasets.ROUTES, *members.ROUTES, *uploads.ROUTES, *images.ROUTES,
                           *labels.ROUTES, *classes.ROUTES, *issues.ROUTES, *training.ROUTES, *models.ROUTES, *api_keys.ROUTES]
API_ROUTES += [*versions.ROUTES, *exports.ROUTES]
API_ROUTES += [*page.ROUTES, *media.ROUTES]  # the page, and images as bytes for it
API_ROUTES += autolabel.ROUTES
API_ROUTES += imports.ROUTES
API_ROUTES += files.ROUTES
API_ROUTES += jobs.ROUTES  # every kind of job, shown the same way
ROUTES: list[Route] = [*API_ROUTES, openapi.route(API_ROUTES)]
_RULES = Map([Rule(r.rule, endpoint=i, methods=[r.method]) for i, r in enumerate(ROUTES)],
             strict_slashes=False, merge_slashes=False)


def handle(request: Request) -> Response:
    request_id = context.request_id_of(request)
    try:
        response = _answer(request, request_id)
    except ApiError as exc:
        response = _json(exc.status, exc.body(request_id), request_id, exc.headers)
    except Exception as exc:  # noqa: BLE001 - the catch-all: every answer is JSON
        response = _failure(exc, request, request_id)
    return _secured(response, request)


# Fixed documents, served whatever the secrets: the OpenAPI document and the page's files and configuration.
HOLD_NO_SECRET = {"/openapi.json", "/", "/page/config", "/page/{file}"}


def _refuse_weak_secrets() -> None:
    """The instance's first request finds a weak or missing API_TOKEN or PAGE_TOKEN_SECRET (checked once per
    instance while they are sound): every request but for a fixed document is then refused (the health
    check too), and the log says what to set."""
    global _SECRETS_CHECKED
    if _SECRETS_CHECKED:
        return
    problem = config.api_secrets_problem()
    if problem:
        log.error("the API refuses to serve: " + problem)
        raise ApiError(503, "the API is not configured safely; its operator finds why in the log", headers={})
    _SECRETS_CHECKED = True


_SECRETS_CHECKED = False


# Every answer: never framed (clickjacking), never sniffed into another type, no address leaked to where a
# link goes. A JSON answer or an image loads nothing; the page's HTML brings its own policy (resources/page.py).
SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}
HSTS = "max-age=31536000; includeSubDomains"


def _secured(response: Response, request: Request) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # TLS ends at Google's front end, which says so in X-Forwarded-Proto; a browser ignores HSTS over http.
    if request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https":
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def _answer(request: Request, request_id: str) -> Response:
    declared, path_args = _match(request)
    if declared.path not in HOLD_NO_SECRET:
        _refuse_weak_secrets()
    ctx = context.build(request, request_id, declared.public)
    args = params.read_all(declared.params, path_args, request.args, request.headers)
    if declared.role:
        access.require(ctx, args["dataset"], declared.role)
    if declared.rate_limited:
        _count_against_limit(ctx, declared.rate_limited)
    if declared.body is not None:
        args["body"] = _body(request, declared)
    answer = declared.handler(ctx, args)
    if isinstance(answer, Response):  # a route that is not JSON: the page's files, images
        answer.headers["X-Request-Id"] = request_id
        return answer
    status, body = answer if isinstance(answer, tuple) else (declared.status, answer)
    return _json(status, body, request_id)


def _body(request: Request, declared: Route):
    """The JSON body (None when it is not JSON: the handler names what is wrong with it); for a route whose
    body may be left out, {} when it is, and a 400 when it is not an object."""
    raw = _raw_body(request)
    try:
        body = bounded_json.loads(raw) if raw.strip() else None
    except bounded_json.TooDeep as exc:
        raise ApiError(400, f"the body is refused: {exc}", "body") from None
    except ValueError:
        body = None
    if not declared.body_optional:
        return body
    if not raw.strip():
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "the body, when there is one, must be a JSON object", "body")
    return body


def _raw_body(request: Request) -> bytes:
    """The body's bytes, never more than the cap: refused from its Content-Length before a byte is read,
    and a body without one (chunked) is read no further than one byte past the cap."""
    cap = config.api_max_body_bytes()
    if request.content_length is not None and request.content_length > cap:
        raise _too_large(cap)
    data = request.stream.read(cap + 1)
    if len(data) > cap:
        raise _too_large(cap)
    return data


def _too_large(cap: int) -> ApiError:
    return ApiError(413, f"the body is larger than the API takes ({cap} bytes); send fewer items per request",
                    "body")


def _count_against_limit(ctx: context.RequestContext, kind: str) -> None:
    """Expensive requests are counted per person and window."""
    limit, seconds = config.rate_limit_of(kind)
    rate_limiting.count_against_limit(ctx, kind, limit, seconds, kind)


def _match(request: Request) -> tuple[Route, dict]:
    try:
        endpoint, path_args = _RULES.bind("", path_info=request.path).match(method=request.method)
    except NotFound:
        raise ApiError(404, f"no route {quoted(request.path)}") from None
    except MethodNotAllowed:
        allowed = _methods_of_most_specific(request.path)
        raise ApiError(405, f"{request.method} is not allowed on {quoted(request.path)}; use {', '.join(allowed)}",
                       headers={"Allow": ", ".join(allowed)}) from None
    return ROUTES[endpoint], path_args


def _methods_of_most_specific(path: str) -> list[str]:
    """The methods of the resource `path` names. An image id may hold slashes, so
    .../images/a/labels also reads as the image "a/labels"; the resource meant is
    the route whose template spells out more of the path (…/{image_id}/labels)."""
    matching = [route for route in ROUTES if _template(route).fullmatch(path)]
    most = max(len(re.sub(r"\{\w+\}", "", route.path)) for route in matching)
    methods = {route.method for route in matching if len(re.sub(r"\{\w+\}", "", route.path)) == most}
    return sorted(methods | ({"HEAD"} if "GET" in methods else set()))


def _template(route: Route) -> re.Pattern:
    def parameter(match: re.Match) -> str:
        param = next(p for p in route.params if p.name == match[1] and p.location == "path")
        return ".+" if param.holds_slashes else "[^/]+"
    return re.compile(re.sub(r"\{(\w+)\}", parameter, re.escape(route.path).replace(r"\{", "{").replace(r"\}", "}")))


def _failure(exc: Exception, request: Request, request_id: str) -> Response:
    unavailable = is_unavailable(exc)
    status = 503 if unavailable else 500
    message = (f"a cloud service did not answer in time ({type(exc).__name__}); try again" if unavailable
               else "unexpected error; the log has it under this request_id")
    log.error("api request failed", request_id=request_id, method=request.method, path=request.path,
              status=status, error=repr(exc)[:2000], traceback=traceback.format_exc())
    return _json(status, error_body(status, message, request_id), request_id,
                 {"Retry-After": "1"} if unavailable else {})


def _json(status: int, body: dict, request_id: str, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json",
                    headers={"X-Request-Id": request_id, **(headers or {})})


def framework_error(error: HTTPException, request: Request) -> Response:
    """An HTTP error raised before the router (the framework's own routing refuses a path): JSON too."""
    request_id = context.request_id_of(request)
    status = error.code or 500
    return _secured(_json(status, error_body(status, error.description or error.name, request_id), request_id),
                    request)
