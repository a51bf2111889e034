"""Every job the same way, whatever its kind: GET /jobs lists them newest first, GET /jobs/{kind}/{job_id}
shows one (docs/jobs.md, "Following any job"). Each kind's documents stay where they are; this reads them with
the per-kind lists' access rules (only the datasets the caller may view) and shows them as common.domain.job_view
makes them. POST /jobs/{kind}/{job_id}/cancel cancels one through its kind's own cancel (each kind says what
stops and what stays: docs/jobs.md, "Cancel")."""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.resources import classes, documents, exports, imports, training
from common.api.routes import Route
from common.api.schema import BOOLEAN, INTEGER, NUMBER, STRING, array, nullable, obj
from common.cloud import dataset_job_store, import_store, pages, training_store, version_store
from common.domain import dataset_jobs, job_view, jobs

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


# The query of a family's documents newest first, of datasets (None: every one), statuses ([]: any), a kind (None:
# any); the stores make them (common.cloud.pages.newest_first).
NewestOf = Callable[[list[str] | None, list[str], str | None], pages.Query]


@dataclass(frozen=True)
class Family:
    """Where one or more kinds keep their documents, and how one becomes a JOB."""
    kinds: tuple[str, ...]
    find: documents.Lookup  # one document by its id
    newest: NewestOf
    view: Callable[[dict, RequestContext], dict]
    what: str  # as a 404 names it

    def kind_of(self, document: dict) -> str | None:
        """None: a document of a family of several kinds that names none (no job of the kind asked for)."""
        return document.get("kind") if len(self.kinds) > 1 else self.kinds[0]


def _dataset_job(document: dict, ctx: RequestContext) -> dict:
    _, files_done, _ = dataset_job_store.progress(document["id"], ctx.deadline_seconds)
    return job_view.dataset_job(document, files_done)


def _version_by_id(job_id: str, seconds: float) -> dict | None:
    dataset, version = job_view.version_of(job_id) or (None, None)
    return version_store.read_version(dataset, version, seconds) if dataset and version else None


def _of_one_kind(newest: Callable[[list[str] | None, list[str]], pages.Query]) -> NewestOf:
    return lambda datasets, statuses, _: newest(datasets, statuses)


FAMILIES = (
    Family((job_view.TRAINING,), training_store.read, _of_one_kind(training_store.jobs_newest_first),
           lambda document, _: job_view.training(document), "training job"),
    Family((job_view.IMPORT,), import_store.read, _of_one_kind(import_store.newest_first),
           lambda document, ctx: job_view.import_(document, import_store.read_tasks(document["id"],
                                                                                    ctx.deadline_seconds)), "import"),
    Family((job_view.EXPORT,), version_store.read_export, _of_one_kind(version_store.exports_newest_first),
           lambda document, _: job_view.export(document), "export"),
    Family((job_view.VERSION,), _version_by_id, _of_one_kind(version_store.versions_newest_first),
           lambda document, _: job_view.version(document), "version"),
    Family(dataset_jobs.KINDS, dataset_job_store.get, dataset_job_store.newest_first, _dataset_job, "job"),
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


def queries(family: Family, kind: str | None, datasets: list[str] | None, active: bool | None) -> list[pages.Query]:
    """The family's queries of the list: one per group of datasets a query may filter by."""
    statuses = _statuses(family, kind, datasets, active)
    of_kind = kind if len(family.kinds) > 1 else None
    return [family.newest(group, statuses, of_kind) for group in pages.dataset_groups(datasets, len(statuses))]


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


def _newest(query: pages.Query, limit: int, ctx: RequestContext) -> list[dict]:
    return [document for _, document in query.read(None, limit, ctx.deadline_seconds)]


def get_job(ctx: RequestContext, args: dict) -> dict:
    kind, job_id = args["kind"], args["job_id"]
    family = BY_KIND[kind]
    if kind == job_view.VERSION:
        return family.view(_version(job_id, ctx), ctx)
    document = documents.find_in_dataset(family.find, job_id, family.what, ctx, access.VIEWER)
    if family.kind_of(document) != kind:
        raise ApiError(404, f"no {kind} job {job_id!r}")
    return family.view(document, ctx)


def _version(job_id: str, ctx: RequestContext) -> dict:
    dataset, _ = job_view.version_of(job_id) or (None, None)
    document = _version_by_id(job_id, ctx.deadline_seconds) if dataset and access.may_see(ctx, dataset) else None
    if document is None:
        raise ApiError(404, f"no version job {job_id!r} (a version's job id is {{dataset}}:{{version}}, "
                            "such as my-data:v3)")
    return document


def cancel_job(ctx: RequestContext, args: dict) -> tuple[int, dict]:
    """202 with the job once its kind recorded the cancel; 409 with the reason where it cannot stop (it ended, or
    its kind cannot stop safely where it is). Editors of the job's dataset only."""
    kind, job_id = args["kind"], args["job_id"]
    if kind == job_view.VERSION:
        _version(job_id, ctx)  # 404 as GET answers it
        raise ApiError(409, f"version {job_id} cannot be cancelled: {job_view.CANCEL[kind].refusal}")
    family = BY_KIND[kind]
    document = documents.find_in_dataset(family.find, job_id, family.what, ctx, access.EDITOR)
    if family.kind_of(document) != kind:
        raise ApiError(404, f"no {kind} job {job_id!r}")
    status = job_view.kernel_status(document.get("status"))
    refusal = jobs.cancel_refusal(status, job_view.CANCEL[kind])
    if refusal:
        raise ApiError(409, f"{kind} job {job_id} cannot be cancelled: {refusal}")
    if status != jobs.CANCELLED:  # cancelled already: a retried cancel gets the job as it is
        _CANCEL_BY_KIND.get(kind, _cancel_dataset_job)(ctx, document)
    return 202, get_job(ctx, args)


def _cancel_dataset_job(ctx: RequestContext, document: dict) -> None:
    classes.cancel_dataset_job(ctx, {"dataset": document["dataset"], "dataset_job_id": document["id"]})


# Each kind's own cancel, as its own route runs it (the checks above were theirs too: a refusal says the same).
_CANCEL_BY_KIND: dict[str, Callable[[RequestContext, dict], object]] = {
    job_view.TRAINING: lambda ctx, document: training.cancel_job(ctx, {"job_id": document["id"]}),
    job_view.IMPORT: lambda ctx, document: imports.cancel_import(ctx, {"import_id": document["id"]}),
    job_view.EXPORT: lambda ctx, document: exports.cancel_export(ctx, {"export_id": document["id"]}),
}


ROUTES = [
    Route("GET", "/jobs", list_jobs, "Every kind of job (of one dataset, or of those the caller may see), newest "
          "first, shown the same way", obj(items=array(JOB)), params=LIST_PARAMS),
    Route("GET", "/jobs/{kind}/{job_id}", get_job, "One job of any kind: status, phase, progress, error",
          JOB, params=(KIND, JOB_ID), responses={400: ("kind is not one of the job kinds", ERROR_SCHEMA)}),
    Route("POST", "/jobs/{kind}/{job_id}/cancel", cancel_job, "Cancel a job of any kind where it can stop safely",
          JOB, status=202, params=(KIND, JOB_ID),
          responses={400: ("kind is not one of the job kinds", ERROR_SCHEMA),
                     409: ("the job has ended, or its kind cannot stop safely where it is: the reason says which",
                           ERROR_SCHEMA)}),
]
