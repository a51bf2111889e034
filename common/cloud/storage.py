"""The data bucket."""
from __future__ import annotations

import datetime
import os
from urllib.parse import quote

import google.auth.credentials
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


def download_url(uri: str, filename: str, seconds: int) -> str:
    """A URL that downloads the object named by `uri` without credentials for `seconds`, as `filename`: a V4
    signed URL, signed through IAM's signBlob with the function's own service account (it holds no key; the
    account may make tokens for itself, infra/terraform iam.tf). Against the local stack, the emulator's own
    download URL (it asks for no credentials)."""
    target = blob_at(uri)
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        return f"{emulator.rstrip('/')}/storage/v1/b/{target.bucket.name}/o/{quote(target.name, safe='')}?alt=media"
    credentials = clients.signing_credentials()
    # A key file's credentials sign here; the platform's (no key) sign through IAM with the account's token.
    signer = {"credentials": credentials} if isinstance(credentials, google.auth.credentials.Signing) else \
        {"service_account_email": credentials.service_account_email, "access_token": credentials.token}
    return target.generate_signed_url(version="v4", expiration=datetime.timedelta(seconds=seconds), method="GET",
                                      response_disposition=f'attachment; filename="{filename}"', **signer)
