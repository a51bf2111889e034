"""What one object event does to the index.

A bad file is a recorded issue and a normal return; only transient failures
(storage or Firestore unavailable) raise, so the platform retries them.
"""
from __future__ import annotations

import io

from google.api_core.exceptions import NotFound

from common import config, entries, index, storage
from common.datayaml import DataYaml, parse_data_yaml
from common.events import DELETED, ObjectEvent
from common.imaging import identify_image
from common.issues import Issue
from common.labels import ParsedLabel, parse_label
from common.paths import ObjectRole, classify, thumbnail_path

MAX_LABEL_BYTES = 4 * 1024 * 1024
MAX_YAML_BYTES = 1024 * 1024
IN_MEMORY_BYTES = 16 * 1024 * 1024  # smaller images are read in one request


def handle(event: ObjectEvent) -> str:
    """Apply one event; return the outcome for the log."""
    role = classify(event.name)
    if role.kind in ("ignored", "invalid_dataset") or event.bucket != config.data_bucket():
        return f"ignored ({role.kind})"
    if role.kind == "import":
        return "ignored (archive imports are not handled yet)"
    index.ensure_dataset(role.dataset)
    handler = {"image": _image, "label": _label, "data_yaml": _data_yaml, "other": _other}[role.kind]
    return handler(event, role)


def _image(event: ObjectEvent, role: ObjectRole) -> str:
    if event.action == DELETED:
        return _outcome(index.update_entry(
            role.dataset, role.key, role.split, "image", event.generation,
            lambda entry: entries.delete_part(entry, "image", event.generation), deleting=True), "image removed")
    if _already_indexed(role, "image", event.generation):
        return "duplicate event"
    try:
        facts = _identify(event, role)
    except NotFound:
        return "stale event (that generation is gone)"
    if facts.thumbnail:
        storage.upload(thumbnail_path(role.dataset, facts.sha256), facts.thumbnail, "image/jpeg")
    record = {"path": event.name, "generation": event.generation, "sha256": facts.sha256,
              "size": facts.size, "format": facts.format, "width": facts.width, "height": facts.height,
              "orientation": facts.orientation, "oriented_width": facts.oriented_width,
              "oriented_height": facts.oriented_height,
              "thumbnail": thumbnail_path(role.dataset, facts.sha256) if facts.thumbnail else None}
    return _outcome(index.update_entry(
        role.dataset, role.key, role.split, "image", event.generation,
        lambda entry: entries.set_part(entry, "image", record, facts.issues)), "image indexed")


def _identify(event: ObjectEvent, role: ObjectRole):
    blob = storage.blob(event.name, event.generation)
    if event.size is not None and event.size <= IN_MEMORY_BYTES:
        return identify_image(io.BytesIO(blob.download_as_bytes()), event.name, role.extension)
    with blob.open("rb", chunk_size=storage.CHUNK_BYTES) as reader:
        return identify_image(reader, event.name, role.extension)


def _label(event: ObjectEvent, role: ObjectRole) -> str:
    if event.action == DELETED:
        return _outcome(index.update_entry(
            role.dataset, role.key, role.split, "label", event.generation,
            lambda entry: entries.delete_part(entry, "label", event.generation), deleting=True), "label removed")
    if _already_indexed(role, "label", event.generation):
        return "duplicate event"
    parsed = _read_label(event)
    if parsed is None:
        return "stale event (that generation is gone)"
    record = {"path": event.name, "generation": event.generation,
              "boxes": [box.to_dict() for box in parsed.boxes]}
    return _outcome(index.update_entry(
        role.dataset, role.key, role.split, "label", event.generation,
        lambda entry: entries.set_part(entry, "label", record, parsed.issues)), "label indexed")


def _read_label(event: ObjectEvent):
    if event.size is not None and event.size > MAX_LABEL_BYTES:
        return _too_large(event, "label_too_large", MAX_LABEL_BYTES)
    try:
        data = storage.blob(event.name, event.generation).download_as_bytes()
    except NotFound:
        return None
    return parse_label(data, event.name)


def _too_large(event: ObjectEvent, code: str, limit: int):
    issue = Issue(code, f"the file is {event.size} bytes; the limit is {limit} bytes", event.name)
    return ParsedLabel(boxes=[], issues=[issue])


def _already_indexed(role: ObjectRole, part: str, generation: int) -> bool:
    """Cheap guard before any download: a duplicate or superseded event."""
    entry = index.read_entry(role.dataset, role.key)
    return entry is not None and entries.is_stale(entry, part, generation)


def _data_yaml(event: ObjectEvent, role: ObjectRole) -> str:
    if event.action == DELETED:
        applied = index.put_data_yaml(role.dataset, event.name, event.generation, None, None)
    else:
        try:
            parsed = _read_yaml(event)
        except NotFound:
            return "stale event (that generation is gone)"
        applied = index.put_data_yaml(role.dataset, event.name, event.generation, parsed.names, parsed.issues)
    if not applied:
        return "stale event"
    revalidated = index.revalidate_labels(role.dataset)
    return f"classes set; {revalidated} labels revalidated"


def _read_yaml(event: ObjectEvent):
    if event.size is not None and event.size > MAX_YAML_BYTES:
        return DataYaml(None, [Issue("yaml_too_large", f"data.yaml is {event.size} bytes; "
                                     f"the limit is {MAX_YAML_BYTES} bytes", event.name)])
    return parse_data_yaml(storage.blob(event.name, event.generation).download_as_bytes(), event.name)


def _other(event: ObjectEvent, role: ObjectRole) -> str:
    issues = None if event.action == DELETED else [Issue(
        "unrecognized_file", "not an image under images/, a .txt label under labels/ or data.yaml at "
        "the dataset root; ingest ignores it", event.name)]
    return _outcome(index.put_file(role.dataset, event.name, event.generation, issues), "unrecognized file")


def _outcome(applied: bool, what: str) -> str:
    return what if applied else "stale event"
