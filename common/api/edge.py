"""The router: one place that matches a route, builds the request context,
reads the declared parameters, calls the resource and turns every outcome into
JSON. Each HTTP function serves its own routes through one Router: the API
(common.api.router) and the prediction function (functions/predict/main.py).

A refusal of a layer below (common.domain.refusals) becomes its status here, an
ApiError its own; a cloud service that fails or does not answer in time is a
503, anything unexpected a 500; each carries the request id, which the log line
carries too.
"""
from __future__ import annotations

import json
import re
import traceback
from typing import Any
from collections.abc import Callable, Mapping

from flask import Request, Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from common.api import access, context, params, rate_limiting
from common.api.errors import ApiError, error_body, is_unavailable
from common.api.routes import Route
from common.domain import bodies, bounded_json
from common.domain.refusals import Refused
from common.domain.storable import quoted
from common.platform import config, log

# Every answer: never framed (clickjacking), never sniffed into another type, no address leaked to where a
# link goes. A JSON answer or an image loads nothing; the page's HTML brings its own policy (resources/page.py).
SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}
HSTS = "max-age=31536000; includeSubDomains"


class Router:
    """Serves `routes`. `guard(route)` runs before the caller is known (the API's refusal to serve with weak
    secrets); `cors`: headers every answer carries, for routes any origin may call (a browser's preflight is
    answered 204 with them)."""

    def __init__(self, routes: list[Route], name: str, guard: Callable[[Route], None] | None = None,
                 cors: dict[str, str] | None = None):
        self.routes, self.name, self.guard, self.cors = routes, name, guard, cors or {}
        self._rules = Map([Rule(r.rule, endpoint=i, methods=[r.method]) for i, r in enumerate(routes)],
                          strict_slashes=False, merge_slashes=False)

    def handle(self, request: Request) -> Response:
        request_id = context.request_id_of(request)
        try:
            response = self._answer(request, request_id)
        except Refused as refused:
            response = _error(ApiError.of(refused), request_id)
        except ApiError as exc:
            response = _error(exc, request_id)
        except HTTPException as exc:  # werkzeug's own refusals while a handler reads its body (413)
            response = _json(exc.code or 500, error_body(exc.code or 500, exc.description or exc.name, request_id),
                             request_id)
        except Exception as exc:
            response = self._failure(exc, request, request_id)
        return self._secured(response, request)

    def framework_error(self, error: HTTPException, request: Request) -> Response:
        """An HTTP error raised before the router (the framework's own routing refuses a path): JSON too."""
        request_id = context.request_id_of(request)
        status = error.code or 500
        return self._secured(_json(status, error_body(status, error.description or error.name, request_id),
                                   request_id), request)

    def _answer(self, request: Request, request_id: str) -> Response:
        if self.cors and request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return Response(status=204, headers={"X-Request-Id": request_id})  # a browser's preflight
        declared, path_args = self._match(request)
        if self.guard:
            self.guard(declared)
        if declared.raw_body is not None:
            declared.raw_body.refuse_declared_size(request)
        ctx = context.build(request, request_id, declared.public)
        args = params.read_all(declared.params, path_args, request.args, request.headers)
        if declared.role:
            access.require(ctx, args["dataset"], declared.role)
        if declared.rate_limited:
            _count_against_limit(ctx, declared.rate_limited)
        if declared.body is not None:
            args["body"] = _body(request, declared.body, declared.body_optional)
        if declared.raw_body is not None:
            args["request"] = request  # the handler reads it, after its own checks
        answer = declared.handler(ctx, args)
        if isinstance(answer, Response):  # a route that is not JSON: the page's files, images
            answer.headers["X-Request-Id"] = request_id
            return answer
        status, body, headers = _parts(answer, declared.status)
        return _json(status, body, request_id, headers)

    def _match(self, request: Request) -> tuple[Route, Mapping[str, Any]]:
        try:
            endpoint, path_args = self._rules.bind("", path_info=request.path).match(method=request.method)
        except NotFound:
            raise ApiError(404, f"no route {quoted(request.path)}") from None
        except MethodNotAllowed:
            allowed = self._methods_of_most_specific(request.path)
            raise ApiError(405, f"{request.method} is not allowed on {quoted(request.path)}; use {', '.join(allowed)}",
                           headers={"Allow": ", ".join(allowed)}) from None
        return self.routes[endpoint], path_args

    def _methods_of_most_specific(self, path: str) -> list[str]:
        """The methods of the resource `path` names. An image id may hold slashes, so
        .../images/a/labels also reads as the image "a/labels"; the resource meant is
        the route whose template spells out more of the path (…/{image_id}/labels)."""
        matching = [route for route in self.routes if _template(route).fullmatch(path)]
        most = max(len(re.sub(r"\{\w+\}", "", route.path)) for route in matching)
        methods = {route.method for route in matching if len(re.sub(r"\{\w+\}", "", route.path)) == most}
        return sorted(methods | ({"HEAD"} if "GET" in methods else set()))

    def _secured(self, response: Response, request: Request) -> Response:
        for name, value in {**SECURITY_HEADERS, **self.cors}.items():
            response.headers.setdefault(name, value)
        # TLS ends at Google's front end, which says so in X-Forwarded-Proto; a browser ignores HSTS over http.
        if request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https":
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    def _failure(self, exc: Exception, request: Request, request_id: str) -> Response:
        unavailable = is_unavailable(exc)
        status = 503 if unavailable else 500
        message = (f"a cloud service did not answer in time ({type(exc).__name__}); try again" if unavailable
                   else "unexpected error; the log has it under this request_id")
        log.error(f"{self.name} request failed", request_id=request_id, method=request.method, path=request.path,
                  status=status, error=repr(exc)[:2000], traceback=traceback.format_exc())
        return _json(status, error_body(status, message, request_id), request_id,
                     {"Retry-After": "1"} if unavailable else {})


def _parts(answer, status: int) -> tuple[int, dict, dict]:
    """A handler's answer: a body, (status, body), or (status, body, headers)."""
    if not isinstance(answer, tuple):
        return status, answer, {}
    return (*answer, {}) if len(answer) == 2 else answer


def _body(request: Request, model: type[bodies.Body], optional: bool) -> bodies.Body:
    """The JSON body as the route's model (common.domain.bodies): a 400 naming each field at fault when
    it breaks the model. A body left out reads as {} where the route's body may be left out."""
    raw = _raw_body(request)
    if not raw.strip():
        return bodies.parse(model, {} if optional else None)
    try:
        document = bounded_json.loads(raw)
    except bounded_json.TooDeep as exc:
        raise ApiError(400, f"the body is refused: {exc}", "body") from None
    except ValueError:
        raise ApiError(400, "the body is not JSON: send a JSON object with Content-Type: application/json",
                       "body") from None
    return bodies.parse(model, document)


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


def _template(route: Route) -> re.Pattern:
    def parameter(match: re.Match) -> str:
        param = next(p for p in route.params if p.name == match[1] and p.location == "path")
        return ".+" if param.holds_slashes else "[^/]+"
    return re.compile(re.sub(r"\{(\w+)\}", parameter, re.escape(route.path).replace(r"\{", "{").replace(r"\}", "}")))


def _error(exc: ApiError, request_id: str) -> Response:
    return _json(exc.status, exc.body(request_id), request_id, exc.headers)


def _json(status: int, body: dict, request_id: str, headers: dict | None = None) -> Response:
    data = json.dumps(body).encode()
    # Given as an iterator (a "streamed" answer), so that functions-framework's after-request hook does not read
    # whatever the handler left of the body (a refused one: a stranger's, or one over the cap) into memory
    # before answering; gunicorn discards those bytes in small reads once the answer is sent.
    return Response(iter([data]), status=status, mimetype="application/json",
                    headers={"X-Request-Id": request_id, "Content-Length": str(len(data)), **(headers or {})})
