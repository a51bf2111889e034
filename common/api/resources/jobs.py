"""Every job the same way, whatever its kind: GET /jobs lists them newest first, GET /jobs/{kind}/{job_id}
shows one (docs/jobs.md, "Following any job"). Each kind's documents stay where they are; this reads them with
the per-kind lists' access rules (only the datasets the caller may view) and shows them as common.domain.job_view
makes them. POST /jobs/{kind}/{job_id}/cancel is to come beside these routes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.resources import documents
from common.api.routes import Route
from common.api.schema import BOOLEAN, INTEGER, NUMBER, STRING, array, nullable, obj
from common.cloud import dataset_job_store, db, import_store, training_store, version_store
from common.domain import dataset_jobs, job_view

# Firestore serves at most 30 disjunctions (each dataset of an `in` times each status of another).
MAX_DISJUNCTIONS = 30
KIND = params.Param("kind", {"type": "string", "enum": list(job_view.KINDS)}, "the job's kind", "path")
JOB_ID = params.path("job_id", "the job's id in its kind; a version's is {dataset}:{version}")
LIST_PARAMS = (documents.DATASET_FILTER, params.choice("kind", "only jobs of this kind", job_view.KINDS),
               params.boolean("active", "true: only queued or running jobs; false: only ended ones"),
               params.integer("limit", "how many jobs, newest first", 1, 100, 50))
JOB = obj(kind={"type": "string", "enum": list(job_view.KINDS)}, id=STRING,
          ref={"type": "string", "description": "{kind}/{job_id}: what `yolodrop job` follows"},
          dataset=nullable(STRING), status={"type": "string", "enum": list(job_view.STATUSES)},
          phase={**nullable(STRING), "description": "the kind's own finer step (staging, freezing, epoch 3/10...)"},
          progress=obj(done=INTEGER, total=nullable(INTEGER), unit=STRING), error=nullable(STRING),
          requested_by=nullable(STRING), created_at=nullable(NUMBER), started_at=nullable(NUMBER),
          finished_at=nullable(NUMBER), cancellable=BOOLEAN, links=obj(self=STRING))


@dataclass(frozen=True)
class Family:
    """Where one or more kinds keep their documents, and how one becomes a JOB."""
    kinds: tuple[str, ...]
    collection: Callable[[], object]  # the collection (or collection group) queried for lists
    view: Callable[[dict, RequestContext], dict]
    what: str  # as a 404 names it

    def kind_of(self, document: dict) -> str:
        return document.get("kind") if len(self.kinds) > 1 else self.kinds[0]


def _dataset_job(document: dict, ctx: RequestContext) -> dict:
    _, files_done, _ = dataset_job_store.progress(document["id"], ctx.deadline_seconds)
    return job_view.dataset_job(document, files_done)


FAMILIES = (
    Family((job_view.TRAINING,), training_store.jobs, lambda document, _: job_view.training(document),
           "training job"),
    Family((job_view.IMPORT,), import_store.collection,
           lambda document, ctx: job_view.import_(document, import_store.read_tasks(document["id"],
                                                                                    ctx.deadline_seconds)), "import"),
    Family((job_view.EXPORT,), version_store.exports, lambda document, _: job_view.export(document), "export"),
    Family((job_view.VERSION,), lambda: db.client().collection_group("versions"),
           lambda document, _: job_view.version(document), "version"),
    Family(dataset_jobs.KINDS, dataset_job_store.jobs, _dataset_job, "job"),
)
BY_KIND = {kind: family for family in FAMILIES for kind in family.kinds}


def list_jobs(ctx: RequestContext, args: dict) -> dict:
    """The newest `limit` jobs of every kind (or of one), of the datasets the caller may view: each family's
    newest `limit` (one bounded query per family and group of datasets), merged."""
    datasets = documents.datasets_listed(args["dataset"], ctx)
    if datasets == []:
        return {"items": []}
    kind, limit = args["kind"], args["limit"]
    families = [BY_KIND[kind]] if kind else FAMILIES
    found = [(family, document) for family in families
             for query in queries(family, kind, datasets, args["active"])
             for document in _newest(query, limit, ctx) if document.get("id")]  # not a bare claim
    newest = job_view.newest_first(found, limit, created_at=lambda pair: pair[1].get("created_at"))
    return {"items": [family.view(document, ctx) for family, document in newest]}


def queries(family: Family, kind: str | None, datasets: list[str] | None, active: bool | None) -> list:
    query = family.collection()
    if kind and len(family.kinds) > 1:
        query = query.where(filter=FieldFilter("kind", "==", kind))
    statuses = _statuses(family, kind, datasets, active)
    if statuses:
        query = query.where(filter=FieldFilter("status", "in", statuses))
    if datasets is None:
        return [query]
    per_query = MAX_DISJUNCTIONS // max(1, len(statuses))
    return [query.where(filter=FieldFilter("dataset", "in", datasets[start:start + per_query]))
            for start in range(0, len(datasets), per_query)]


def _statuses(family: Family, kind: str | None, datasets: list[str] | None, active: bool | None) -> list[str]:
    """The stored status words a family's query keeps; [] for all. Versions live in one subcollection per dataset:
    across every dataset (the administrator's list) they are read by a collection group query that a composite
    index can serve only with a filter, so it filters by every status word there is."""
    kind = kind or family.kinds[0]
    if active is not None:
        return job_view.stored_statuses(kind, active)
    if datasets is None and kind == job_view.VERSION:
        return job_view.stored_statuses(kind, True) + job_view.stored_statuses(kind, False)
    return []


def _newest(query, limit: int, ctx: RequestContext) -> list[dict]:
    return [snapshot.to_dict() for snapshot in newest_first(query, limit).stream(**ctx.deadline())]


def newest_first(query, limit: int):
    """The query's `limit` newest documents (each shape has its index in infra/firestore.indexes.json)."""
    return query.order_by("created_at", direction=firestore.Query.DESCENDING).limit(limit)


def get_job(ctx: RequestContext, args: dict) -> dict:
    kind, job_id = args["kind"], args["job_id"]
    family = BY_KIND[kind]
    if kind == job_view.VERSION:
        return family.view(_version(job_id, ctx), ctx)
    document = documents.find_in_dataset(family.collection(), job_id, family.what, ctx, access.VIEWER)
    if family.kind_of(document) != kind:
        raise ApiError(404, f"no {kind} job {job_id!r}")
    return family.view(document, ctx)


def _version(job_id: str, ctx: RequestContext) -> dict:
    dataset, version = job_view.version_of(job_id) or (None, None)
    document = None
    if dataset and access.may_see(ctx, dataset):
        document = version_store.read_version(dataset, version, ctx.deadline_seconds)
    if document is None:
        raise ApiError(404, f"no version job {job_id!r} (a version's job id is {{dataset}}:{{version}}, "
                            "such as my-data:v3)")
    return document


ROUTES = [
    Route("GET", "/jobs", list_jobs, "Every kind of job (of one dataset, or of those the caller may see), newest "
          "first, shown the same way", obj(items=array(JOB)), params=LIST_PARAMS),
    Route("GET", "/jobs/{kind}/{job_id}", get_job, "One job of any kind: status, phase, progress, error",
          JOB, params=(KIND, JOB_ID), responses={400: ("kind is not one of the job kinds", ERROR_SCHEMA)}),
]
