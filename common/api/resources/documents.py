"""What several resources share: a document by id or a 404, and the newest-first list."""
from __future__ import annotations

from typing import Callable

from google.cloud.firestore_v1.base_query import FieldFilter

from common.api import pagination, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.domain import layout

NEWEST_FIRST_PAGE = pagination.page_params(default=20, maximum=100)
DATASET_FILTER = params.text("dataset", "only those of this dataset")


def is_document_id(name: str) -> bool:
    """Whether `name` can name a document as it is (no '/', not '.', '..' or '__...')."""
    try:
        return layout.doc_id(name) == name
    except ValueError:
        return False


def find(collection, doc_id: str, what: str, ctx: RequestContext) -> dict:
    """The document, or a 404 naming what was looked for."""
    snapshot = collection.document(doc_id).get(**ctx.deadline()) if is_document_id(doc_id) else None
    document = snapshot.to_dict() if snapshot is not None and snapshot.exists else None
    if not document or not document.get("id"):  # a training function's claim alone is not a job yet
        raise ApiError(404, f"no {what} {doc_id!r}")
    return document


def newest_first(items_key: str, collection, view: Callable[[dict], dict], args: dict,
                 ctx: RequestContext) -> dict:
    """A page of documents, newest first (created_at), optionally of one dataset."""
    query = collection.where(filter=FieldFilter("dataset", "==", args["dataset"])) if args["dataset"] else None
    source = pagination.Source(collection, query, order=("created_at",), descending=True,
                               items=lambda snapshot: [view(snapshot.to_dict())])
    return pagination.page(items_key, items_key, [source], args, ctx)
