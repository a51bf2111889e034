"""Counting a request against its rate limit: one place for the API's routes and the prediction function."""
from __future__ import annotations

from common.api.context import RequestContext
from common.api.errors import ApiError
from common.cloud import rate_limit_store


def count_against_limit(ctx: RequestContext, kind: str, limit: int, seconds: int, what: str) -> None:
    """429 with Retry-After when the person, or everyone together, is over the limit; the administrator is
    not limited."""
    if ctx.principal.is_admin:
        return
    throttled = rate_limit_store.take(ctx.principal.uid, kind, limit, seconds, ctx.deadline_seconds)
    if throttled is not None:
        raise ApiError(429, throttled.message(limit, what, seconds), headers={"Retry-After": str(throttled.wait)})
