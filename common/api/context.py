"""Who is calling and which request this is: built once per request, here only.

Resources receive a RequestContext and never read headers. Today the only
caller is the holder of the shared API_TOKEN; another kind of caller (a
Firebase ID token, an API key) is one more branch in `authenticate` and one
more Principal kind, with no change to the resources.
"""
from __future__ import annotations

import hmac
import re
import uuid
from dataclasses import dataclass

from flask import Request

from common.api.errors import ApiError
from common.cloud import db
from common.platform import config

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class Principal:
    kind: str  # "anonymous" or "api_token"
    id: str

    @property
    def is_admin(self) -> bool:
        return self.kind == "api_token"


ANONYMOUS = Principal("anonymous", "")
SHARED_TOKEN_HOLDER = Principal("api_token", "shared")


@dataclass(frozen=True)
class RequestContext:
    principal: Principal
    request_id: str
    method: str
    path: str
    deadline_seconds: float  # what one cloud call of this request may take, retries included

    def deadline(self) -> dict:
        """retry= and timeout= that bound one Firestore or Pub/Sub call (retries included) to the request's deadline."""
        return db.deadline(self.deadline_seconds)


def request_id_of(request: Request) -> str:
    """The caller's X-Request-Id when it is a plain id, else the trace id Cloud
    Run puts in X-Cloud-Trace-Context, else a new one."""
    given = request.headers.get("X-Request-Id", "")
    if _SAFE_ID.fullmatch(given):
        return given
    trace = request.headers.get("X-Cloud-Trace-Context", "").partition("/")[0]
    return trace if _TRACE_ID.fullmatch(trace) else uuid.uuid4().hex


def build(request: Request, request_id: str, public: bool) -> RequestContext:
    principal = ANONYMOUS if public else authenticate(request)
    return RequestContext(principal=principal, request_id=request_id, method=request.method,
                          path=request.path, deadline_seconds=config.api_deadline())


def authenticate(request: Request) -> Principal:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <API_TOKEN>'")
    if not hmac.compare_digest(token.encode(), config.api_token().encode()):
        raise _unauthorized("wrong bearer token")
    return SHARED_TOKEN_HOLDER


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})
