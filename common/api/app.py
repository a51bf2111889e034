"""The API: routing, auth, parameters and JSON shapes over the dataset_index.

Every answer is JSON; every error is {"error": {"status", "message", "param"?}}.
"""
from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from flask import Request, Response
from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.base_query import FieldFilter
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from common.cloud import dataset_index, db, stats, storage
from common.domain import entries, training_job, training_request, training_set
from common.platform import config

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
DATASET_PAGE_SIZE, MAX_DATASET_PAGE_SIZE = 20, 100
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_pool = ThreadPoolExecutor(max_workers=8)


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


ROUTES = Map([
    Rule("/healthz", endpoint="healthz", methods=["GET"]),
    Rule("/datasets", endpoint="list_datasets", methods=["GET"]),
    Rule("/datasets/<dataset>", endpoint="get_dataset", methods=["GET"]),
    Rule("/datasets/<dataset>/images", endpoint="list_images", methods=["GET"]),
    Rule("/datasets/<dataset>/images/<path:image_id>", endpoint="get_image", methods=["GET"]),
    Rule("/datasets/<dataset>/issues", endpoint="list_issues", methods=["GET"]),
    Rule("/training", endpoint="request_training", methods=["POST"]),
    Rule("/training", endpoint="list_jobs", methods=["GET"]),
    Rule("/training/<job_id>", endpoint="get_job", methods=["GET"]),
    Rule("/training/<job_id>/cancel", endpoint="cancel_job", methods=["POST"]),
    Rule("/models", endpoint="list_models", methods=["GET"]),
    Rule("/models/<model_id>", endpoint="get_model", methods=["GET"]),
], strict_slashes=False)


def handle(request: Request) -> Response:
    try:
        endpoint, args = ROUTES.bind("", path_info=request.path).match(method=request.method)
        if endpoint != "healthz":
            _authorize(request)
        answer = HANDLERS[endpoint](request, **args)
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        return _json(status, body)
    except ApiError as exc:
        body = {"status": exc.status, "message": exc.message}
        if exc.param:
            body["param"] = exc.param
        return _json(exc.status, {"error": body})
    except NotFound:
        return _json(404, {"error": {"status": 404, "message": f"no route {request.path}"}})
    except MethodNotAllowed:
        return _json(405, {"error": {"status": 405, "message": f"{request.method} is not allowed on {request.path}"}})


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _authorize(request: Request) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <API_TOKEN>'")
    if not hmac.compare_digest(token.encode(), config.api_token().encode()):
        raise ApiError(401, "wrong bearer token")


# ---- parameters -------------------------------------------------------------

def _page_size(request: Request, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    raw = request.args.get("page_size")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ApiError(400, f"page_size must be an integer from 1 to {maximum}, got {raw!r}", "page_size")
    return int(raw)


def _boolean(request: Request, name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw.lower() not in BOOLEANS:
        raise ApiError(400, f"{name} must be true or false, got {raw!r}", name)
    return BOOLEANS[raw.lower()]


def encode_token(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def decode_token(request: Request) -> dict | None:
    raw = request.args.get("page_token")
    if not raw:
        return None
    try:
        state = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise ApiError(400, "page_token is not one this API returned", "page_token")
    return state


def _dataset(dataset: str) -> dict:
    snapshot = dataset_index.dataset_ref(dataset).get()
    if not snapshot.exists:
        raise ApiError(404, f"no dataset {dataset!r}")
    return snapshot.to_dict()


def _after(query, collection, doc_id: str | None):
    """Keyset pagination by document id."""
    query = query.order_by(FieldPath.document_id())
    return query.start_after({FieldPath.document_id(): collection.document(doc_id)}) if doc_id else query


# ---- handlers ---------------------------------------------------------------

def healthz(request: Request) -> dict:
    return {"status": "ok"}


def dataset_view(dataset: str, data: dict) -> dict:
    classes = data.get("classes")
    return {"id": dataset, "classes": classes or [], "classes_known": classes is not None,
            "stats": stats.dataset_stats(dataset, classes)}


def list_datasets(request: Request) -> dict:
    size = _page_size(request, DATASET_PAGE_SIZE, MAX_DATASET_PAGE_SIZE)
    token = decode_token(request) or {}
    datasets = db.client().collection("datasets")
    snapshots = list(_after(datasets, datasets, token.get("after")).limit(size + 1).stream())
    page = snapshots[:size]
    views = list(_pool.map(lambda s: dataset_view(s.id, s.to_dict()), page))
    next_token = encode_token({"after": page[-1].id}) if len(snapshots) > size else None
    return {"datasets": views, "next_page_token": next_token}


def get_dataset(request: Request, dataset: str) -> dict:
    return dataset_view(dataset, _dataset(dataset))


def list_images(request: Request, dataset: str) -> dict:
    classes = _dataset(dataset).get("classes")
    size = _page_size(request)
    token = decode_token(request) or {}
    collection = dataset_index.entries_of(dataset)
    query = _image_filters(request, collection, classes)
    snapshots = list(_after(query, collection, token.get("after")).limit(size + 1).stream())
    page = snapshots[:size]
    next_token = encode_token({"after": page[-1].id}) if len(snapshots) > size else None
    return {"images": [image_view(s.to_dict(), classes) for s in page], "next_page_token": next_token}


def _image_filters(request: Request, collection, classes: list[str] | None):
    status = request.args.get("status")
    if status is None:
        query = collection.where(filter=FieldFilter("has_image", "==", True))
    elif status in (entries.LABELED, entries.BACKGROUND, entries.UNLABELED, entries.LABEL_ONLY):
        query = collection.where(filter=FieldFilter("status", "==", status))
    else:
        raise ApiError(400, f"status must be labeled, background, unlabeled or label_only, got {status!r}", "status")
    split = request.args.get("split")
    if split is not None:
        if split not in ("train", "val", "test", "none"):
            raise ApiError(400, f"split must be train, val, test or none, got {split!r}", "split")
        query = query.where(filter=FieldFilter("split", "==", None if split == "none" else split))
    class_id = _class_param(request, classes)
    if class_id is not None:
        query = query.where(filter=FieldFilter("class_ids", "array_contains", class_id))
    labeled = _boolean(request, "labeled")
    if labeled is not None:
        query = query.where(filter=FieldFilter("status", "==", entries.LABELED) if labeled else
                            FieldFilter("status", "in", [entries.BACKGROUND, entries.UNLABELED]))
    has_issues = _boolean(request, "has_issues")
    if has_issues is not None:
        query = query.where(filter=FieldFilter("has_issues", "==", has_issues))
    return query


def _class_param(request: Request, classes: list[str] | None) -> int | None:
    raw = request.args.get("class")
    if raw is None:
        return None
    if classes and raw in classes:
        return classes.index(raw)
    if raw.isdigit():
        return int(raw)
    known = f"one of {', '.join(classes)}" if classes else "a class id (the dataset has no data.yaml yet)"
    raise ApiError(400, f"class must be {known} or a class id, got {raw!r}", "class")


def get_image(request: Request, dataset: str, image_id: str) -> dict:
    classes = _dataset(dataset).get("classes")
    entry = dataset_index.read_entry(dataset, image_id)
    if entry is None or not entry["present"]:
        raise ApiError(404, f"no image {image_id!r} in dataset {dataset!r}")
    return image_view(entry, classes)


def image_view(entry: dict, classes: list[str] | None) -> dict:
    """An entry as the API shows it; its id is the entry key (the label path
    without .txt), which image and label share."""
    image = entry.get("image") or {}
    label = entry.get("label")

    def class_name(class_id: int) -> str | None:
        return classes[class_id] if classes and class_id < len(classes) else None

    return {
        "id": entry["key"], "path": image.get("path"), "sha256": image.get("sha256"),
        "width": image.get("width"), "height": image.get("height"), "split": entry.get("split"),
        "format": image.get("format"), "orientation": image.get("orientation"),
        "oriented_width": image.get("oriented_width"), "oriented_height": image.get("oriented_height"),
        "thumbnail": image.get("thumbnail"), "status": entry.get("status"),
        "label_path": label["path"] if label else None,
        "labels": [{"class_id": b["class_id"], "class_name": class_name(b["class_id"]),
                    "cx": b["cx"], "cy": b["cy"], "w": b["w"], "h": b["h"]}
                   for b in (label or {}).get("boxes", [])],
        "duplicates": entry.get("duplicates", []),
        "issues": entry.get("issues", []),
    }


def list_issues(request: Request, dataset: str) -> dict:
    """Every issue of the dataset: files' first, then entries', in document order.
    The token records the document to resume at and how many of its issues were sent."""
    _dataset(dataset)
    size = _page_size(request)
    token = decode_token(request) or {"collection": dataset_index.FILES, "at": None, "skip": 0}
    issues: list[dict] = []
    for collection_name in (dataset_index.FILES, dataset_index.ENTRIES):
        if collection_name == dataset_index.FILES and token["collection"] == dataset_index.ENTRIES:
            continue
        resume = token if token["collection"] == collection_name else {"at": None, "skip": 0}
        next_state = _collect_issues(dataset, collection_name, resume, size, issues)
        if next_state:
            return {"issues": issues, "next_page_token": encode_token(next_state)}
    return {"issues": issues, "next_page_token": None}


def _collect_issues(dataset: str, collection_name: str, resume: dict, size: int, issues: list) -> dict | None:
    collection = dataset_index.dataset_ref(dataset).collection(collection_name)
    query = collection.where(filter=FieldFilter("has_issues", "==", True)).order_by(FieldPath.document_id())
    if resume.get("at"):
        query = query.where(filter=FieldFilter(FieldPath.document_id(), ">=", collection.document(resume["at"])))
    skip = resume.get("skip", 0)
    for snapshot in query.select(["issues"]).stream():
        doc_issues = snapshot.get("issues")[skip:]
        room = size - len(issues)
        if len(doc_issues) > room or (room == 0 and doc_issues):
            issues.extend(doc_issues[:room])
            return {"collection": collection_name, "at": snapshot.id, "skip": skip + room}
        issues.extend(doc_issues)
        skip = 0
    return None


# ---- training and models ----------------------------------------------------

def request_training(request: Request) -> tuple[int, dict]:
    """Publish the request to the training topic; the training function makes the job.
    Only what the job id depends on is checked here: everything else ends as a
    failed job with its reason, exactly as for a request published directly."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object: {\"dataset\", \"model\", \"epochs\", ...}")
    request_id = body.setdefault("request_id", uuid.uuid4().hex)
    if not isinstance(request_id, str) or not training_request.REQUEST_ID.match(request_id):
        raise ApiError(400, "request_id must be 1-128 letters, digits or . _ : -", "request_id")
    job_id = training_request.job_id_for(request_id)
    try:  # visible at once as queued; the training function takes it from here
        training_store.jobs().document(job_id).create(training_job.received_job(job_id, request_id, body, time.time()))
    except AlreadyExists:
        pass  # the same request again: publishing it again is harmless, the function makes one job
    publisher = _publisher()
    topic = publisher.topic_path(config.project(), config.training_topic())
    publisher.publish(topic, json.dumps(body).encode()).result(timeout=30)
    return 202, {"job_id": job_id, "request_id": request_id}


def get_job(request: Request, job_id: str) -> dict:
    return training_job.job_view(_document(training_store.jobs(), job_id, "training job"))


def list_jobs(request: Request) -> dict:
    return _newest_first(request, training_store.jobs(), "jobs", training_job.job_view)


def cancel_job(request: Request, job_id: str) -> tuple[int, dict]:
    job = _document(training_store.jobs(), job_id, "training job")
    if job.get("status") in (training_job.COMPLETED, training_job.FAILED, training_job.CANCELLED):
        raise ApiError(409, f"job {job_id} is already {job['status']}; nothing to cancel")
    storage.upload(training_set.cancel_path(job_id), b"cancel requested", "text/plain")
    training_store.jobs().document(job_id).update({"cancel_requested": True})
    return 202, {"id": job_id, "status": job.get("status"), "cancel_requested": True}


def list_models(request: Request) -> dict:
    return _newest_first(request, training_store.models(), "models", lambda model: model)


def get_model(request: Request, model_id: str) -> dict:
    return _document(training_store.models(), model_id, "model")


def _document(collection, doc_id: str, what: str) -> dict:
    snapshot = collection.document(doc_id).get()
    if not snapshot.exists or not snapshot.to_dict().get("id"):  # a claim alone is not a job yet
        raise ApiError(404, f"no {what} {doc_id!r}")
    return snapshot.to_dict()


def _newest_first(request: Request, collection, items: str, view) -> dict:
    """Documents newest first, optionally of one dataset; the token is the last id sent."""
    size = _page_size(request, DATASET_PAGE_SIZE, MAX_DATASET_PAGE_SIZE)
    query = collection.order_by("created_at", direction=firestore.Query.DESCENDING)
    dataset = request.args.get("dataset")
    if dataset:
        query = query.where(filter=FieldFilter("dataset", "==", dataset))
    token = decode_token(request) or {}
    if token.get("after"):
        last = collection.document(token["after"]).get()
        if not last.exists:
            raise ApiError(400, "page_token is not one this API returned", "page_token")
        query = query.start_after(last)
    snapshots = list(query.limit(size + 1).stream())
    page = snapshots[:size]
    next_token = encode_token({"after": page[-1].id}) if len(snapshots) > size else None
    return {items: [view(s.to_dict()) for s in page], "next_page_token": next_token}


_publisher_client = None


def _publisher():
    global _publisher_client
    if _publisher_client is None:
        from google.cloud import pubsub_v1
        _publisher_client = pubsub_v1.PublisherClient()
    return _publisher_client


HANDLERS = {"healthz": healthz, "list_datasets": list_datasets, "get_dataset": get_dataset,
            "list_images": list_images, "get_image": get_image, "list_issues": list_issues,
            "request_training": request_training, "list_jobs": list_jobs, "get_job": get_job,
            "cancel_job": cancel_job, "list_models": list_models, "get_model": get_model}
