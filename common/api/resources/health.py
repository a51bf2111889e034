"""Health: whether the index answers, by one cheap read (a one-document query)."""
from __future__ import annotations

from common.api.context import RequestContext
from common.api.errors import is_unavailable
from common.api.routes import Route
from common.api.schema import STRING, obj
from common.cloud import dataset_index
from common.platform import log

UNAVAILABLE = obj(required=("status",), status={"const": "unavailable"}, message=STRING, request_id=STRING)


def healthz(ctx: RequestContext, args: dict) -> dict | tuple[int, dict]:
    try:
        dataset_index.probe(ctx.deadline_seconds)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("healthz: the index does not answer", request_id=ctx.request_id, error=repr(exc)[:500])
        return 503, {"status": "unavailable", "message": f"the index does not answer ({type(exc).__name__})",
                     "request_id": ctx.request_id}
    return {"status": "ok"}


ROUTES = [
    Route("GET", "/healthz", healthz, "Whether the API and its index answer", obj(status={"const": "ok"}),
          public=True, responses={503: ("the index does not answer", UNAVAILABLE)}),
]
