"""Writes to the bucket that never overwrite what someone else wrote meanwhile.

Every write names the generation it is based on (0: the object must not
exist); Cloud Storage refuses it when the object has moved on. The index then
learns of the write through the ordinary object event, as of a drop.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from google.api_core.exceptions import NotFound, PreconditionFailed

from common.cloud import storage

WRITER = "yolodrop-writer"  # object metadata: who wrote it through the API
WRITTEN_BY_JOB = "yolodrop-job"  # object metadata: the job whose unit wrote it (the unit's output records its pin)
# The largest object read whole here: the files read so are label files (ingest reads 4 MiB at most) and data.yaml
# (1 MiB at most). Anything larger is someone's hostile drop: its size is checked before a byte is read.
MAX_READ_BYTES = 4 * 1024 * 1024


class TooLarge(Exception):
    """The object is larger than the reader's limit: nothing was read."""

    def __init__(self, name: str, generation: int, size: int, limit: int):
        super().__init__(f"{name} is {size} bytes, over the {limit} byte limit of what is read whole")
        self.name, self.generation, self.size, self.limit = name, generation, size, limit


class Moved(Exception):
    """The object is no longer at the generation the write was based on."""

    def __init__(self, generation: int, data: bytes | None):
        super().__init__(f"the object is at generation {generation}")
        self.generation, self.data = generation, data


@dataclass(frozen=True)
class Held:
    """An object as it is now: generation 0 and no data when there is none."""
    generation: int
    data: bytes | None
    metadata: dict = field(default_factory=dict)


def current(name: str, timeout: float = 60, max_bytes: int = MAX_READ_BYTES) -> tuple[int, bytes | None]:
    """(generation, content) of the object now; (0, None) when there is none. Raises TooLarge past max_bytes."""
    held = read(name, timeout, max_bytes)
    return held.generation, held.data


def read(name: str, timeout: float = 60, max_bytes: int = MAX_READ_BYTES) -> Held:
    """The object now, with its metadata. Raises TooLarge past max_bytes."""
    blob = storage.bucket().get_blob(name, timeout=timeout)
    if blob is None:
        return Held(0, None)
    if blob.size is not None and blob.size > max_bytes:
        raise TooLarge(name, blob.generation, blob.size, max_bytes)
    try:
        pinned = storage.blob(name, blob.generation)  # that generation's bytes, whatever happens next
        data = pinned.download_as_bytes(timeout=timeout)  # that generation: its size is checked
    except NotFound:  # gone between the two calls
        return Held(0, None)
    return Held(blob.generation, data, dict(blob.metadata or {}))


def write(name: str, data: bytes, based_on: int, writer: str, content_type: str, timeout: float = 60,
          job: str | None = None) -> int:
    """Write `data` if the object is still at generation `based_on`; its new generation. Raises Moved.
    `job`: the job whose unit writes it, recorded on the object so that the unit, run again, knows it is done."""
    blob = storage.bucket().blob(name)
    blob.metadata = {WRITER: writer, **({WRITTEN_BY_JOB: job} if job else {})}
    try:
        blob.upload_from_string(data, content_type=content_type, if_generation_match=based_on, timeout=timeout)
    except PreconditionFailed:
        raise Moved(*_now(name, timeout)) from None
    return blob.generation


def delete(name: str, based_on: int, timeout: float = 60) -> None:
    """Delete the object if it is still at generation `based_on`. Raises Moved."""
    found = storage.bucket().get_blob(name, timeout=timeout)
    if found is None or found.generation != based_on:  # fake-gcs-server ignores a delete's precondition
        raise Moved(*_now(name, timeout))
    try:
        storage.bucket().blob(name).delete(if_generation_match=based_on, timeout=timeout)
    except (PreconditionFailed, NotFound):
        raise Moved(*_now(name, timeout)) from None


def _now(name: str, timeout: float) -> tuple[int, bytes | None]:
    """What a Moved carries: the object's generation, and its content unless it is too large to read."""
    try:
        return current(name, timeout)
    except TooLarge as too_large:
        return too_large.generation, None
