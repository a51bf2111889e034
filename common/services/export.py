"""The export function's work: one message on the export topic ->
  {"dataset", "version"}: that version frozen (common.services.versions), or
  {"export_id"}: that export written as a YOLO, COCO or Pascal VOC zip under derived/exports/.

An export reads a version only, so it is reproducible: without one it freezes
a new version first and records it before writing anything. The zip streams
(common.cloud.zip_upload): images are fetched a window ahead by a pool of
threads, each whole in memory only below IN_MEMORY_BYTES (larger ones are
streamed), and written in order; memory does not grow with the dataset's size.

Idempotent per export: a claim with a heartbeat lets one delivery work on it. A
redelivery while the heartbeat is fresh is a duplicate; after the lease (a
worker that died) it starts again, writing the same archive name.
"""
from __future__ import annotations

import json
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

from common.cloud import db, storage, version_store, zip_upload
from common.domain import coco, exports, layout, versions as version_rules
from common.domain.exports import ExportPlan, Member
from common.domain.versions import InvalidVersionRequest
from common.platform.events import PubSubMessage
from common.platform.failures import is_transient
from common.platform.handler import Outcome, Result
from common.services import versions

LEASE_SECONDS = 120
PROGRESS_SECONDS = 1.0
DOWNLOAD_THREADS = 16
PREFETCH = 32
IN_MEMORY_BYTES = 16 * 1024 * 1024
STREAM_CHUNK_BYTES = 4 * 1024 * 1024


def handle(message: PubSubMessage) -> Outcome:
    try:
        body = json.loads(message.data)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("export_id"), str):
        return _export(body["export_id"])
    if isinstance(body, dict) and isinstance(body.get("dataset"), str) and isinstance(body.get("version"), str):
        return _version(body["dataset"], body["version"])
    return Outcome(Result.REJECTED, "not an export request: expected {\"export_id\"} or {\"dataset\", \"version\"}")


def _version(dataset: str, version: str) -> Outcome:
    try:
        document = versions.freeze(dataset, version)
    except InvalidVersionRequest as exc:
        return Outcome(Result.REJECTED, str(exc))
    if document["status"] != version_rules.READY:
        return Outcome(Result.REJECTED, f"version {version} of {dataset} failed: {document.get('error')}")
    return Outcome(Result.APPLIED, f"version {version} of {dataset} frozen", {"images": document["stats"]["images"]})


def _export(export_id: str) -> Outcome:
    ref = version_store.exports().document(export_id)
    document = _claim(ref)
    if document is None:
        return Outcome(Result.DUPLICATE, f"export {export_id} is done, running elsewhere, or unknown")
    try:
        version = document.get("version") or _freeze_for(ref, document)
        written = _write(ref, document, version, versions.read_frozen(document["dataset"], version))
    except InvalidVersionRequest as exc:
        _end(ref, exports.FAILED, {"error": str(exc)})
        return Outcome(Result.REJECTED, f"export {export_id} failed: {exc}")
    except Exception as exc:
        if is_transient(exc):
            ref.update({"status": exports.QUEUED, "heartbeat": 0})  # the redelivery starts at once
        else:
            _end(ref, exports.FAILED, {"error": f"the export failed: {exc!r}"})
        raise
    return Outcome(Result.APPLIED, f"export {export_id} written", written)


def _claim(ref) -> dict | None:
    """The export when this delivery may work on it; None when done or worked on elsewhere."""
    def work(transaction) -> dict | None:
        found = ref.get(transaction=transaction, **db.deadline())
        document = found.to_dict() if found.exists else None
        if document is None or document["status"] in (exports.COMPLETED, exports.FAILED):
            return None
        if document["status"] == exports.RUNNING and time.time() - document.get("heartbeat", 0) < LEASE_SECONDS:
            return None
        transaction.update(ref, {"status": exports.RUNNING, "heartbeat": time.time(), "started_at": time.time()})
        return document
    return db.in_transaction(work)


def _freeze_for(ref, document: dict) -> str:
    """A new version for an export that named none, recorded on the export first."""
    version = versions.request(document["dataset"], {"name": None, "note": f"frozen for export {document['id']}"},
                               document.get("requested_by"))["id"]
    ref.update({"version": version})
    versions.freeze(document["dataset"], version)
    return version


def _write(ref, document: dict, version: str, frozen: dict) -> dict:
    plan = exports.plan(frozen, document.get("background", True))
    path = layout.export_archive(document["id"], document["dataset"], version, document["format"])
    ref.update({"version": version, "files_total": len(plan.members), "excluded": plan.excluded,
                "splits": plan.splits, "boxes_per_class": plan.boxes_per_class, "heartbeat": time.time()})
    progress, placed = _Progress(ref), exports.placed(plan, document["format"])
    with zip_upload.ZipUpload(path) as archive:
        fetched = _fetched(plan.members)  # first in the zip, so that it runs to its end and shuts its pool down
        for done, ((_, pieces), (member, image_name)) in enumerate(zip(fetched, placed), start=1):
            archive.add_pieces(image_name, pieces, compress=False)
            for name, data in exports.member_annotations(member, image_name, document["format"], plan.classes):
                archive.add(name, data)
            progress.report(done, archive.bytes_written)
        _add_annotations(archive, plan, placed, document["format"], f"{document['dataset']} {version}")
    result = {"uri": versions.storage_uri(path), "bytes": archive.bytes_written, "files_done": len(plan.members)}
    _end(ref, exports.COMPLETED, result)
    return result


def _add_annotations(archive: zip_upload.ZipUpload, plan: ExportPlan, placed: list[tuple[Member, str]],
                     export_format: str, description: str) -> None:
    if export_format == exports.YOLO:
        archive.add("data.yaml", exports.yolo_data_yaml(plan))
        return
    if export_format == exports.VOC:
        for name, data in exports.voc_lists(plan, placed):
            archive.add(name, data)
        return
    image_id, annotation_id = 1, 1
    for split in plan.splits:
        images = exports.coco_images(plan, split, image_id)
        archive.add_pieces(f"annotations/instances_{split}.json",
                           coco.instances_json(images, plan.classes, annotation_id, description))
        image_id, annotation_id = image_id + len(images), annotation_id + coco.annotation_count(images)


def _fetched(members: list[Member]) -> Iterator[tuple[Member, Iterator[bytes]]]:
    """Each member with its bytes, in order; downloads run PREFETCH images ahead."""
    with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
        window: deque = deque()
        for member in members:
            window.append((member, pool.submit(_head, member)))
            if len(window) >= PREFETCH:
                yield _pieces(*window.popleft())
        while window:
            yield _pieces(*window.popleft())


def _head(member: Member) -> bytes:
    """The image's bytes, or its first IN_MEMORY_BYTES + 1 when it is larger."""
    return storage.blob(member.source_path, member.source_generation).download_as_bytes(start=0, end=IN_MEMORY_BYTES)


def _pieces(member: Member, head) -> tuple[Member, Iterator[bytes]]:
    data = head.result()
    if len(data) <= IN_MEMORY_BYTES:
        return member, iter([data])
    return member, _streamed(member)


def _streamed(member: Member) -> Iterator[bytes]:
    blob = storage.blob(member.source_path, member.source_generation)
    with blob.open("rb", chunk_size=STREAM_CHUNK_BYTES) as reader:
        while chunk := reader.read(STREAM_CHUNK_BYTES):
            yield chunk


class _Progress:
    """files_done and bytes on the export, at most once per PROGRESS_SECONDS (the heartbeat too)."""

    def __init__(self, ref):
        self.ref, self.last = ref, 0.0

    def report(self, done: int, written: int) -> None:
        if time.monotonic() - self.last >= PROGRESS_SECONDS:
            self.last = time.monotonic()
            self.ref.update({"files_done": done, "bytes": written, "heartbeat": time.time()})


def _end(ref, status: str, fields: dict) -> None:
    ref.update({"status": status, "finished_at": time.time(), **fields})
