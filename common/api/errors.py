"""The one error shape: {"error": {"status", "message", "param"?, "request_id"}}."""
from __future__ import annotations

from common.api.schema import nullable, obj
from common.domain import refusals
from common.platform import failures

# The one place a refusal of a layer below becomes an HTTP status.
STATUS_OF: dict[type[refusals.Refused], int] = {
    refusals.Invalid: 400, refusals.Forbidden: 403, refusals.NotFound: 404, refusals.Conflict: 409,
    refusals.TooLarge: 413}


class ApiError(Exception):
    """An answer other than success, raised anywhere below the router."""

    def __init__(self, status: int, message: str, param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.headers = headers or {}
        self.extra: dict = {}  # more of the answer beside "error" (a 412's current state)

    def body(self, request_id: str) -> dict:
        return {**error_body(self.status, self.message, request_id, self.param), **self.extra}

    @classmethod
    def of(cls, refused: refusals.Refused) -> ApiError:
        status = next(status for kind, status in STATUS_OF.items() if isinstance(refused, kind))
        return cls(status, refused.message, refused.param)


def error_body(status: int, message: str, request_id: str, param: str | None = None) -> dict:
    error = {"status": status, "message": message, "request_id": request_id}
    if param:
        error["param"] = param
    return {"error": error}


def is_unavailable(exc: BaseException) -> bool:
    """A cloud service that failed or did not answer in time (a 503, worth a retry); google.api_core's
    4xx-class errors (InvalidArgument, NotFound, PermissionDenied) are bugs or misconfiguration: a 500."""
    return failures.is_unavailable(exc)


ERROR_SCHEMA = obj(error=obj(status={"type": "integer"}, message={"type": "string"},
                             request_id={"type": "string"}, param=nullable({"type": "string"}),
                             required=("status", "message", "request_id")))
