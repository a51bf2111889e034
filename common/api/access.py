"""Who may do what to a dataset: the checks every route makes.

Roles, each including the ones before it: viewer (read, predict with the
dataset's models), editor (edit labels and classes, versions, exports,
auto-labelling, training, uploads), owner (everything, members included).
The administrator (the stack's API_TOKEN) may do everything. What the caller
may not see answers 404, exactly as if it did not exist; what the caller may
see but not change answers 403 naming the role needed.
"""
from __future__ import annotations

from common.api.context import RequestContext
from common.api.errors import ApiError

VIEWER, EDITOR, OWNER = "viewer", "editor", "owner"
ROLES = (VIEWER, EDITOR, OWNER)


def require(ctx: RequestContext, dataset: str, role: str) -> None:
    """Raise 404 when the caller may not see `dataset`, 403 when the caller's
    role is below `role`; return when the caller may act."""
    if ctx.principal.is_admin:
        return
    raise ApiError(404, f"no dataset {dataset!r}")
