"""Uploads without bucket access: a resumable upload session per file.

People with the editor role but no IAM on the bucket ask for sessions and PUT
each file's bytes to its URL, straight into the bucket under the dataset's
folder; the file then arrives as an ordinary object event. A session is made
by the API for one object name, content type and size, so it cannot write
anywhere else. Sessions (rather than V4 signed URLs) because they work the
same against fake-gcs-server and in production without a signing key, and
they resume after a broken connection.

A file may declare its `md5` (base64, as Cloud Storage's `md5Hash`): when the
object is already there with that content, the answer says `exists: true` and
hands out no session, so a client pushing a folder again sends nothing twice.
The MD5s are read with one listing of the request's name range (a client
sends a folder in name order, so a batch's names are neighbours), not one
metadata read per file; a range holding many other objects is read as far as
LISTED_PER_FILE objects per file, and the names past that one by one.
A file with `archive: true` is a zip to unpack into the dataset: its object is
`imports/<dataset>.zip`, which ingest unpacks with its own rules.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from common.api import access, params, quotas
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.routes import Route
from common.api.schema import BOOLEAN, STRING, array, nullable, obj
from common.cloud import storage, uploader
from common.domain import file_limits, layout, request_bodies
from common.domain.request_bodies import UploadFile
from common.platform import config

DATASET = params.path("dataset", "the dataset name")
SESSION_THREADS = 16  # metadata reads and session creations of one request run in parallel
LIST_PAGE = 1000      # objects per page of the MD5 listing (Cloud Storage's most)
LISTED_PER_FILE = 2   # objects the MD5 listing may read per declared file before reading the rest one by one
SESSION = obj(required=("path", "object", "exists"), path=STRING, object=STRING, exists=BOOLEAN,
              upload_url=nullable(STRING), method={"const": "PUT"})


def create_uploads(ctx: RequestContext, args: dict) -> dict:
    files = _files(args["body"])
    refused = [f"files[{i}] {file.path!r}: {reason}" for i, file in enumerate(files)
               if (reason := _refusal(args["dataset"], file))]
    if refused:
        raise ApiError(400, "nothing was handed out: " + "; ".join(refused), "files")
    too_large = [f"files[{i}] {file.path!r}: {reason}" for i, file in enumerate(files)
                 if (reason := _size_refusal(args["dataset"], file))]
    if too_large:
        raise ApiError(413, "nothing was handed out: " + "; ".join(too_large), "files")
    if sum(file.size for file in files) > config.max_upload_request_bytes():
        raise ApiError(400, f"the files declare more than {config.max_upload_request_bytes()} bytes together: "
                            "ask in several requests", "files")
    with ThreadPoolExecutor(max_workers=SESSION_THREADS) as pool:
        held = _held(ctx, args["dataset"], files, pool)
        # the stored-bytes quota counts what is handed out, before any session exists (403 naming it)
        quotas.charge_uploads(ctx, sum(file.size for file, there in zip(files, held) if not there))
        return {"uploads": list(pool.map(lambda item: _session(ctx, args["dataset"], *item), zip(files, held)))}


def _files(body: request_bodies.Uploads) -> list[UploadFile]:
    """The declared files, as many as the deployment's MAX_UPLOAD_FILES allows."""
    if len(body.files) > config.max_upload_files():
        raise ApiError(400, f"files: at most {config.max_upload_files()} per request (MAX_UPLOAD_FILES), not "
                            f"{len(body.files)}; ask in several requests", "files")
    return list(body.files)


def _refusal(dataset: str, file: UploadFile) -> str | None:
    if file.size > config.max_upload_bytes():
        return f"size must be the file's size in bytes, at most {config.max_upload_bytes()}"
    if file.archive:
        return None if file.path.lower().endswith(".zip") else "an archive must be a .zip"
    try:
        layout.upload_object(dataset, file.path)
    except ValueError as exc:
        return str(exc)
    return None


def _size_refusal(dataset: str, file: UploadFile) -> str | None:
    """Each kind of file has its own cap (common.domain.file_limits); an archive has the upload's."""
    kind = "import" if file.archive else layout.classify(_object_name(dataset, file)).kind
    return file_limits.size_refusal(kind, file.size)


def _object_name(dataset: str, file: UploadFile) -> str:
    return layout.import_archive(dataset) if file.archive else layout.upload_object(dataset, file.path)


def _held(ctx: RequestContext, dataset: str, files: list[UploadFile], pool: ThreadPoolExecutor) -> list[bool]:
    """Which files are already there with the MD5 they declare: one listing for most, a read for the rest."""
    declared = {_object_name(dataset, file): file.md5 for file in files if file.md5}
    listed, unlisted = _listed_md5s(sorted(declared), ctx)
    read = dict(zip(unlisted, pool.map(lambda name: _md5_of(name, ctx), unlisted)))
    found = {**listed, **read}
    return [bool(file.md5) and found.get(_object_name(dataset, file)) == file.md5 for file in files]


def _listed_md5s(names: list[str], ctx: RequestContext) -> tuple[dict[str, str | None], list[str]]:
    """({name: its MD5, None when absent} for the names the listing covered, the names it did not reach):
    objects from the first name on, at most LISTED_PER_FILE per name, stopping past the last name."""
    if len(names) < 2:
        return {}, names
    budget, seen, last = LISTED_PER_FILE * len(names), {}, None
    for blob in storage.client().list_blobs(storage.bucket(), prefix=os.path.commonprefix(names),  # noqa: RUF071 (object names: by character)
                                            start_offset=names[0], max_results=budget,
                                            page_size=min(budget, LIST_PAGE), timeout=ctx.deadline_seconds,
                                            fields="items(name,md5Hash),nextPageToken"):
        last = blob.name
        if last > names[-1]:
            break
        seen[last] = blob.md5_hash
    covered = names if last is None or last > names[-1] or len(seen) < budget else \
        [name for name in names if name <= last]
    return {name: seen.get(name) for name in covered}, names[len(covered):]


def _md5_of(name: str, ctx: RequestContext) -> str | None:
    existing = storage.bucket().get_blob(name, timeout=ctx.deadline_seconds)
    return existing.md5_hash if existing is not None else None


def _session(ctx: RequestContext, dataset: str, file: UploadFile, held: bool) -> dict:
    name = _object_name(dataset, file)
    if held:
        return {"path": file.path, "object": f"gs://{storage.bucket().name}/{name}", "exists": True}
    blob = storage.bucket().blob(name)
    blob.metadata = uploader.metadata(ctx.principal.name, ctx.principal.key_id)  # checked again at ingest
    url = blob.create_resumable_upload_session(content_type=file.content_type or "application/octet-stream",
                                               size=file.size, origin=ctx.origin, timeout=ctx.deadline_seconds)
    return {"path": file.path, "object": f"gs://{blob.bucket.name}/{name}", "exists": False,
            "upload_url": url, "method": "PUT"}


ROUTES = [
    Route("POST", "/datasets/{dataset}/uploads", create_uploads,
          "Upload URLs for files of the dataset: PUT each file's bytes to its URL "
          "(none for a file already there with the declared md5)", obj(uploads=array(SESSION)),
          params=(DATASET,), body=request_bodies.Uploads, role=access.EDITOR, rate_limited="uploads",
          responses={413: ("a file over the size its kind may have (label file, data.yaml, image)", ERROR_SCHEMA)}),
]
