"""What one storage object event does to the index.

A bad file is a recorded issue and an APPLIED outcome; only transient failures
(storage or Firestore unavailable) raise, so the platform retries them.
"""
from __future__ import annotations

import io

from google.api_core.exceptions import NotFound

from common.cloud import dataset_index, storage
from common.domain import entries
from common.domain.datayaml import DataYaml, parse_data_yaml, size_issue
from common.domain.entries import ImageRecord, LabelRecord
from common.domain.imaging import identify_image
from common.domain.issues import Issue
from common.domain.labels import ParsedLabel, parse_label
from common.domain.layout import ObjectRole, classify, thumbnail_path
from common.platform import config, log
from common.platform.events import DELETED, ObjectEvent
from common.platform.handler import Outcome, Result
from common.services import archive_import, dataset_jobs

MAX_LABEL_BYTES = 4 * 1024 * 1024
IN_MEMORY_BYTES = 16 * 1024 * 1024  # smaller images are read in one request

GONE = Outcome(Result.STALE, "stale event: that generation is gone from the bucket")
STALE = Outcome(Result.STALE, "stale event: a newer generation or a delete is indexed")
DUPLICATE = Outcome(Result.DUPLICATE, "duplicate event: this generation is indexed")


def handle(event: ObjectEvent) -> Outcome:
    """Apply one event to the index."""
    role = classify(event.name)
    if event.bucket != config.data_bucket():
        return Outcome(Result.IGNORED, f"ignored: bucket {event.bucket} is not the data bucket")
    if role.kind in ("ignored", "invalid_dataset"):
        return Outcome(Result.IGNORED, f"ignored ({role.kind})")
    if event.action == DELETED and event.overwritten:
        # Not a removal: applying it would show the object gone (a label, the classes) until the
        # new generation's finalize arrives, and start a needless revalidation for data.yaml.
        return Outcome(Result.STALE, "overwritten, not deleted: the new generation's event follows")
    dataset_index.ensure_dataset(role.dataset)
    handler = {"image": _image, "label": _label, "data_yaml": _data_yaml, "other": _other,
               "import": archive_import.handle}[role.kind]
    return handler(event, role)


def _applied(applied: bool, what: str, issues: list[Issue] | None = None) -> Outcome:
    return Outcome(Result.APPLIED, what, {"issues": len(issues or [])}) if applied else STALE


def _remove_part(event: ObjectEvent, role: ObjectRole, part: str) -> Outcome:
    update = dataset_index.update_entry(role.dataset, role.key, role.split, part, event.generation,
                                        lambda entry: entries.delete_part(entry, part, event.generation, event.name),
                                        deleting=True, path=event.name)
    _remove_orphan(update)
    return _applied(update.applied, f"{part} removed")


def _store_part(event: ObjectEvent, role: ObjectRole, part: str, record: ImageRecord | LabelRecord,
                issues: list[Issue]) -> Outcome:
    update = dataset_index.update_entry(role.dataset, role.key, role.split, part, event.generation,
                                        lambda entry: entries.set_part(entry, part, record, issues),
                                        content=record.get("sha256"), path=event.name)
    _remove_orphan(update)
    return _applied(update.applied, f"{part} indexed", issues)


def _remove_orphan(update: dataset_index.EntryUpdate) -> None:
    """The thumbnail of content no entry holds any more. A failure here leaves a file, never a wrong index:
    the event is done, so it is not retried for this."""
    if update.orphaned_thumbnail:
        name, generation = update.orphaned_thumbnail
        try:
            removed = storage.delete_generation(name, generation)
        except Exception as error:  # noqa: BLE001 - a transient storage failure costs a stray file only
            log.warning("orphaned thumbnail not removed", thumbnail=name, error=repr(error)[:300])
            return
        log.info("orphaned thumbnail removed" if removed else "orphaned thumbnail already replaced or gone",
                 thumbnail=name, generation=generation)


def _already_indexed(event: ObjectEvent, role: ObjectRole, part: str) -> bool:
    """Cheap guard before any download: a duplicate or superseded event. The
    transaction checks again; this only saves the download of a known generation."""
    held = dataset_index.read_generations(role.dataset, role.key, part, event.name)
    return held is not None and entries.is_stale(held, part, event.generation, path=event.name)


def _image(event: ObjectEvent, role: ObjectRole) -> Outcome:
    if event.action == DELETED:
        return _remove_part(event, role, "image")
    if _already_indexed(event, role, "image"):
        return DUPLICATE
    try:
        facts = _identify(event, role)
    except NotFound:
        return GONE
    thumbnail = thumbnail_path(role.dataset, facts.sha256) if facts.thumbnail else None
    thumbnail_generation = storage.upload(thumbnail, facts.thumbnail, "image/jpeg") if thumbnail else None
    record = ImageRecord(path=event.name, generation=event.generation, sha256=facts.sha256, size=facts.size,
                         format=facts.format, width=facts.width, height=facts.height,
                         orientation=facts.orientation, oriented_width=facts.oriented_width,
                         oriented_height=facts.oriented_height, thumbnail=thumbnail,
                         thumbnail_generation=thumbnail_generation, exif=facts.exif)
    return _store_part(event, role, "image", record, facts.issues)


def _identify(event: ObjectEvent, role: ObjectRole):
    blob = storage.blob(event.name, event.generation)
    if event.size is not None and event.size <= IN_MEMORY_BYTES:
        return identify_image(io.BytesIO(blob.download_as_bytes()), event.name, role.extension)
    with blob.open("rb", chunk_size=storage.CHUNK_BYTES) as reader:
        return identify_image(reader, event.name, role.extension)


def _label(event: ObjectEvent, role: ObjectRole) -> Outcome:
    if event.action == DELETED:
        return _remove_part(event, role, "label")
    if _already_indexed(event, role, "label"):
        return DUPLICATE
    parsed = _read_label(event)
    if parsed is None:
        return GONE
    record = LabelRecord(path=event.name, generation=event.generation,
                         boxes=[box.to_dict() for box in parsed.boxes])
    return _store_part(event, role, "label", record, parsed.issues)


def _read_label(event: ObjectEvent) -> ParsedLabel | None:
    if event.size is not None and event.size > MAX_LABEL_BYTES:
        issue = Issue("label_too_large", f"the file is {event.size} bytes; the limit is {MAX_LABEL_BYTES} bytes",
                      event.name)
        return ParsedLabel(boxes=[], issues=[issue])
    try:
        data = storage.blob(event.name, event.generation).download_as_bytes()
    except NotFound:
        return None
    return parse_label(data, event.name)


def _data_yaml(event: ObjectEvent, role: ObjectRole) -> Outcome:
    if event.action == DELETED:
        names, issues = None, None
    else:
        try:
            parsed = _read_yaml(event)
        except NotFound:
            return GONE
        names, issues = parsed.names, parsed.issues
    if not dataset_index.put_data_yaml(role.dataset, event.name, event.generation, names, issues):
        return STALE
    # Every label is checked again against the new classes, as a job in chunks: at any size (a redelivered
    # event finds the job of its generation), with progress, and the statistics exact when it ends.
    job = dataset_jobs.start_revalidation(role.dataset, event.generation)
    return Outcome(Result.APPLIED, f"classes {'removed' if names is None else 'set'}; revalidation {job['id']}",
                   {"issues": len(issues or []), "job_id": job["id"]})


def _read_yaml(event: ObjectEvent) -> DataYaml:
    too_large = size_issue(event.size, event.name) if event.size is not None else None
    if too_large:  # known from the event: not worth a download
        return DataYaml(None, [too_large])
    return parse_data_yaml(storage.blob(event.name, event.generation).download_as_bytes(), event.name)


def _other(event: ObjectEvent, role: ObjectRole) -> Outcome:
    issues = None if event.action == DELETED else [Issue(
        "unrecognized_file", "not an image under images/, a .txt label under labels/ or data.yaml at "
        "the dataset root; ingest ignores it", event.name)]
    return _applied(dataset_index.put_file(role.dataset, event.name, event.generation, issues),
                    "unrecognized file", issues)
