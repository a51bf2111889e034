"""What one object event does to the dataset_index.

A bad file is a recorded issue and a normal return; only transient failures
(storage or Firestore unavailable) raise, so the platform retries them.
"""
from __future__ import annotations

import io
import zipfile
from concurrent.futures import ThreadPoolExecutor

from google.api_core.exceptions import NotFound

from common.cloud import dataset_index, storage
from common.domain import entries
from common.platform import config
from common.domain.archive import plan_import
from common.domain.datayaml import DataYaml, parse_data_yaml, size_issue
from common.platform.events import DELETED, ObjectEvent
from common.domain.imaging import identify_image
from common.domain.issues import Issue
from common.domain.labels import ParsedLabel, parse_label
from common.domain import layout
from common.domain.layout import ObjectRole, classify, thumbnail_path

MAX_LABEL_BYTES = 4 * 1024 * 1024
IN_MEMORY_BYTES = 16 * 1024 * 1024  # smaller images are read in one request


def handle(event: ObjectEvent) -> str:
    """Apply one event; return the outcome for the log."""
    role = classify(event.name)
    if role.kind in ("ignored", "invalid_dataset") or event.bucket != config.data_bucket():
        return f"ignored ({role.kind})"
    dataset_index.ensure_dataset(role.dataset)
    handler = {"image": _image, "label": _label, "data_yaml": _data_yaml, "other": _other,
               "import": _import}[role.kind]
    return handler(event, role)


def _remove_part(event: ObjectEvent, role: ObjectRole, part: str) -> str:
    applied = dataset_index.update_entry(role.dataset, role.key, role.split, part, event.generation,
                                 lambda entry: entries.delete_part(entry, part, event.generation), deleting=True)
    return _outcome(applied, f"{part} removed")


def _store_part(event: ObjectEvent, role: ObjectRole, part: str, record: dict, issues: list[Issue]) -> str:
    applied = dataset_index.update_entry(role.dataset, role.key, role.split, part, event.generation,
                                 lambda entry: entries.set_part(entry, part, record, issues))
    return _outcome(applied, f"{part} indexed")


def _image(event: ObjectEvent, role: ObjectRole) -> str:
    if event.action == DELETED:
        return _remove_part(event, role, "image")
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
    return _store_part(event, role, "image", record, facts.issues)


def _identify(event: ObjectEvent, role: ObjectRole):
    blob = storage.blob(event.name, event.generation)
    if event.size is not None and event.size <= IN_MEMORY_BYTES:
        return identify_image(io.BytesIO(blob.download_as_bytes()), event.name, role.extension)
    with blob.open("rb", chunk_size=storage.CHUNK_BYTES) as reader:
        return identify_image(reader, event.name, role.extension)


def _label(event: ObjectEvent, role: ObjectRole) -> str:
    if event.action == DELETED:
        return _remove_part(event, role, "label")
    if _already_indexed(role, "label", event.generation):
        return "duplicate event"
    parsed = _read_label(event)
    if parsed is None:
        return "stale event (that generation is gone)"
    record = {"path": event.name, "generation": event.generation,
              "boxes": [box.to_dict() for box in parsed.boxes]}
    return _store_part(event, role, "label", record, parsed.issues)


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
    entry = dataset_index.read_entry(role.dataset, role.key)
    return entry is not None and entries.is_stale(entry, part, generation)


def _data_yaml(event: ObjectEvent, role: ObjectRole) -> str:
    if event.action == DELETED:
        applied = dataset_index.put_data_yaml(role.dataset, event.name, event.generation, None, None)
    else:
        try:
            parsed = _read_yaml(event)
        except NotFound:
            return "stale event (that generation is gone)"
        applied = dataset_index.put_data_yaml(role.dataset, event.name, event.generation, parsed.names, parsed.issues)
    if not applied:
        return "stale event"
    revalidated = dataset_index.revalidate_labels(role.dataset)
    return f"classes set; {revalidated} labels revalidated"


def _read_yaml(event: ObjectEvent):
    too_large = size_issue(event.size, event.name) if event.size is not None else None
    if too_large:  # known from the event: not worth a download
        return DataYaml(None, [too_large])
    return parse_data_yaml(storage.blob(event.name, event.generation).download_as_bytes(), event.name)


def _other(event: ObjectEvent, role: ObjectRole) -> str:
    issues = None if event.action == DELETED else [Issue(
        "unrecognized_file", "not an image under images/, a .txt label under labels/ or data.yaml at "
        "the dataset root; ingest ignores it", event.name)]
    return _outcome(dataset_index.put_file(role.dataset, event.name, event.generation, issues), "unrecognized file")


def _outcome(applied: bool, what: str) -> str:
    return what if applied else "stale event"


IMPORT_UPLOAD_THREADS = 8
IMPORT_MARK = "yolodrop-import"  # object metadata: which archive generation wrote it


def _import(event: ObjectEvent, role: ObjectRole) -> str:
    """Unpack imports/<dataset>.zip into datasets/<dataset>/; each unpacked file
    then arrives as an ordinary event. The archive is read with range requests,
    never held whole in memory or on disk."""
    if event.action == DELETED:
        dataset_index.put_file(role.dataset, event.name, event.generation, None)
        return "archive removed (its unpacked files stay)"
    done = dataset_index.read_file(role.dataset, event.name)
    if done and done["generation"] >= event.generation:
        return "duplicate event"
    mark = f"{event.name}#{event.generation}"
    try:
        with storage.blob(event.name, event.generation).open("rb", chunk_size=storage.CHUNK_BYTES) as reader:
            unpacked, issues = _unpack(reader, role.dataset, event.name, mark)
    except NotFound:
        return "stale event (that generation is gone)"
    except zipfile.BadZipFile as exc:
        unpacked, issues = 0, [Issue("import_not_a_zip", f"the archive cannot be read as a zip file: {exc}",
                                     event.name)]
    dataset_index.put_file(role.dataset, event.name, event.generation, issues, {"unpacked": unpacked})
    return f"archive unpacked: {unpacked} files, {len(issues)} issues"


def _unpack(reader, dataset: str, archive: str, mark: str) -> tuple[int, list[Issue]]:
    with zipfile.ZipFile(reader) as zip_file:
        plan = plan_import(zip_file.infolist(), archive)
        already = _already_unpacked(dataset, mark)  # a retried event resumes, not restarts
        todo = [(info, target) for info, target in plan.members if target not in already]
        with ThreadPoolExecutor(max_workers=IMPORT_UPLOAD_THREADS) as pool:
            # Members are read in archive order (one sequential pass over the
            # archive) and uploaded in parallel; at most a few are in memory.
            pending = []
            for info, target in todo:
                if info.file_size > IN_MEMORY_BYTES:
                    with zip_file.open(info) as member:
                        _upload_member(dataset, target, member, mark, info.file_size)
                    continue
                pending.append(pool.submit(_upload_member, dataset, target, zip_file.read(info), mark))
                if len(pending) >= IMPORT_UPLOAD_THREADS * 2:
                    pending.pop(0).result()
            for future in pending:
                future.result()
    return len(plan.members), plan.issues


def _already_unpacked(dataset: str, mark: str) -> set[str]:
    prefix = layout.dataset_prefix(dataset)
    return {blob.name[len(prefix):] for blob in storage.client().list_blobs(storage.bucket(), prefix=prefix)
            if (blob.metadata or {}).get(IMPORT_MARK) == mark}


def _upload_member(dataset: str, target: str, data, mark: str, size: int | None = None) -> None:
    """Upload bytes, or stream a file-like of `size` bytes."""
    blob = storage.bucket().blob(layout.dataset_object(dataset, target))
    blob.metadata = {IMPORT_MARK: mark}
    if isinstance(data, bytes):
        blob.upload_from_string(data)
    else:
        blob.upload_from_file(data, size=size)
