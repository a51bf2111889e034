"""Registered models: what a completed training job leaves, weights as gs:// URIs."""
from __future__ import annotations

from common.api import access, params
from common.api.context import RequestContext
from common.api.resources import documents
from common.api.routes import Route
from common.api.schema import ANY, INTEGER, NUMBER, STRING, array, nullable, obj, page_of
from common.cloud import training_store

MODEL_ID = params.path("model_id", "the model id")
MODEL = obj(required=("id", "dataset", "job_id"), id=STRING, dataset=STRING, job_id=STRING, manifest=ANY,
            classes=array(STRING), metrics={"type": "object", "additionalProperties": nullable(NUMBER)},
            weights={"type": "object", "additionalProperties": nullable(STRING)},
            base_model=nullable(STRING), epochs=nullable(INTEGER), created_at=nullable(NUMBER))


def list_models(ctx: RequestContext, args: dict) -> dict:
    return documents.newest_first("models", training_store.models_newest_first, lambda model: model, args, ctx)


def get_model(ctx: RequestContext, args: dict) -> dict:
    return documents.find_in_dataset(training_store.model, args["model_id"], "model", ctx, access.VIEWER)


ROUTES = [
    Route("GET", "/models", list_models, "Registered models, newest first",
          page_of("models", MODEL), params=(documents.DATASET_FILTER, *documents.NEWEST_FIRST_PAGE)),
    Route("GET", "/models/{model_id}", get_model, "One registered model", MODEL, params=(MODEL_ID,)),
]
