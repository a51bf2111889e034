"""The data bucket."""
from __future__ import annotations

import functools
import os
from pathlib import Path

from google.api_core.exceptions import NotFound, PreconditionFailed
from google.cloud import storage

from common.cloud import clients
from common.platform import config

CHUNK_BYTES = 8 * 1024 * 1024


def client() -> storage.Client:
    made = clients.storage()
    _settle_environment(made._http)
    return made


def _settle_environment(session) -> None:
    """Read once what requests otherwise reads from the environment on every
    request (about a sixth of a small download's CPU here): the CA bundle it
    names. Only when no proxy variable and no .netrc is there, so each request
    goes out exactly as before, without the scan."""
    if not getattr(session, "trust_env", False) or _environment_routes_http():
        return
    if session.verify is True:
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False


@functools.cache
def _environment_routes_http() -> bool:
    """Proxies (which depend on each URL) or .netrc credentials: left to requests."""
    return (any(name.lower().endswith("_proxy") for name in os.environ) or bool(os.environ.get("NETRC"))
            or (Path.home() / ".netrc").exists())


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
