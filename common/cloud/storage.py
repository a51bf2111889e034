"""The data bucket."""
from __future__ import annotations

from google.api_core.exceptions import NotFound, PreconditionFailed
from google.cloud import storage

from common.cloud import clients
from common.platform import config

CHUNK_BYTES = 8 * 1024 * 1024


def client() -> storage.Client:
    return clients.storage()


def bucket() -> storage.Bucket:
    return client().bucket(config.data_bucket())


def blob(name: str, generation: int | None = None) -> storage.Blob:
    """A blob pinned to one generation: reading it after it was overwritten or
    deleted raises NotFound instead of returning newer content."""
    return bucket().blob(name, generation=generation)


def blob_at(uri: str) -> storage.Blob:
    """The blob a gs://<bucket>/<name> URI names, in any bucket."""
    bucket_name, _, name = uri.removeprefix("gs://").partition("/")
    return client().bucket(bucket_name).blob(name)


def download(name: str, generation: int) -> bytes:
    """The bytes of `name` at `generation`; NotFound when that generation is gone."""
    return blob(name, generation).download_as_bytes()


def upload(name: str, data: bytes, content_type: str, timeout: float = 60) -> int:
    """Write `data` to `name`; the generation written."""
    target = bucket().blob(name)
    target.upload_from_string(data, content_type=content_type, timeout=timeout)
    return int(target.generation)


def delete_generation(name: str, generation: int) -> bool:
    """Delete `name` only while it is still at `generation`; False when it is gone or was written again since."""
    try:
        bucket().blob(name).delete(if_generation_match=generation)
    except (NotFound, PreconditionFailed):
        return False
    return True
