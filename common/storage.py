"""The data bucket: one client, created on first use."""
from __future__ import annotations

import os
import threading

from google.cloud import storage

from common import config

CHUNK_BYTES = 8 * 1024 * 1024

_client: storage.Client | None = None
_lock = threading.Lock()


def client() -> storage.Client:
    global _client
    with _lock:
        if _client is None:
            _client = _make_client()
        return _client


def _make_client() -> storage.Client:
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials
        return storage.Client(project=config.project(), credentials=AnonymousCredentials())
    return storage.Client(project=config.project())


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


def upload(name: str, data: bytes, content_type: str) -> None:
    bucket().blob(name).upload_from_string(data, content_type=content_type)
