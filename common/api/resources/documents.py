"""What several resources share: a document by id or a 404, and the newest-first list."""
from __future__ import annotations

from collections.abc import Callable

from google.cloud.firestore_v1.base_query import FieldFilter

from common.api import access, pagination, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.domain import layout

NEWEST_FIRST_PAGE = pagination.page_params(default=20, maximum=100)
DATASET_FILTER = params.text("dataset", "only those of this dataset")


def find(collection, doc_id: str, what: str, ctx: RequestContext) -> dict:
    """The document, or a 404 naming what was looked for."""
    snapshot = collection.document(doc_id).get(**ctx.deadline()) if layout.is_document_id(doc_id) else None
    document = snapshot.to_dict() if snapshot is not None and snapshot.exists else None
    if not document or not document.get("id"):  # a training function's claim alone is not a job yet
        raise ApiError(404, f"no {what} {doc_id!r}")
    return document


def find_in_dataset(collection, doc_id: str, what: str, ctx: RequestContext, role: str) -> dict:
    """A document that belongs to a dataset (a job, a model): a 404 when the
    caller may not see that dataset, a 403 when the role is too low."""
    document = find(collection, doc_id, what, ctx)
    if ctx.principal.is_admin:
        return document
    if not access.may_see(ctx, document.get("dataset")):
        raise ApiError(404, f"no {what} {doc_id!r}")
    access.require(ctx, document.get("dataset"), role)
    return document


def newest_first(items_key: str, collection, view: Callable[[dict], dict], args: dict,
                 ctx: RequestContext) -> dict:
    """A page of documents, newest first (created_at), optionally of one
    dataset; a person sees only those of the datasets they are a member of."""
    datasets = datasets_listed(args["dataset"], ctx)
    if datasets == []:
        return {items_key: [], "next_page_token": None}
    query = collection.where(filter=FieldFilter("dataset", "in", datasets)) if datasets else None
    source = pagination.Source(collection, query, order=("created_at",), descending=True,
                               items=lambda snapshot: [view(snapshot.to_dict())])
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
