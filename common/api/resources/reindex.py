"""Reindexing: a dataset's index rebuilt from what its bucket folder holds, as a dataset job (common.services.reindex).
How a deployment on a bucket that already holds data starts, and how a lost or damaged index is rebuilt.

Owners reindex their dataset; the administrator any dataset folder of the bucket, indexed or not yet (a folder
that no index knows has no owner to ask), and every one of them with POST /reindex.
"""
from __future__ import annotations

import time

from common.api import access
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.resources.datasets import DATASET
from common.api.routes import Route
from common.api.schema import STRING, array, nullable, obj
from common.cloud import index_objects
from common.domain import dataset_jobs, layout, reindex
from common.services import dataset_jobs as job_service
from common.services import job_requests

STATUS = {"type": "string", "enum": list(dataset_jobs.STATES)}
STARTED = obj(required=("job_id", "dataset", "status"), job_id=STRING, dataset=STRING, status=STATUS,
              ref=STRING)
STARTED_ALL = obj(required=("jobs", "next"), jobs=array(STARTED), next=nullable(STRING))
ADMIN_ONLY = "reindexing every dataset is the administrator's (the API token)"


def reindex_dataset(ctx: RequestContext, args: dict) -> tuple[int, dict]:
    dataset = args["dataset"]
    if not ctx.principal.is_admin:
        access.require(ctx, dataset, access.OWNER)
    elif not layout.is_valid_dataset_name(dataset):
        raise ApiError(404, f"no dataset {dataset!r}: {layout.DATASET_NAME_RULE}")
    return 202, _start(ctx, dataset, args["body"].request_id)


def reindex_all(ctx: RequestContext, args: dict) -> dict:
    """A reindex of each dataset (each folder of the bucket, each dataset of the index) after `after`,
    MAX_DATASETS_PER_REQUEST at a time: `next` is the `after` of the next request (None: none left)."""
    if not ctx.principal.is_admin:
        raise ApiError(403, ADMIN_ONLY)
    body = args["body"]
    datasets = index_objects.every_dataset(body.after, reindex.MAX_DATASETS_PER_REQUEST)
    started = [_start(ctx, dataset, body.request_id) for dataset in datasets]
    full = len(datasets) == reindex.MAX_DATASETS_PER_REQUEST
    return {"jobs": started, "next": datasets[-1] if full else None}


def _start(ctx: RequestContext, dataset: str, request_id: str | None) -> dict:
    """Ask for the dataset's reindex (the one a request_id named before, when it did): its id and status now."""
    job_id = job_requests.job_id(dataset_jobs.REINDEX, dataset, ctx.principal.name, request_id)
    job = dataset_jobs.new_job(job_id, dataset, dataset_jobs.REINDEX, time.time(), ctx.principal.name)
    stored = job_service.start(job, ctx.deadline_seconds)
    return {"job_id": stored["id"], "dataset": dataset, "status": stored["status"],
            "ref": f"{dataset_jobs.REINDEX}/{stored['id']}"}


ROUTES = [
    Route("POST", "/datasets/{dataset}/reindex", reindex_dataset,
          "Rebuild the dataset's index from its bucket folder, as a job (owners; the administrator: any folder)",
          STARTED, status=202, params=(DATASET,), body=reindex.ReindexRequest, body_optional=True),
    Route("POST", "/reindex", reindex_all,
          "Rebuild the index of every dataset folder of the bucket, a page of datasets at a time (administrator)",
          STARTED_ALL, body=reindex.ReindexAll, body_optional=True),
]
