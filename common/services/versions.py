"""Freezing a version: the snapshot of the index, its content kept, its image list written once.

Runs in the export function (a version request is a message on the export
topic; an export without a version freezes one first). Idempotent: a
redelivered request for a completed version changes nothing, the image list is
written once (`if_generation_match=0`: a retry keeps the first, and a freeze
that finds it written counts what it references), and content already in the
store is not copied again. Its storage counts are exact however often the
freeze ran: a copy names the version that wrote it (common.cloud.content_store).
"""
from __future__ import annotations

import json
import time

from google.api_core.exceptions import NotFound, PreconditionFailed

from common.cloud import content_store, index_snapshot, storage, version_store
from common.domain import layout, versions
from common.domain.versions import InvalidVersionRequest


def request(dataset: str, fields: dict, requested_by: str | None, seconds: float | None = None,
            asked_by=None) -> dict:
    """A new version document (queued) under the next number; with `asked_by` (the document of an export
    that freezes one), the one version that request ever gets (version_store.create_version)."""
    return version_store.create_version(
        dataset, lambda number: versions.new_document(dataset, number, fields, requested_by, time.time()), seconds,
        asked_by)


def freeze(dataset: str, version: str) -> dict:
    """The version, frozen (status completed), or failed with the reason; raises only transient failures."""
    document = version_store.read_version(dataset, version)
    if document is None:
        raise InvalidVersionRequest(f"no version {version!r} of dataset {dataset!r}")
    if versions.has_ended(document):
        return document
    version_store.update_version(dataset, version, {"status": versions.RUNNING, "phase": versions.FREEZING,
                                                    "started_at": time.time()})
    try:
        frozen, kept = _frozen(dataset, version)
    except InvalidVersionRequest as exc:
        failed = {"status": versions.FAILED, "phase": versions.FREEZING, "finished_at": time.time(),
                  "error": str(exc)}
        version_store.update_version(dataset, version, failed)
        return {**document, **failed}
    done = {"status": versions.COMPLETED, "phase": versions.READY, "frozen_at": time.time(),
            "classes": frozen["classes"], "stats": versions.summary(frozen),
            "snapshot": storage_uri(layout.version_snapshot(dataset, version)),
            "storage": {"referenced_bytes": kept.referenced_bytes, "new_bytes": kept.new_bytes}}
    version_store.update_version(dataset, version, done)
    return {**document, **done}


def _frozen(dataset: str, version: str) -> tuple[dict, content_store.Kept]:
    """The version's image list and its content kept; an image list a previous run wrote stays the version's."""
    path, writer = layout.version_snapshot(dataset, version), versions.qualified_id(dataset, version)
    if not storage.blob(path).exists():
        taken = index_snapshot.current(dataset)
        if taken is None or not taken.classes:
            raise InvalidVersionRequest(f"dataset {dataset!r} has no classes yet: drop a data.yaml first")
        if not taken.images:
            raise InvalidVersionRequest(f"dataset {dataset!r} has no usable image (excluded: {taken.excluded})")
        kept = content_store.keep(taken.images, writer)
        frozen = versions.frozen_document(taken, version, kept.generations)
        if _written_now(path, frozen):
            return frozen, kept
    frozen = read_frozen_at(path)
    return frozen, content_store.measure([image["sha256"] for image in frozen["images"]], writer)


def _written_now(path: str, frozen: dict) -> bool:
    """Write the image list unless a previous run did (False: it did)."""
    try:
        storage.blob(path).upload_from_string(json.dumps(frozen), content_type="application/json",
                                              if_generation_match=0)
        return True
    except PreconditionFailed:
        return False


def read_frozen(dataset: str, version: str) -> dict:
    """A completed version's image list (an older deployment's `ready` one too); InvalidVersionRequest when
    there is none."""
    document = version_store.read_version(dataset, version)
    if document is None:
        raise InvalidVersionRequest(f"no version {version!r} of dataset {dataset!r}")
    if not versions.is_frozen(document):
        status, phase = versions.state(document)
        raise InvalidVersionRequest(f"version {version} of dataset {dataset!r} is {status}"
                                    f"{f' ({phase})' if phase else ''}, not completed"
                                    + (f": {document['error']}" if document.get("error") else ""))
    return read_frozen_at(layout.version_snapshot(dataset, version))


def read_frozen_at(path: str) -> dict:
    try:
        return json.loads(storage.blob(path).download_as_bytes())
    except NotFound:
        raise InvalidVersionRequest(f"the image list of this version is missing from the bucket ({path})") from None


def storage_uri(path: str) -> str:
    return f"gs://{storage.bucket().name}/{path}"
