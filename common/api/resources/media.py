"""Images as bytes, for the page: thumbnails (derived/thumbnails/<dataset>/<sha256>.jpg, written by ingest) and
the full image of an entry, streamed from the bucket with caching headers. Role viewer on the dataset, as for
the image's JSON; the ETag is the content's sha256, so a browser revalidates with a 304 and no body."""
from __future__ import annotations

import re

from flask import Response
from google.api_core.exceptions import NotFound

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.resources.datasets import DATASET
from common.api.resources.images import IMAGE_ID, find_image
from common.api.resources.page import IF_NONE_MATCH
from common.api.routes import Route
from common.cloud import storage
from common.domain import layout

SHA256 = params.path("sha256", "the image content's sha256 (64 hex digits)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
STREAM_CHUNK = 1024 * 1024
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp",
               "TIFF": "image/tiff", "MPO": "image/jpeg"}


def thumbnail(ctx: RequestContext, args: dict) -> Response:
    sha256 = args["sha256"]
    if not _SHA256.fullmatch(sha256):
        raise ApiError(404, "no thumbnail: sha256 must be 64 lowercase hex digits")
    if _still_current(sha256, args["If-None-Match"]):
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
    if _still_current(image["sha256"], args["If-None-Match"]):
        return _not_modified(image["sha256"], IMAGE_CACHE)
    reader = storage.blob(image["path"], image["generation"]).open("rb", chunk_size=STREAM_CHUNK)
    return Response(_chunks(reader), mimetype=IMAGE_TYPES.get(image.get("format"), "application/octet-stream"),
                    headers=_cache_headers(image["sha256"], IMAGE_CACHE))


def _chunks(reader):
    with reader:
        while chunk := reader.read(STREAM_CHUNK):
            yield chunk


# A thumbnail's name is its content: it never changes. An image id may get new content: revalidate each time.
THUMBNAIL_CACHE = "private, max-age=86400, immutable"
IMAGE_CACHE = "private, no-cache"


def _still_current(sha256: str, if_none_match: str | None) -> bool:
    return if_none_match is not None and if_none_match.strip() == f'"{sha256}"'


def _cache_headers(sha256: str, cache_control: str) -> dict:
    return {"ETag": f'"{sha256}"', "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}


def _not_modified(sha256: str, cache_control: str) -> Response:
    return Response(status=304, headers=_cache_headers(sha256, cache_control))


BYTES = {"type": "string"}
ROUTES = [
    Route("GET", "/datasets/{dataset}/thumbnails/{sha256}", thumbnail, "An image's thumbnail (JPEG, 256 px)",
          BYTES, params=(DATASET, SHA256, IF_NONE_MATCH), role=access.VIEWER, media_type="image/jpeg"),
    Route("GET", "/datasets/{dataset}/files/{image_id}", image_file, "The full image of an entry, as stored",
          BYTES, params=(DATASET, IMAGE_ID, IF_NONE_MATCH), role=access.VIEWER, media_type="image/*"),
]
