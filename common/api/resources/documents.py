"""What several resources share: a document by id or a 404, and the newest-first list.

Each takes what the store of those documents offers: a lookup `(id, deadline seconds) -> document or None`, and
a query of the documents of some datasets newest first `(datasets or None) -> pages.Query`."""
from __future__ import annotations

from collections.abc import Callable

from common.api import access, pagination, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.cloud import pages
from common.domain import layout

Lookup = Callable[[str, float], dict | None]
NewestOf = Callable[[list[str] | None], pages.Query]

NEWEST_FIRST_PAGE = pagination.page_params(default=20, maximum=100)
DATASET_FILTER = params.text("dataset", "only those of this dataset")


def find(lookup: Lookup, doc_id: str, what: str, ctx: RequestContext) -> dict:
    """The document, or a 404 naming what was looked for."""
    document = lookup(doc_id, ctx.deadline_seconds) if layout.is_document_id(doc_id) else None
    if not document or not document.get("id"):  # a training function's claim alone is not a job yet
        raise ApiError(404, f"no {what} {doc_id!r}")
    return document


def find_in_dataset(lookup: Lookup, doc_id: str, what: str, ctx: RequestContext, role: str) -> dict:
    """A document that belongs to a dataset (a job, a model): a 404 when the
    caller may not see that dataset, a 403 when the role is too low."""
    document = find(lookup, doc_id, what, ctx)
    if ctx.principal.is_admin:
        return document
    if not access.may_see(ctx, document.get("dataset")):
        raise ApiError(404, f"no {what} {doc_id!r}")
    access.require(ctx, document.get("dataset"), role)
    return document


def newest_first(items_key: str, newest_of: NewestOf, view: Callable[[dict], dict], args: dict,
                 ctx: RequestContext) -> dict:
    """A page of documents, newest first (created_at), optionally of one
    dataset; a person sees only those of the datasets they are a member of."""
    datasets = datasets_listed(args["dataset"], ctx)
    if datasets == []:
        return {items_key: [], "next_page_token": None}
    source = pagination.Source(newest_of(datasets), items=lambda document: [view(document)])
    return pagination.page(items_key, items_key, [source], args, ctx)


def datasets_listed(dataset: str | None, ctx: RequestContext) -> list[str] | None:
    """The datasets whose documents a list shows; None: every document."""
    if dataset:
        if not ctx.principal.is_admin:
            access.require(ctx, dataset, access.VIEWER)
        return [dataset]
    visible = access.visible_datasets(ctx)
    if visible is not None and len(visible) > access.MAX_LISTED_DATASETS:
        raise ApiError(400, f"you are a member of {len(visible)} datasets: name one with dataset= "
                            f"(lists span at most {access.MAX_LISTED_DATASETS})", "dataset")
    return visible
