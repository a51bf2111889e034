"""Who may do what to a dataset: the checks every route makes.

Roles are common.domain.access's (viewer < editor < owner). The administrator
may do everything. What the caller may not see answers 404, exactly as if it
did not exist; what the caller may see but not change answers 403 naming the
role needed. A route names the role it needs on its `{dataset}` (Route.role)
and the router checks it; routes that reach a dataset through a document (a
job, a model) call `require` with the document's dataset.
"""
from __future__ import annotations

from common.api.context import RequestContext
from common.api.errors import ApiError
from common.cloud import dataset_members
from common.domain import access, layout
from common.domain.access import EDITOR, OWNER, VIEWER, Members  # noqa: F401 - the roles routes name

MAX_LISTED_DATASETS = 30  # Firestore's `in` filter: lists of jobs and models across a person's datasets


def members_of(ctx: RequestContext, dataset: str) -> Members | None:
    """The dataset's members, read once per request; None when it does not exist."""
    key = ("members", dataset)
    if key not in ctx.memo:
        named = bool(dataset) and layout.is_document_id(dataset)
        ctx.memo[key] = dataset_members.of(dataset, ctx.deadline_seconds) if named else None
    return ctx.memo[key]


def role_on(ctx: RequestContext, dataset: str) -> str | None:
    """The caller's role on `dataset` (the administrator: owner of every existing one)."""
    members = members_of(ctx, dataset)
    if members is None:
        return None
    return OWNER if ctx.principal.is_admin else access.role_of(members, ctx.principal.uid)


def require(ctx: RequestContext, dataset: str | None, role: str) -> None:
    """Return when the caller may act on `dataset` with `role`; else 404 (may
    not see it, or it does not exist) or 403 (may see it, but needs more)."""
    have = role_on(ctx, dataset) if isinstance(dataset, str) else None
    if have is None:
        raise ApiError(404, f"no dataset {dataset!r}")
    if not access.allows(have, role):
        raise ApiError(403, f"this needs the {role} role on dataset {dataset!r}; you are {have}")


def may_see(ctx: RequestContext, dataset: str | None) -> bool:
    return isinstance(dataset, str) and role_on(ctx, dataset) is not None


def visible_datasets(ctx: RequestContext) -> list[str] | None:
    """The datasets the caller may see; None for all of them (the administrator)."""
    if ctx.principal.is_admin:
        return None
    return dataset_members.datasets_of(ctx.principal.uid, ctx.deadline_seconds)


def require_person(ctx: RequestContext, what: str) -> None:
    if not ctx.principal.is_person:
        raise ApiError(403, f"{what} belong to a person: sign in (Firebase) or use a person's API key; "
                            "the administrator token is no one's")
