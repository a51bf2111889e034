"""Bytes for the page: thumbnails (derived/thumbnails/<dataset>/<sha256>.jpg, written by ingest) and the full
image of an entry, streamed from the bucket with caching headers (the ETag is the content's sha256, so a browser
revalidates with a 304 and no body); a model's weights and an export's zip as downloads, or as URLs that download
them straight from the bucket (no function's timeout in the way: what the command line uses). Role viewer on the
dataset, as for the same things' JSON."""
from __future__ import annotations

import re

from flask import Response
from google.api_core.exceptions import NotFound
from werkzeug.http import quote_etag

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.resources import documents
from common.api.resources.datasets import DATASET
from common.api.resources.exports import EXPORT_ID
from common.api.resources.images import IMAGE_ID, find_image
from common.api.resources.models import MODEL_ID
from common.api.resources.page import IF_NONE_MATCH, still_current
from common.api.routes import Route
from common.api.schema import INTEGER, STRING, obj
from common.cloud import storage, training_store, version_store
from common.domain import layout
from common.platform import config

WEIGHT_KIND = params.path("kind", "pt (best.pt), onnx, last (last.pt) or results (results.csv)")
SHA256 = params.path("sha256", "the image content's sha256 (64 hex digits)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
STREAM_CHUNK = 1024 * 1024
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp",
               "TIFF": "image/tiff", "MPO": "image/jpeg"}


def thumbnail(ctx: RequestContext, args: dict) -> Response:
    sha256 = args["sha256"]
    if not _SHA256.fullmatch(sha256):
        raise ApiError(404, "no thumbnail: sha256 must be 64 lowercase hex digits")
    if still_current(sha256, args["If-None-Match"]):
        return _not_modified(sha256, THUMBNAIL_CACHE)
    blob = storage.blob(layout.thumbnail_path(args["dataset"], sha256))
    try:
        data = blob.download_as_bytes(**ctx.deadline())
    except NotFound:
        raise ApiError(404, f"no thumbnail {sha256} in dataset {args['dataset']!r} (yet: ingest writes it)") from None
    return Response(data, mimetype="image/jpeg", headers=_cache_headers(sha256, THUMBNAIL_CACHE))


def image_file(ctx: RequestContext, args: dict) -> Response:
    _, entry = find_image(ctx, args["dataset"], args["image_id"], with_image=True)
    image = entry["image"]
    if still_current(image["sha256"], args["If-None-Match"]):
        return _not_modified(image["sha256"], IMAGE_CACHE)
    return _streamed(storage.blob(image["path"], image["generation"]), ctx,
                     IMAGE_TYPES.get(image.get("format"), "application/octet-stream"),
                     _cache_headers(image["sha256"], IMAGE_CACHE), f"the image {image['path']!r}")


def model_weights(ctx: RequestContext, args: dict) -> Response:
    """A registered model's file (pt, onnx, last, results) as a download; role viewer on its dataset."""
    return _download(*_weights_file(ctx, args), ctx)


def model_weights_url(ctx: RequestContext, args: dict) -> dict:
    """A URL that downloads the model's file without credentials for a while: no function between its bytes
    and the caller, whatever its size."""
    return _download_link(*_weights_file(ctx, args))


def export_zip(ctx: RequestContext, args: dict) -> Response:
    """A completed export's zip as a download; role viewer on its dataset."""
    return _download(*_export_file(ctx, args), ctx)


def export_zip_url(ctx: RequestContext, args: dict) -> dict:
    """A URL that downloads the export's zip without credentials for a while."""
    return _download_link(*_export_file(ctx, args))


def _weights_file(ctx: RequestContext, args: dict) -> tuple[str, str]:
    """The gs:// URI of the model's file of that kind, and the name to save it as."""
    model = documents.find_in_dataset(training_store.model, args["model_id"], "model", ctx, access.VIEWER)
    uri = (model.get("weights") or {}).get(args["kind"])
    if not uri:
        raise ApiError(404, f"model {model['id']!r} has no {args['kind']} file")
    return uri, f"{model['id']}-{uri.rsplit('/', 1)[-1]}"


def _export_file(ctx: RequestContext, args: dict) -> tuple[str, str]:
    export = documents.find_in_dataset(version_store.read_export, args["export_id"], "export", ctx, access.VIEWER)
    if not export.get("uri"):
        raise ApiError(404, f"export {export['id']!r} has no zip yet (status {export.get('status')})")
    return export["uri"], f"{export['id']}.zip"


def _download_link(uri: str, filename: str) -> dict:
    seconds = config.download_url_seconds()
    return {"url": storage.download_url(uri, filename, seconds), "filename": filename, "expires_in": seconds}


def _download(uri: str, filename: str, ctx: RequestContext) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store",
               "X-Content-Type-Options": "nosniff"}
    return _streamed(storage.blob_at(uri), ctx, "application/octet-stream", headers, uri)


def _streamed(blob, ctx: RequestContext, media_type: str, headers: dict, what: str) -> Response:
    """The object in chunks. The first chunk is read before any header is sent, so a missing object is a 404."""
    reader = blob.open("rb", chunk_size=STREAM_CHUNK, **ctx.deadline())
    try:
        first = reader.read(STREAM_CHUNK)
    except NotFound:
        reader.close()
        raise ApiError(404, f"{what} is gone (or changed since it was indexed)") from None
    return Response(_chunks(first, reader), mimetype=media_type, headers=headers)


def _chunks(first: bytes, reader):
    with reader:
        chunk = first
        while chunk:
            yield chunk
            chunk = reader.read(STREAM_CHUNK)


# A thumbnail's name is its content: it never changes. An image id may get new content: revalidate each time.
THUMBNAIL_CACHE = "private, max-age=86400, immutable"
IMAGE_CACHE = "private, no-cache"


def _cache_headers(sha256: str, cache_control: str) -> dict:
    return {"ETag": quote_etag(sha256), "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}


def _not_modified(sha256: str, cache_control: str) -> Response:
    return Response(status=304, headers=_cache_headers(sha256, cache_control))


BYTES = {"type": "string"}
DOWNLOAD_LINK = obj(required=("url", "filename", "expires_in"), url=STRING, filename=STRING, expires_in=INTEGER)
ROUTES = [
    Route("GET", "/datasets/{dataset}/thumbnails/{sha256}", thumbnail, "An image's thumbnail (JPEG, 256 px)",
          BYTES, params=(DATASET, SHA256, IF_NONE_MATCH), role=access.VIEWER, media_type="image/jpeg"),
    Route("GET", "/datasets/{dataset}/files/{image_id}", image_file, "The full image of an entry, as stored",
          BYTES, params=(DATASET, IMAGE_ID, IF_NONE_MATCH), role=access.VIEWER, media_type="image/*"),
    Route("GET", "/models/{model_id}/weights/{kind}", model_weights, "A registered model's file, as a download",
          BYTES, params=(MODEL_ID, WEIGHT_KIND), media_type="application/octet-stream"),
    Route("GET", "/exports/{export_id}/zip", export_zip, "A completed export's zip, as a download",
          BYTES, params=(EXPORT_ID,), media_type="application/octet-stream"),
    Route("GET", "/models/{model_id}/weights/{kind}/url", model_weights_url,
          "A URL that downloads a registered model's file without credentials for DOWNLOAD_URL_SECONDS",
          DOWNLOAD_LINK, params=(MODEL_ID, WEIGHT_KIND)),
    Route("GET", "/exports/{export_id}/url", export_zip_url,
          "A URL that downloads a completed export's zip without credentials for DOWNLOAD_URL_SECONDS",
          DOWNLOAD_LINK, params=(EXPORT_ID,)),
]
