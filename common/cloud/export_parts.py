"""An export's parts in the bucket (common/domain/export_parts.py says what they are), and the archive composed
from them.

A part's entries stream into their own object through `blob.open("wb")` (a resumable upload sent in
CHUNK_BYTES pieces), so memory stays flat however large a part grows; a part that fails half-way is never
finished, and nothing names it. Its directory object is then created only if absent (`if_generation_match=0`):
that is the part's commit. The archive is one compose of every part's entries, every part's directory and
the end records, joined 32 at a time (Cloud Storage's limit per request), server-side: nothing is downloaded.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, replace
from collections.abc import Callable

from google.api_core.exceptions import NotFound, PreconditionFailed

from common.cloud import storage
from common.domain import export_parts, zip_parts
from common.domain.export_parts import PartRecord

CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class WrittenPart:
    name: str
    generation: int
    size: int
    infos: list[zipfile.ZipInfo]
    images: int  # what `fill` returned


def done(prefix: str) -> list[PartRecord]:
    """Every part committed under `prefix` (one listing: the records are the directory objects' metadata)."""
    return [export_parts.record_of(blob.name, int(blob.generation), int(blob.size), blob.metadata or {})
            for blob in storage.client().list_blobs(storage.bucket(), prefix=prefix)
            if export_parts.index_of(blob.name) is not None]


def write(name: str, offset: int, fill: Callable[[zip_parts.PartWriter], int]) -> WrittenPart:
    """A part's entries, written by `fill` (which says how many images it wrote) into object `name` as they
    come; an exception from `fill` leaves the upload unfinished (no object)."""
    blob = storage.blob(name)
    writer = blob.open("wb", chunk_size=CHUNK_BYTES, content_type="application/octet-stream", ignore_flush=True)
    part = zip_parts.PartWriter(writer, offset)
    images = fill(part)
    infos = part.finish()
    writer.close()
    blob.reload()
    return WrittenPart(name, int(blob.generation), part.size, infos, images)


def commit(record: PartRecord, directory: bytes) -> PartRecord:
    """Create the part's directory object with its record, unless another attempt did first: the record that
    holds (this one, or the first one's)."""
    blob = storage.blob(record.directory)
    blob.metadata = export_parts.metadata(record)
    try:
        blob.upload_from_string(directory, content_type="application/octet-stream", if_generation_match=0)
    except PreconditionFailed:
        kept = storage.bucket().get_blob(record.directory)
        return export_parts.record_of(kept.name, int(kept.generation), int(kept.size), kept.metadata or {})
    return replace(record, directory_generation=int(blob.generation), directory_bytes=len(directory))


def put(name: str, data: bytes) -> tuple[str, int]:
    blob = storage.blob(name)
    blob.upload_from_string(data, content_type="application/octet-stream")
    return name, int(blob.generation)


def compose(target: str, sources: list[tuple[str, int]], prefix: str) -> int:
    """Object `target` made of `sources` in order (a zip); its size. More than COMPOSE_SOURCES are joined in
    groups first, each group into an object of its own under `prefix`."""
    level = 0
    while len(sources) > export_parts.COMPOSE_SOURCES:
        groups = [sources[k:k + export_parts.COMPOSE_SOURCES]
                  for k in range(0, len(sources), export_parts.COMPOSE_SOURCES)]
        joined = [_composed(f"{prefix}compose-{level}-{n:05d}", group) for n, group in enumerate(groups)]
        sources = [(blob.name, int(blob.generation)) for blob in joined]
        level += 1
    return int(_composed(target, sources, "application/zip").size)


def _composed(name: str, sources: list[tuple[str, int]], content_type: str = "application/octet-stream"):
    blob = storage.blob(name)
    blob.content_type = content_type
    blob.compose([storage.blob(source, generation) for source, generation in sources])
    return blob


def remove(prefix: str) -> int:
    """Delete every object under `prefix` (the parts, once the archive is made); how many there were."""
    removed = 0
    for blob in storage.client().list_blobs(storage.bucket(), prefix=prefix):
        try:
            blob.delete()
        except NotFound:
            pass  # another delivery removed it
        removed += 1
    return removed
