"""Who is calling and which request this is: built once per request, here only.

Resources receive a RequestContext and never read headers. A caller is one of:
- the administrator: the stack's API_TOKEN (Secret Manager in production),
  who sees and may do everything;
- a person, signed in with Firebase Authentication (a Firebase ID token);
- a program holding an API key (`yd_...`), which acts as the person who made it.
Every refusal is a 401 that says which of these went wrong, logged with the
route and what is known of the caller, never with the token. A person (or a
key's maker) must also have a verified e-mail address and be admitted by the
sign-up policy (common.domain.joining): else a 403 saying what to do. A key
works only while it is not revoked or expired and its maker's account is
neither disabled nor deleted (read at most ACCOUNT_CHECK_SECONDS before). When
Firebase cannot be asked, a 503 with Retry-After.
"""
from __future__ import annotations

import hmac
import re
import time
import uuid
from dataclasses import dataclass, field

from flask import Request

from common.api.errors import ApiError
from common.cloud import api_key_store, db, identity, people
from common.domain import api_keys, joining
from common.platform import config, log

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True)
class Principal:
    kind: str                 # "anonymous", "admin" or "person"
    uid: str = ""             # the person (for an API key: the person who made it)
    email: str | None = None
    via: str = ""             # "admin_token", "id_token" or "api_key"
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    @property
    def is_person(self) -> bool:
        return self.kind == "person"

    @property
    def name(self) -> str:
        """Who, for logs, limits and object metadata."""
        return "admin" if self.is_admin else self.uid


ANONYMOUS = Principal("anonymous")
ADMINISTRATOR = Principal("admin", via="admin_token")


@dataclass(frozen=True)
class RequestContext:
    principal: Principal
    request_id: str
    method: str
    path: str
    deadline_seconds: float  # what one cloud call of this request may take, retries included
    origin: str | None = None  # the browser's Origin, for upload sessions it may use
    started: float = 0.0  # time.perf_counter() before the caller was authenticated (prediction's Server-Timing)
    memo: dict = field(default_factory=dict, compare=False)  # what this request read once (members)

    def deadline(self) -> dict:
        """retry= and timeout= that bound one Firestore or Pub/Sub call (retries included) to the request's deadline."""
        return db.deadline(self.deadline_seconds)


def request_id_of(request: Request) -> str:
    """The caller's X-Request-Id when it is a plain id, else the trace id Cloud
    Run puts in X-Cloud-Trace-Context or traceparent (the id its log lines are
    grouped under), else a new one."""
    given = request.headers.get("X-Request-Id", "")
    if _SAFE_ID.fullmatch(given):
        return given
    return log.trace_id_of(request.headers) or uuid.uuid4().hex


def build(request: Request, request_id: str, public: bool) -> RequestContext:
    started = time.perf_counter()
    principal = ANONYMOUS if public else authenticate(request)
    return RequestContext(principal=principal, request_id=request_id, method=request.method,
                          path=request.path, deadline_seconds=config.api_deadline(),
                          origin=request.headers.get("Origin"), started=started)


def authenticate(request: Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _refused(request, "missing Authorization header: send 'Authorization: Bearer <ID token or API key>'")
    if scheme.lower() != "bearer" or not token or " " in token.strip():
        raise _refused(request, "malformed Authorization header: expected 'Bearer <ID token or API key>'")
    if hmac.compare_digest(token.encode(), config.api_token().encode()):
        return ADMINISTRATOR
    if api_keys.looks_like_key(token):
        return _key_holder(request, token)
    try:
        person = identity.verify(token)
    except identity.IdentityRefused as refused:
        raise _refused(request, str(refused)) from None
    except identity.IdentityUnavailable as down:
        raise _unavailable(request, down) from None
    _admit(request, person)
    return Principal("person", person.uid, person.email, via="id_token")


def _key_holder(request: Request, key: str) -> Principal:
    prefix = api_keys.shown_prefix(key)
    record = api_key_store.find(key, config.api_deadline())
    if record is None:
        raise _refused(request, "unknown or revoked API key", key_prefix=prefix)
    expired = api_keys.expired_refusal(record, time.time(), config.api_key_days()[1])
    if expired:
        raise _refused(request, expired, key_prefix=prefix)
    try:
        maker = identity.account(record["uid"])
    except identity.IdentityUnavailable as down:
        raise _unavailable(request, down) from None
    if maker is None or maker.disabled:
        raise _refused(request, f"the account that made this API key is {'deleted' if maker is None else 'disabled'}",
                       key_prefix=prefix)
    _admit(request, maker)
    return Principal("person", record["uid"], record["email"], via="api_key", key_id=record["id"])


def _admit(request: Request, person: identity.Person) -> None:
    """A 403 unless the person's e-mail is verified and the sign-up policy admits them."""
    refusal = joining.unverified_refusal(person.email) if not (person.email and person.email_verified) else \
        people.admission_refusal(person.uid, person.email, config.api_deadline())
    if refusal:
        log.warning("person not admitted", reason=refusal, uid=person.uid, method=request.method, path=request.path)
        raise ApiError(403, refusal)


def _unavailable(request: Request, down: Exception) -> ApiError:
    log.warning("identity service unavailable", error=str(down)[:300], method=request.method, path=request.path)
    return ApiError(503, f"the identity service could not check this sign-in ({down}); try again",
                    headers={"Retry-After": "5"})


def _refused(request: Request, reason: str, **known) -> ApiError:
    log.warning("sign-in refused", reason=reason, method=request.method, path=request.path, **known)
    return _unauthorized(reason)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})
