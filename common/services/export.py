"""The export function's work: one message on the export topic ->
  {"dataset", "version"}: that version frozen (common.services.versions), or
  {"export_id"}: that export written as a YOLO, COCO or Pascal VOC zip under derived/exports/.

An export reads a version only, so it is reproducible: without one it freezes a new version first, made and
recorded on the export in one transaction (one version per export, whatever crashes or comes twice).

The zip is written in parts (common/domain/export_parts.py), each once: a run of images with their
annotation files, then the tail (data.yaml, the VOC lists or the COCO JSON). A part streams into its own
object (images fetched a window ahead by a pool of threads, each whole in memory only below IN_MEMORY_BYTES)
and is committed by creating its directory object, whose metadata pins the plan it was cut from. A delivery
resumes after the last committed part, so a crash or a redelivery redoes at most the part under way. A call
writes parts for EXPORT_CALL_SECONDS, then hands the rest to a new call (its own message again); whoever
finds every part done composes the archive (server-side) and completes the export, and a failure in between
is finished by the next delivery.

One delivery works at a time: the kernel's claim (job_store.claim on exports.lease) kept alive by its Heartbeat.
A delivery that finds a live claim raises ExportBusy so that its message comes back (the claimant may die), and
takes the export over once the lease ran out.
"""
from __future__ import annotations

import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from collections.abc import Generator, Iterator

from common.cloud import export_parts as stored_parts, job_store, storage, topics, version_store
from common.domain import coco, export_parts, exports, layout, versions as version_rules, zip_parts
from common.domain import jobs as kernel
from common.domain import messages
from common.domain.export_parts import PartRecord, PartsMismatch
from common.domain.exports import ExportPlan, InvalidExportRequest, Member
from common.domain.versions import InvalidVersionRequest
from common.platform import config, log
from common.platform.events import PubSubMessage, decode
from common.platform.failures import is_transient
from common.platform.handler import Outcome, Result
from common.services import versions

PROGRESS_SECONDS = 1.0
DOWNLOAD_THREADS = 16
PREFETCH = 32
IN_MEMORY_BYTES = 16 * 1024 * 1024
STREAM_CHUNK_BYTES = 4 * 1024 * 1024
PART_BYTES = 512 * 1024 * 1024  # a part ends past this many bytes (fewer images when they are large)


class ExportBusy(Exception):
    """Another delivery holds the export's claim: this message is given back, to take over if that one died."""


class ExportCancelled(Exception):
    """The export was cancelled while this call wrote it: it stops, and composes nothing."""


def cancel(export_id: str, by: str | None) -> dict:
    """Cancel an export that is queued or running, in one transaction: the export as it is now. A call writing
    its parts stops at its next part and composes nothing; the export's message is sent so that the export
    function removes the parts written (a retried cancel sends it again). CannotCancel once it has ended;
    NoSuchJob."""
    document = job_store.cancel(version_store.exports(), export_id, lambda _: exports.CANCEL, by) \
        if layout.is_document_id(export_id) else None
    if document is None:
        raise kernel.NoSuchJob(f"no export {export_id!r}")
    topics.publish(config.export_topic(), messages.ExportRequest(export_id=export_id))
    return document


def handle(message: PubSubMessage) -> Outcome:
    request = decode(message, messages.EXPORT_TOPIC)
    if isinstance(request, messages.ExportRequest):
        return _export(request.export_id)
    return _version(request.dataset, request.version)


def _version(dataset: str, version: str) -> Outcome:
    try:
        document = versions.freeze(dataset, version)
    except InvalidVersionRequest as exc:
        return Outcome(Result.REJECTED, str(exc))
    if not version_rules.is_frozen(document):
        return Outcome(Result.REJECTED, f"version {version} of {dataset} failed: {document.get('error')}")
    return Outcome(Result.APPLIED, f"version {version} of {dataset} frozen", {"images": document["stats"]["images"]})


def _export(export_id: str) -> Outcome:
    deadline = time.monotonic() + config.export_call_seconds()
    claim = _claim(export_id)
    if not claim.taken:
        stored = claim.document
        if stored and stored["status"] in (exports.COMPLETED, exports.CANCELLED):
            stored_parts.remove(layout.export_parts(export_id))  # left by a call that ended it and died, or cancelled
        return Outcome(Result.DUPLICATE, f"export {export_id} is {stored['status'] if stored else 'unknown'}")
    document = claim.found  # _claim refuses an export that does not exist
    try:
        with job_store.Heartbeat(claim):
            version = document.get("version") or _version_for(document)
            versions.freeze(document["dataset"], version)  # at once when completed; else finishes what a crash left
            call = _write(document, version, versions.read_frozen(document["dataset"], version), deadline)
    except (InvalidVersionRequest, InvalidExportRequest, PartsMismatch) as exc:
        _end(export_id, exports.FAILED, {"error": str(exc)})
        return Outcome(Result.REJECTED, f"export {export_id} failed: {exc}")
    except ExportBusy:
        raise  # the claim is another delivery's now: leave it
    except ExportCancelled:
        return _stopped(export_id)
    except Exception as exc:
        requeued = {"status": exports.QUEUED, **kernel.lease_released(claim.lease)}  # resumed at once
        ended = version_store.settle_export(export_id, requeued) if is_transient(exc) else \
            _end(export_id, exports.FAILED, {"error": f"the export failed: {exc!r}"})
        if ended:
            return _stopped(export_id)  # it ended meanwhile (a cancel: its parts may have gone under this call)
        raise
    if call.result is None:
        return _continue(call, claim)
    return Outcome(Result.APPLIED, f"export {export_id} written", {**call.result, **call.fields()})


def _claim(export_id: str) -> job_store.Claim:
    """The export, claimed by this delivery (and running) unless it is unknown or has ended; ExportBusy while
    another delivery's claim is alive."""
    def running(found: dict) -> dict:
        return {"status": exports.RUNNING, "started_at": found.get("started_at") or time.time()}
    try:
        return version_store.claim_export(export_id, exports.lease(config.export_lease_seconds()), uuid.uuid4().hex,
                                          lambda found: bool(found) and found["status"] not in exports.FINAL, running)
    except kernel.LeaseHeld:
        raise ExportBusy(f"export {export_id} is being written by another delivery") from None


def _version_for(document: dict) -> str:
    """The version of an export that named none: made and recorded on the export at once."""
    return versions.request(document["dataset"], {"name": None, "note": f"frozen for export {document['id']}"},
                            document.get("requested_by"), asked_by=version_store.export_request(document["id"]))["id"]


@dataclass
class _Call:
    """One call's share of an export: what it found done, what it wrote."""
    document: dict
    version: str
    plan: ExportPlan
    placed: list[tuple[Member, str]]
    pin: str
    prefix: str
    deadline: float
    attempt: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    found: int = 0
    written: int = 0
    files_written: int = 0
    images: Generator[tuple[Member, str, Iterator[bytes]], None, None] | None = None  # closed to stop its downloads
    done: list[PartRecord] = field(default_factory=list)
    result: dict | None = None  # once the archive is made

    def fields(self) -> dict:
        return {"parts_found": self.found, "parts_written": self.written, "files_written": self.files_written}


def _write(document: dict, version: str, frozen: dict, deadline: float) -> _Call:
    """As many parts as this call has time for, and the archive once every part is done."""
    plan = exports.plan(frozen, document.get("background", True))
    placed = exports.placed(plan, document["format"])
    version_store.update_export(document["id"], {"version": version, "files_total": len(plan.members),
                                                 "excluded": plan.excluded, "splits": plan.splits,
                                                 "boxes_per_class": plan.boxes_per_class})
    pin = export_parts.plan_pin(version, document["format"], document.get("background", True), placed)
    call = _Call(document, version, plan, placed, pin, layout.export_parts(document["id"]), deadline)
    try:
        _parts_then_archive(call)
    finally:
        if call.images is not None:
            call.images.close()  # stops the downloads still ahead of a part cut short
    return call


def _parts_then_archive(call: _Call) -> None:
    done = call.done = export_parts.resumed(stored_parts.done(call.prefix), call.pin)
    call.found = len(done)
    while not export_parts.is_complete(done):
        if call.written and time.monotonic() >= call.deadline:
            return
        if len(done) >= export_parts.MAX_PARTS:
            raise InvalidExportRequest(f"the export needs more than {export_parts.MAX_PARTS} parts: export a "
                                       "smaller version (fewer images), or raise EXPORT_PART_FILES")
        _stop_if_cancelled(call.document["id"])
        done.append(_next_part(call, done))
    _stop_if_cancelled(call.document["id"])
    call.result = _finish(call, done)


def _stop_if_cancelled(export_id: str) -> None:
    """Between two parts: a cancel recorded meanwhile stops this call."""
    if version_store.export_status(export_id) == exports.CANCELLED:
        raise ExportCancelled(export_id)


def _stopped(export_id: str) -> Outcome:
    """A call whose export ended under it (cancelled): the parts written go, the message is done."""
    stored_parts.remove(layout.export_parts(export_id))
    status = version_store.export_status(export_id)
    return Outcome(Result.DUPLICATE, f"export {export_id} is {status}: this call stopped, the parts are removed")


def _next_part(call: _Call, done: list[PartRecord]) -> PartRecord:
    first, index = export_parts.next_image(done), len(done)
    tail = first == len(call.placed)
    name = export_parts.data_name(call.prefix, index, call.attempt)
    progress = _Progress(call.document["id"])
    fill = (lambda part: _add_annotations(part, call)) if tail else (
        lambda part: _add_images(part, call, first, progress))
    written = stored_parts.write(name, export_parts.offset(done), fill)
    end = first + written.images
    record = PartRecord(index, first, end, tail, call.pin, name, written.generation, written.size,
                        len(written.infos), export_parts.directory_name(call.prefix, index))
    kept = stored_parts.commit(record, zip_parts.directory_records(written.infos))
    if kept.data != name:  # another delivery committed this part first: it is writing the export
        raise ExportBusy(f"part {index} of export {call.document['id']} was committed by another delivery")
    call.written, call.files_written = call.written + 1, call.files_written + end - first
    return kept


def _add_images(part: zip_parts.PartWriter, call: _Call, first: int, progress: _Progress) -> int:
    """Images from `first` on, each with its annotation file, until the part is full or the call's time is
    up; how many."""
    if call.images is None:
        call.images = _fetched(call.placed[first:])
    limit, count = min(config.export_part_files(), len(call.placed) - first), 0
    while count < limit and not (count and (part.size >= PART_BYTES or time.monotonic() >= call.deadline)):
        member, image_name, pieces = next(call.images)
        part.add_pieces(image_name, pieces, compress=False)
        for name, data in exports.member_annotations(member, image_name, call.document["format"],
                                                     call.plan.classes):
            part.add(name, data)
        count += 1
        progress.report(first + count, part.offset + part.size)
    return count


def _add_annotations(part: zip_parts.PartWriter, call: _Call) -> int:
    """The files written once per archive, after every image; 0 images."""
    plan, export_format = call.plan, call.document["format"]
    if export_format == exports.YOLO:
        part.add("data.yaml", exports.yolo_data_yaml(plan))
    elif export_format == exports.VOC:
        for name, data in exports.voc_lists(plan, call.placed):
            part.add(name, data)
    else:
        _add_coco(part, plan, f"{call.document['dataset']} {call.version}")
    return 0


def _add_coco(part: zip_parts.PartWriter, plan: ExportPlan, description: str) -> None:
    image_id, annotation_id = 1, 1
    for split in plan.splits:
        images = exports.coco_images(plan, split, image_id)
        part.add_pieces(f"annotations/instances_{split}.json",
                        coco.instances_json(images, plan.classes, annotation_id, description))
        image_id, annotation_id = image_id + len(images), annotation_id + coco.annotation_count(images)


def _continue(call: _Call, claim: job_store.Claim) -> Outcome:
    """Release the claim and ask for a new call (a failed publish raises: this message comes back instead)."""
    job_store.release(claim, files_done=export_parts.next_image(call.done))
    topics.publish(config.export_topic(), messages.ExportRequest(export_id=call.document["id"]))
    return Outcome(Result.APPLIED, f"export {call.document['id']}: {len(call.done)} parts done, continues in a "
                   "new call", call.fields())


def _finish(call: _Call, done: list[PartRecord]) -> dict:
    """Compose the archive from the parts and complete the export; safe to repeat until the parts are removed."""
    path = layout.export_archive(call.document["id"], call.document["dataset"], call.version,
                                 call.document["format"])
    end = stored_parts.put(export_parts.end_name(call.prefix), zip_parts.end_records(*export_parts.end_fields(done)))
    size = stored_parts.compose(path, export_parts.sources(done, end), call.prefix)
    result = {"uri": versions.storage_uri(path), "bytes": size, "files_done": len(call.placed)}
    if _end(call.document["id"], exports.COMPLETED, result) == exports.CANCELLED:  # since the last look: none stays
        storage.blob(path).delete()
        raise ExportCancelled(call.document["id"])
    stored_parts.remove(call.prefix)
    return result


def _fetched(placed: list[tuple[Member, str]]) -> Generator[tuple[Member, str, Iterator[bytes]], None, None]:
    """Each member with its name in the archive and its bytes, in order; downloads run PREFETCH images ahead."""
    with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
        window: deque = deque()
        for member, image_name in placed:
            window.append((member, image_name, pool.submit(_head, member)))
            if len(window) >= PREFETCH:
                yield _pieces(*window.popleft())
        while window:
            yield _pieces(*window.popleft())


def _head(member: Member) -> bytes:
    """The image's bytes, or its first IN_MEMORY_BYTES + 1 when it is larger."""
    return storage.blob(member.source_path, member.source_generation).download_as_bytes(start=0, end=IN_MEMORY_BYTES)


def _pieces(member: Member, image_name: str, head) -> tuple[Member, str, Iterator[bytes]]:
    data = head.result()
    if len(data) <= IN_MEMORY_BYTES:
        return member, image_name, iter([data])
    return member, image_name, _streamed(member)


def _streamed(member: Member) -> Iterator[bytes]:
    blob = storage.blob(member.source_path, member.source_generation)
    with blob.open("rb", chunk_size=STREAM_CHUNK_BYTES) as reader:
        while chunk := reader.read(STREAM_CHUNK_BYTES):
            yield chunk


class _Progress:
    """files_done and bytes on the export, at most once per PROGRESS_SECONDS (the claim's Heartbeat keeps the
    lease)."""

    def __init__(self, export_id: str):
        self.export_id, self.last = export_id, 0.0

    def report(self, done: int, written: int) -> None:
        if time.monotonic() - self.last >= PROGRESS_SECONDS:
            self.last = time.monotonic()
            version_store.update_export(self.export_id, {"files_done": done, "bytes": written})


def _end(export_id: str, status: str, fields: dict) -> str | None:
    """The export ended so unless it had ended already (version_store.settle_export): None, else that state.
    A failure is said in a line the failed-jobs metric counts (log.job_event)."""
    ended_before = version_store.settle_export(export_id, {"status": status, "finished_at": time.time(), **fields})
    if ended_before is None and status == exports.FAILED:
        log.job_event(log.JOB_FAILED, "export", export_id, reason=fields.get("error"))
    return ended_before
