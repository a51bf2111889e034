"""Writes to the bucket that never overwrite what someone else wrote meanwhile.

Every write names the generation it is based on (0: the object must not
exist); Cloud Storage refuses it when the object has moved on. The index then
learns of the write through the ordinary object event, as of a drop.
"""
from __future__ import annotations

from google.api_core.exceptions import NotFound, PreconditionFailed

from common.cloud import storage

WRITER = "yolodrop-writer"  # object metadata: who wrote it through the API


class Moved(Exception):
    """The object is no longer at the generation the write was based on."""

    def __init__(self, generation: int, data: bytes | None):
        super().__init__(f"the object is at generation {generation}")
        self.generation, self.data = generation, data


def current(name: str, timeout: float = 60) -> tuple[int, bytes | None]:
    """(generation, content) of the object now; (0, None) when there is none."""
    blob = storage.bucket().get_blob(name, timeout=timeout)
    if blob is None:
        return 0, None
    try:
        pinned = storage.blob(name, blob.generation)  # that generation's bytes, whatever happens next
        return blob.generation, pinned.download_as_bytes(timeout=timeout)
    except NotFound:  # gone between the two calls
        return 0, None


def write(name: str, data: bytes, based_on: int, writer: str, content_type: str, timeout: float = 60) -> int:
    """Write `data` if the object is still at generation `based_on`; its new generation. Raises Moved."""
    blob = storage.bucket().blob(name)
    blob.metadata = {WRITER: writer}
    try:
        blob.upload_from_string(data, content_type=content_type, if_generation_match=based_on, timeout=timeout)
    except PreconditionFailed:
        raise Moved(*current(name, timeout)) from None
    return blob.generation


def delete(name: str, based_on: int, timeout: float = 60) -> None:
    """Delete the object if it is still at generation `based_on`. Raises Moved."""
    found = storage.bucket().get_blob(name, timeout=timeout)
    if found is None or found.generation != based_on:  # fake-gcs-server ignores a delete's precondition
        raise Moved(*current(name, timeout))
    try:
        storage.bucket().blob(name).delete(if_generation_match=based_on, timeout=timeout)
    except (PreconditionFailed, NotFound):
        raise Moved(*current(name, timeout)) from None
