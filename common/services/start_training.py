"""The training function's work: one request message -> one job, launched once.

Idempotent per request: the job id is derived from the requester and the
request_id (or, when a request has none, from the Pub/Sub message id), and a
claim on the job document lets exactly one delivery prepare and launch it.
A person's request (the `requested_by` attribute the API sets) may train only
on a dataset they edit, from a registered model whose dataset they may view;
the administrator and direct publishers (no `requested_by`: Pub/Sub IAM decides
who may publish) may use any. An invalid request ends as a
failed job with its reason and is acknowledged; it is never retried.
"""
from __future__ import annotations

import json
import time
import uuid

from google.api_core.exceptions import PreconditionFailed

from common.cloud import dataset_members, index_snapshot, job_store, launcher, storage, training_store
from common.domain import access, base_models, layout, snapshot, training_job, training_set
from common.domain import versions as version_rules
from common.domain import jobs as kernel
from common.domain import messages
from common.domain.versions import InvalidVersionRequest
from common.domain.layout import is_valid_dataset_name
from common.domain.training_request import (ADMINISTRATOR, InvalidRequest, TrainingRequest, job_id_for, model_kind,
                                            validate)
from common.platform import config
from common.platform.events import BadMessage, PubSubMessage, decode
from common.platform.failures import is_transient
from common.platform.handler import Outcome, Result
from common.services import continue_training, versions

class JobBusy(RuntimeError):
    """Another delivery of the same request is preparing the job: retry later."""


def handle(message: PubSubMessage) -> Outcome:
    if continue_training.is_continuation(message):
        return continue_training.handle(message)
    body, problem = _parse(message)
    request_id = _request_id(body, message.message_id)
    requester = message.attributes.get("requested_by")
    job_id = job_id_for(request_id, requester)
    claimed = _claim(job_id, message.message_id)
    if not claimed.taken:
        return Outcome(Result.DUPLICATE, f"duplicate request {request_id!r}: job {job_id} exists", {"job_id": job_id})
    created_at = (claimed.document or {}).get("created_at")  # the API's, when the request came through it
    # Who asked: the API's caller, or a direct publisher's own attribute (Pub/Sub IAM decides who may publish).
    requested_by = {"requested_by": requester}
    try:
        if problem:
            raise InvalidRequest(problem)
        request = validate(body, request_id, config.trainer_accelerator_limits())
        with job_store.Heartbeat(claimed):  # a large training set takes longer than the lease to build
            prepared = _prepare(request, job_id, created_at, requester)
            training_store.merge(job_id, {**prepared, **requested_by})
            execution = launcher.launch_once(launcher.for_accelerator(request.accelerator), job_id,
                                             prepared["manifest"])
    except InvalidRequest as exc:
        training_store.replace(job_id, {**training_job.failed_job(job_id, request_id, _field(body, "dataset"), body,
                                                                  str(exc), time.time(), created_at), **requested_by})
        return Outcome(Result.REJECTED, f"invalid request {request_id!r} -> job {job_id} failed: {exc}",
                       {"job_id": job_id})
    except Exception as exc:
        if is_transient(exc):
            job_store.release(claimed)  # the redelivery starts over at once
            raise
        _fail(job_id, f"the trainer could not be started: {exc!r}; check the trainer configuration "
                   "and ask again with a new request_id")
        raise
    training_store.update(job_id, {"execution": execution, "launched_at": time.time(),
                                   "executions": [training_job.launched_execution(execution, None, time.time())]})
    return Outcome(Result.APPLIED, f"job {job_id} launched as {execution}", {"job_id": job_id})


def _parse(message: PubSubMessage) -> tuple[object, str | None]:
    """The request's body, and why it can never be a request: a bad message is a failed job too, as its
    requester looks for the job (the body as far as it was JSON is recorded on it)."""
    try:
        return decode(message, messages.TrainingRequest).body(), None
    except BadMessage as bad:
        return bad.document, str(bad)


def _field(body, name: str):
    return body.get(name) if isinstance(body, dict) else None


def _request_id(body, message_id: str) -> str:
    given = _field(body, "request_id")
    return given if isinstance(given, str) and given else f"message-{message_id}"


def _claim(job_id: str, message_id: str) -> job_store.Claim:
    """The job document as found, taken by this delivery when it may prepare the job (not launched, not ended);
    not taken when the job exists already. JobBusy while another delivery prepares it (the same message
    delivered again is another delivery: its holder is the message id and one of its own)."""
    def may_prepare(job: dict) -> bool:
        return not job.get("launched_at") and job.get("status") in (None, training_job.QUEUED)
    try:
        return training_store.claim(job_id, training_job.CLAIM_LEASE, f"{message_id}:{uuid.uuid4().hex[:8]}",
                                    may_prepare)
    except kernel.LeaseHeld as held:
        raise JobBusy(f"job {job_id} is being prepared by message {held.holder}") from None


def _prepare(request: TrainingRequest, job_id: str, created_at: float | None, requester: str | None) -> dict:
    _require_role(requester, request.dataset, access.EDITOR, f"unknown dataset {request.dataset!r}")
    model = _resolve_model(request.model, requester)
    built = training_set.build(request, job_id, storage.bucket().name, model, _snapshot(request))
    uri = _write_manifest(job_id, built)
    accelerator = request.accelerator.stored() if request.accelerator else None  # asked again, as asked (watch)
    job = training_job.queued_job(job_id, request.request_id, request.dataset, request.epochs,
                                  {"model": request.model, "val_fraction": request.val_fraction,
                                   **({"version": request.version} if request.version else {}),
                                   **({"accelerator": accelerator} if accelerator else {}),
                                   **request.train_args}, time.time(), created_at)
    return {**job, "manifest": uri, "images": built["counts"], "excluded": built["excluded"],
            "version": request.version, "accelerator": accelerator}


def _snapshot(request: TrainingRequest) -> snapshot.Snapshot:
    """The version's frozen snapshot when the request names one, else the dataset as indexed now."""
    dataset = request.dataset
    if not is_valid_dataset_name(dataset):
        raise InvalidRequest(f"unknown dataset {dataset!r}: not a valid dataset name")
    if request.version:
        try:
            return version_rules.stored_snapshot(versions.read_frozen(dataset, request.version))
        except InvalidVersionRequest as exc:
            raise InvalidRequest(str(exc)) from None
    taken = index_snapshot.current(dataset)
    if taken is None:
        raise InvalidRequest(f"unknown dataset {dataset!r}: nothing has been dropped under "
                             f"{layout.dataset_prefix(dataset)}")
    return taken


def _resolve_model(model: str, requester: str | None) -> dict:
    kind = model_kind(model)
    if kind == "yaml":
        return {"yaml": model}
    if kind == "pretrained":  # the trainer reads the base-model cache, or fills it, and checks the pin
        return {"pretrained": model, "cache": f"gs://{config.data_bucket()}/{layout.base_model(model)}",
                "sha256": base_models.pin_for(model, config.base_model_pins())}
    unknown = (f"unknown model {model!r}: not a model YAML name (yolov8n.yaml), not official weights "
               "(yolo11n.pt) and no registered model you may view has that id")
    found = training_store.model(model)
    if not found:
        raise InvalidRequest(unknown)
    _require_role(requester, found.get("dataset"), access.VIEWER, unknown)
    weights = (found.get("weights") or {}).get("pt")
    if not weights:
        raise InvalidRequest(f"model {model!r} has no best.pt to start from; name another model")
    return {"weights": weights, "registered": model}


def _require_role(requester: str | None, dataset, role: str, refusal: str) -> None:
    """A person's request needs `role` on `dataset`, checked again here (the API checked it when
    the request came through it); what they may not see is refused as if it did not exist."""
    if requester is None or requester == ADMINISTRATOR:
        return
    named = isinstance(dataset, str) and layout.is_document_id(dataset)
    members = dataset_members.of(dataset, config.cloud_deadline()) if named else None
    have = access.role_of(members, requester) if members is not None else None
    if have is None:
        raise InvalidRequest(refusal)
    if not access.allows(have, role):
        raise InvalidRequest(f"this needs the {role} role on dataset {dataset!r}; you are {have}")


def _write_manifest(job_id: str, built: dict) -> str:
    """Write the manifest once: a retried delivery keeps the first snapshot."""
    path = layout.training_manifest(job_id)
    blob = storage.blob(path)
    try:
        blob.upload_from_string(json.dumps(built), content_type="application/json", if_generation_match=0)
    except PreconditionFailed:
        pass
    return f"gs://{blob.bucket.name}/{path}"


def _fail(job_id: str, reason: str) -> None:
    training_store.merge(job_id, {"status": training_job.FAILED, "error": reason, "finished_at": time.time()})
