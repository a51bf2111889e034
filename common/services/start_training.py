"""The training function's work: one request message -> one job, launched once.

Idempotent per request: the job id is derived from the request_id (or, when a
request has none, from the Pub/Sub message id), and a claim on the job document
lets exactly one delivery prepare and launch it. An invalid request ends as a
failed job with its reason and is acknowledged; it is never retried.
"""
from __future__ import annotations

import json
import time

from google.api_core.exceptions import PreconditionFailed
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import dataset_index, db, launcher, storage, training_store
from common.domain import training_job, training_set
from common.platform.failures import is_transient
from common.domain import layout
from common.domain.layout import is_valid_dataset_name
from common.domain.training_request import InvalidRequest, TrainingRequest, job_id_for, model_kind, validate

CLAIM_LEASE_SECONDS = 120


class JobBusy(RuntimeError):
    """Another delivery of the same request is preparing the job: retry later."""


def handle(message_id: str, data: bytes) -> str:
    body, problem = _parse(data)
    request_id = _request_id(body, message_id)
    job_id = job_id_for(request_id)
    ref = training_store.jobs().document(job_id)
    if not _claim(ref, message_id):
        return f"duplicate request {request_id!r}: job {job_id} exists"
    try:
        if problem:
            raise InvalidRequest(problem)
        request = validate(body, request_id)
        prepared = _prepare(request, job_id)
        ref.set(prepared, merge=True)
        execution = launcher.from_config().launch(job_id, prepared["manifest"])
    except InvalidRequest as exc:
        ref.set(training_job.failed_job(job_id, request_id, _field(body, "dataset"), body, str(exc), time.time()))
        return f"invalid request {request_id!r} -> job {job_id} failed: {exc}"
    except Exception as exc:
        if is_transient(exc):
            ref.update({"claimed_at": firestore.DELETE_FIELD})  # the redelivery starts over at once
            raise
        _fail(ref, f"the trainer could not be started: {exc!r}; check the trainer configuration "
                   "and ask again with a new request_id")
        raise
    ref.update({"execution": execution, "launched_at": time.time()})
    return f"job {job_id} launched as {execution}"


def _parse(data: bytes):
    try:
        return json.loads(data), None
    except ValueError as exc:
        return None, f"the request is not JSON: {exc}"


def _field(body, name: str):
    return body.get(name) if isinstance(body, dict) else None


def _request_id(body, message_id: str) -> str:
    given = _field(body, "request_id")
    return given if isinstance(given, str) and given else f"message-{message_id}"


def _claim(ref, message_id: str) -> bool:
    """True when this delivery may prepare the job; False when the job already exists."""
    @firestore.transactional
    def run(transaction) -> bool:
        snapshot = ref.get(transaction=transaction)
        job = snapshot.to_dict() if snapshot.exists else {}
        if job.get("launched_at") or job.get("status") not in (None, training_job.QUEUED):
            return False
        if time.time() - job.get("claimed_at", 0) < CLAIM_LEASE_SECONDS:
            raise JobBusy(f"job {ref.id} is being prepared by message {job.get('claimed_by')}")
        transaction.set(ref, {"claimed_at": time.time(), "claimed_by": message_id}, merge=True)
        return True
    return run(db.client().transaction())


def _prepare(request: TrainingRequest, job_id: str) -> dict:
    classes, entries = _dataset(request.dataset)
    model = _resolve_model(request.model)
    built = training_set.build(request, job_id, storage.bucket().name, classes, model, entries)
    uri = _write_manifest(job_id, built)
    job = training_job.queued_job(job_id, request.request_id, request.dataset, request.epochs,
                          {"model": request.model, "val_fraction": request.val_fraction, **request.train_args},
                          time.time())
    return {**job, "manifest": uri, "images": built["counts"], "excluded": built["excluded"]}


def _dataset(dataset: str) -> tuple[list[str] | None, list[dict]]:
    if not is_valid_dataset_name(dataset):
        raise InvalidRequest(f"unknown dataset {dataset!r}: not a valid dataset name")
    snapshot = dataset_index.dataset_ref(dataset).get()
    if not snapshot.exists:
        raise InvalidRequest(f"unknown dataset {dataset!r}: nothing has been dropped under datasets/{dataset}/")
    query = dataset_index.entries_of(dataset).where(filter=FieldFilter("has_image", "==", True))
    return snapshot.to_dict().get("classes"), [doc.to_dict() for doc in query.stream()]


def _resolve_model(model: str) -> dict:
    kind = model_kind(model)
    if kind == "yaml":
        return {"yaml": model}
    if kind == "weights":
        if not storage.blob_at(model).exists():
            raise InvalidRequest(f"unknown model {model!r}: no such object")
        return {"weights": model}
    snapshot = training_store.models().document(model).get()
    if not snapshot.exists:
        raise InvalidRequest(f"unknown model {model!r}: not a model YAML name (yolov8n.yaml), "
                             "not gs://…/weights.pt and no registered model has that id")
    return {"weights": snapshot.to_dict()["weights"]["pt"], "registered": model}


def _write_manifest(job_id: str, built: dict) -> str:
    """Write the manifest once: a retried delivery keeps the first snapshot."""
    path = layout.training_manifest(job_id)
    blob = storage.blob(path)
    try:
        blob.upload_from_string(json.dumps(built), content_type="application/json", if_generation_match=0)
    except PreconditionFailed:
        pass
    return f"gs://{blob.bucket.name}/{path}"


def _fail(ref, reason: str) -> None:
    ref.set({"status": training_job.FAILED, "error": reason, "finished_at": time.time()}, merge=True)
