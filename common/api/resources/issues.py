"""Every issue of a dataset: its files' issues first (data.yaml, unrecognized
files), then its entries', in document order; a page may end inside a document."""
from __future__ import annotations

from common.api import access, pagination
from common.api.context import RequestContext
from common.api.resources.datasets import DATASET, find_dataset
from common.api.resources.images import ISSUE
from common.api.routes import Route
from common.api.schema import page_of
from common.cloud import dataset_index


def list_issues(ctx: RequestContext, args: dict) -> dict:
    dataset = args["dataset"]
    find_dataset(dataset, ctx)
    sources = [pagination.Source(query, items=lambda document: document["issues"])
               for query in dataset_index.issue_queries(dataset)]
    return pagination.page("issues", f"issues:{dataset}", sources, args, ctx)


ROUTES = [
    Route("GET", "/datasets/{dataset}/issues", list_issues, "Every issue of a dataset, with the file it is about",
          page_of("issues", ISSUE), params=(DATASET, *pagination.page_params(default=100, maximum=1000)),
          role=access.VIEWER),
]
