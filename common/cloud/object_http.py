"""Small objects of the data bucket read and written in one plain HTTP request
each: the Cloud Storage JSON API over a kept-alive connection per thread.

Ingest reads every image and label it indexes and writes a thumbnail for each
new image. Through the storage client (requests, its retry and checksum layers)
one such request costs about 0.7 ms of CPU here, through urllib3 0.28 ms, and
through http.client 0.13 ms; per image and label that is most of what ingest
spends beside the image itself (bench/ingest.py). Nothing is retried here but a
request on a kept-alive connection the server has closed meanwhile: ingest gives
a transiently failed event back to Pub/Sub, which delivers it again with
backoff. Larger objects stream through the storage client (common.cloud.storage).

Locally STORAGE_EMULATOR_HOST names fake-gcs-server and requests go without
credentials; in production they carry the service account's token
(google.auth.default, refreshed when it expires).
"""
from __future__ import annotations

import functools
import http.client
import json
import os
import threading
from typing import cast
from urllib.parse import quote, urlsplit

import google.auth
import google.auth.transport.requests
from google.api_core import exceptions

from common.platform import config

PRODUCTION_ENDPOINT = "https://storage.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]
TIMEOUT_SECONDS = 60
_local = threading.local()  # this thread's connection
_token_lock = threading.Lock()


def download(name: str, generation: int) -> bytes:
    """The bytes of `name` at `generation`; NotFound when that generation is gone."""
    return _request("GET", f"/download/storage/v1/b/{_bucket()}/o/{_quoted(name)}?alt=media&generation={generation}")


def upload(name: str, data: bytes, content_type: str) -> int:
    """Write `data` to `name` (a media upload); the generation written."""
    answer = _request("POST", f"/upload/storage/v1/b/{_bucket()}/o?uploadType=media&name={_quoted(name)}",
                      body=data, headers={"Content-Type": content_type})
    return int(json.loads(answer)["generation"])


def _request(method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> bytes:
    headers = {**(headers or {}), **_auth()}
    reused = getattr(_local, "connection", None) is not None and _local.endpoint == _endpoint()
    try:
        status, data = _exchange(_connection(), method, path, body, headers)
    except (OSError, http.client.HTTPException) as failure:
        _drop_connection()
        if not reused:
            raise ConnectionError(f"{method} {path}: {failure!r}") from failure
        try:  # the server closed a kept-alive connection: once more on a new one
            status, data = _exchange(_connection(), method, path, body, headers)
        except (OSError, http.client.HTTPException) as again:
            _drop_connection()
            raise ConnectionError(f"{method} {path}: {again!r}") from again
    if status >= 300:
        raise exceptions.from_http_status(status, f"{method} {path}: {data[:300]!r}")
    return data


def _exchange(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
              headers: dict) -> tuple[int, bytes]:
    connection.request(method, _base_path() + path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()  # read whole: the connection is ready for the next request
    if response.will_close:
        _drop_connection()
    return response.status, data


def _connection() -> http.client.HTTPConnection:
    """This thread's connection to the endpoint (a new one when the endpoint changed: tests)."""
    endpoint = _endpoint()
    if getattr(_local, "connection", None) is None or _local.endpoint != endpoint:
        _drop_connection()
        parts = urlsplit(endpoint)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        host = cast(str, parts.hostname)  # the endpoint is a configured URL: it names a host
        _local.connection, _local.endpoint = kind(host, parts.port, timeout=TIMEOUT_SECONDS), endpoint
    return _local.connection


def _drop_connection() -> None:
    connection, _local.connection = getattr(_local, "connection", None), None
    if connection is not None:
        connection.close()


def _endpoint() -> str:
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if not emulator:
        return PRODUCTION_ENDPOINT
    return emulator.rstrip("/") if "://" in emulator else f"http://{emulator}"


def _base_path() -> str:
    return urlsplit(_endpoint()).path.rstrip("/")


def _bucket() -> str:
    return _quoted(config.data_bucket())


def _quoted(name: str) -> str:
    return quote(name, safe="")


def _auth() -> dict:
    """The Authorization header (none against the emulator)."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return {}
    credentials = _credentials()
    with _token_lock:
        if not credentials.valid:
            credentials.refresh(google.auth.transport.requests.Request())
        headers: dict = {}
        credentials.apply(headers)
    return headers


@functools.cache
def _credentials():
    credentials, _ = google.auth.default(scopes=SCOPES)
    return credentials
