"""The data bucket."""
from __future__ import annotations

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


def upload(name: str, data: bytes, content_type: str, timeout: float = 60) -> None:
    bucket().blob(name).upload_from_string(data, content_type=content_type, timeout=timeout)
