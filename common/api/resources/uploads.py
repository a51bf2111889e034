"""Uploads without bucket access: a resumable upload session per file.

People with the editor role but no IAM on the bucket ask for sessions and PUT
each file's bytes to its URL, straight into the bucket under the dataset's
folder; the file then arrives as an ordinary object event. A session is made
by the API for one object name, content type and size, so it cannot write
anywhere else. Sessions (rather than V4 signed URLs) because they work the
same against fake-gcs-server and in production without a signing key, and
they resume after a broken connection.
"""
from __future__ import annotations

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.routes import Route
from common.api.schema import INTEGER, STRING, array, obj
from common.cloud import guarded_objects, storage
from common.domain import layout
from common.platform import config

DATASET = params.path("dataset", "the dataset name")
MAX_FILES = 1000
FILE = obj(required=("path", "size"), path=STRING, size=INTEGER, content_type=STRING)
SESSION = obj(path=STRING, object=STRING, upload_url=STRING, method={"const": "PUT"})


def create_uploads(ctx: RequestContext, args: dict) -> dict:
    files = _files(args["body"])
    refused = [f"files[{i}] {file.get('path')!r}: {reason}" for i, file in enumerate(files)
               if (reason := _refusal(args["dataset"], file))]
    if refused:
        raise ApiError(400, "nothing was handed out: " + "; ".join(refused), "files")
    return {"uploads": [_session(ctx, args["dataset"], file) for file in files]}


def _files(body) -> list[dict]:
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, list) or not 0 < len(files) <= MAX_FILES or \
            not all(isinstance(file, dict) for file in files):
        raise ApiError(400, f"the body must be {{\"files\": [{{\"path\", \"size\", \"content_type\"}}]}} "
                            f"with 1 to {MAX_FILES} files", "files")
    return files


def _refusal(dataset: str, file: dict) -> str | None:
    path, size, content_type = file.get("path"), file.get("size"), file.get("content_type", "")
    if not isinstance(path, str):
        return "path must be the file's path inside the dataset, e.g. images/train/a.jpg"
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= config.max_upload_bytes():
        return f"size must be the file's size in bytes, at most {config.max_upload_bytes()}"
    if not isinstance(content_type, str):
        return "content_type must be a string"
    try:
        layout.upload_object(dataset, path)
    except ValueError as exc:
        return str(exc)
    return None


def _session(ctx: RequestContext, dataset: str, file: dict) -> dict:
    name = layout.upload_object(dataset, file["path"])
    blob = storage.bucket().blob(name)
    blob.metadata = {guarded_objects.WRITER: ctx.principal.name}
    url = blob.create_resumable_upload_session(content_type=file.get("content_type") or "application/octet-stream",
                                               size=file["size"], origin=ctx.origin, timeout=ctx.deadline_seconds)
    return {"path": file["path"], "object": f"gs://{blob.bucket.name}/{name}", "upload_url": url, "method": "PUT"}


ROUTES = [
    Route("POST", "/datasets/{dataset}/uploads", create_uploads,
          "Upload URLs for files of the dataset: PUT each file's bytes to its URL", obj(uploads=array(SESSION)),
          params=(DATASET,), body=obj(files=array(FILE)), role=access.EDITOR, rate_limited="uploads"),
]
