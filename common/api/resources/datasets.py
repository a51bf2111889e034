"""Datasets: the list (a constant-cost summary each) and one dataset (exact statistics)."""
from __future__ import annotations

from common.api import pagination, params
from common.api.context import RequestContext
from common.api.resources import documents
from common.api.routes import Route
from common.api.schema import BOOLEAN, INTEGER, STRING, array, obj, page_of
from common.cloud import db, stats

DATASET = params.path("dataset", "the dataset name (its folder under datasets/)")

SUMMARY = obj(**{name: INTEGER for name in ("images", "labeled", "background", "unlabeled",
                                             "labels_without_image", "boxes", "issues", "duplicates")})
STATS = obj(**SUMMARY["properties"],
            boxes_per_class={"type": "object", "additionalProperties": INTEGER},
            splits=obj(required=("train", "val", "test"), train=INTEGER, val=INTEGER, test=INTEGER, none=INTEGER))


def _view_schema(stats_schema: dict) -> dict:
    return obj(id=STRING, classes=array(STRING), classes_known=BOOLEAN, stats=stats_schema)


def _datasets():
    return db.client().collection("datasets")


def find_dataset(name: str, ctx: RequestContext) -> dict:
    """The dataset document, or a 404."""
    return documents.find(_datasets(), name, "dataset", ctx)


def _view(name: str, classes: list[str] | None, figures: dict) -> dict:
    return {"id": name, "classes": classes or [], "classes_known": classes is not None, "stats": figures}


def list_datasets(ctx: RequestContext, args: dict) -> dict:
    source = pagination.Source(_datasets(), items=lambda snapshot: [{**snapshot.to_dict(), "id": snapshot.id}])
    listed = pagination.page("datasets", "datasets", [source], args, ctx)
    names = [dataset["id"] for dataset in listed["datasets"]]
    summaries = stats.dataset_summaries(names, ctx.deadline_seconds)
    views = [_view(d["id"], d.get("classes"), summary) for d, summary in zip(listed["datasets"], summaries)]
    return {**listed, "datasets": views}


def get_dataset(ctx: RequestContext, args: dict) -> dict:
    name = args["dataset"]
    classes = find_dataset(name, ctx).get("classes")
    return _view(name, classes, stats.dataset_stats(name, classes, ctx.deadline_seconds))


ROUTES = [
    Route("GET", "/datasets", list_datasets, "Datasets by name, each with a summary of its statistics",
          page_of("datasets", _view_schema(SUMMARY)), params=pagination.page_params(default=20, maximum=100)),
    Route("GET", "/datasets/{dataset}", get_dataset, "One dataset with its exact statistics",
          _view_schema(STATS), params=(DATASET,)),
]
