"""Datasets: the list (a constant-cost summary each) and one dataset (exact statistics)."""
from __future__ import annotations

import time

from common.api import access, pagination, params, quotas
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.resources import documents
from common.api.routes import Route
from common.api.schema import BOOLEAN, INTEGER, STRING, array, obj, page_of
from common.cloud import dataset_index, dataset_job_store, dataset_members, stats
from common.domain import access as access_rules
from common.domain import request_bodies

DATASET = params.path("dataset", "the dataset name (its folder under datasets/)")

SUMMARY = obj(None, **{name: INTEGER for name in ("images", "labeled", "background", "unlabeled",
                                                   "labels_without_image", "boxes", "issues", "duplicates")})
STATS = obj(**SUMMARY["properties"],
            boxes_per_class={"type": "object", "additionalProperties": INTEGER}, proposals=INTEGER,
            boxes_per_image={"type": "object", "additionalProperties": INTEGER},
            box_sizes={"type": "object", "additionalProperties": INTEGER},
            splits=obj(required=("train", "val", "test"), train=INTEGER, val=INTEGER, test=INTEGER, none=INTEGER))


def _view_schema(stats_schema: dict) -> dict:
    return obj(id=STRING, classes=array(STRING), classes_known=BOOLEAN, stats=stats_schema)


def find_dataset(name: str, ctx: RequestContext) -> dict:
    """The dataset document, or a 404."""
    return documents.find(dataset_index.read_dataset, name, "dataset", ctx)


def _view(name: str, classes: list[str] | None, figures: dict) -> dict:
    return {"id": name, "classes": classes or [], "classes_known": classes is not None, "stats": figures}


def list_datasets(ctx: RequestContext, args: dict) -> dict:
    """The administrator sees every dataset; a person those they are a member of."""
    source = pagination.Source(dataset_members.listed(None if ctx.principal.is_admin else ctx.principal.uid))
    listed = pagination.page("datasets", "datasets", [source], args, ctx)
    names = [dataset["id"] for dataset in listed["datasets"]]
    summaries = stats.dataset_summaries(names, ctx.deadline_seconds)
    views = [_view(d["id"], d.get("classes"), summary) for d, summary in zip(listed["datasets"], summaries)]
    return {**listed, "datasets": views}


def get_dataset(ctx: RequestContext, args: dict) -> dict:
    name = args["dataset"]
    classes = find_dataset(name, ctx).get("classes")
    # Jobs not ended yet (a revalidation after a class change, a remap): the statistics are exact once none is.
    return {**_view(name, classes, stats.dataset_stats(name, classes, ctx.deadline_seconds)),
            "pending_jobs": dataset_job_store.pending_of(name, ctx.deadline_seconds)}


def create_dataset(ctx: RequestContext, args: dict) -> tuple[int, dict]:
    """An empty dataset owned by the caller (the administrator's has no members
    until an owner is given); files then arrive by drop or upload."""
    name = args["body"].id
    quotas.check_new_dataset(ctx)
    owners = {} if ctx.principal.is_admin else \
        access_rules.with_member({}, ctx.principal.uid, access.OWNER, ctx.principal.email, time.time())
    if not dataset_members.create(name, owners, ctx.deadline_seconds):
        raise ApiError(409, f"dataset {name!r} exists already")
    return 201, _view(name, None, stats.dataset_summaries([name], ctx.deadline_seconds)[0])


ROUTES = [
    Route("GET", "/datasets", list_datasets, "Datasets by name, each with a summary of its statistics",
          page_of("datasets", _view_schema(SUMMARY)), params=pagination.page_params(default=20, maximum=100)),
    Route("POST", "/datasets", create_dataset, "Create an empty dataset owned by the caller",
          _view_schema(SUMMARY), status=201, body=request_bodies.NewDataset, rate_limited="datasets",
          responses={409: ("a dataset of that name exists", ERROR_SCHEMA),
                     403: ("the caller owns as many datasets as the datasets quota allows", ERROR_SCHEMA)}),
    Route("GET", "/datasets/{dataset}", get_dataset, "One dataset with its exact statistics",
          {**_view_schema(STATS), "properties": {**_view_schema(STATS)["properties"], "pending_jobs": INTEGER}},
          params=(DATASET,), role=access.VIEWER),
]
