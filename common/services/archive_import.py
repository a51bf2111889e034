"""An archive dropped at imports/<dataset>.zip, unpacked into datasets/<dataset>/,
and the unpacking every import shares.

A small archive (up to IMPORT_INLINE_MAX_BYTES) is unpacked in the event's own
call; a larger one becomes an import (common.services.start_import), unpacked
by the parallel import job. Each unpacked file then arrives as an ordinary
event. The archive's layout is recognised from its files (common.domain.dataset_formats:
Ultralytics, Roboflow, CVAT, Label Studio, Darknet, FiftyOne, COCO, Pascal VOC): its
images go under images/<split>/, its labels beside them under labels/, and labels made
from COCO JSON or VOC XML, with data.yaml, are written too; into a dataset that has a
data.yaml already, COCO and VOC classes are matched by name onto its classes (ids kept,
new names appended), never renumbering the labels there. The archive is read with
range requests, never held whole in memory or on disk. Unpacked files carry a mark (the archive's
generation, or the import's id), so a retried call or task resumes instead of
starting again. The dropped archive's record (its issues, how many files, its
import) is a file document of the dataset.
"""
from __future__ import annotations

import threading
import time
import zipfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable

from google.api_core.exceptions import NotFound, ServiceUnavailable

from common.cloud import dataset_index, guarded_objects, import_store, storage, topics
from common.domain import coco, dataset_formats, imports, layout
from common.domain import archive as archive_rules
from common.domain.archive import ArchiveRefused, ImportPlan, plan_import
from common.domain.datayaml import MAX_DATA_YAML_BYTES
from common.domain.issues import Issue
from common.domain.layout import DatasetObjectRole
from common.domain.messages import ImportRequest
from common.platform import config
from common.platform.events import DELETED, ObjectEvent
from common.platform.handler import Outcome, Result

UPLOAD_THREADS = 8
CLASS_WRITE_ATTEMPTS = 5  # plans of an archive whose data.yaml another writer changed meanwhile
IN_MEMORY_BYTES = 16 * 1024 * 1024  # larger members are streamed
IMPORT_MARK = "yolodrop-import"  # object metadata: which archive generation or import wrote it
# COCO annotations read in the ingest function's call (1 GiB, shared with its group); more go to the import job.
INLINE_COCO_BYTES = 64 * 1024 * 1024


class _ForTheJob(Exception):
    """The archive is small, but its COCO annotations are too large to parse in the event's call."""


def handle(event: ObjectEvent, role: DatasetObjectRole) -> Outcome:
    if event.action == DELETED:
        dataset_index.put_file(role.dataset, event.name, event.generation, None)
        return Outcome(Result.APPLIED, "archive removed (its unpacked files stay)")
    if dataset_index.is_stale_file(dataset_index.read_file(role.dataset, event.name), event.generation):
        return Outcome(Result.DUPLICATE, "duplicate event: this archive generation is unpacked")
    if (event.size or 0) > config.import_inline_max_bytes():
        return _start_import(event, role)
    mark = f"{event.name}#{event.generation}"
    try:
        with storage.blob(event.name, event.generation).open("rb", chunk_size=storage.CHUNK_BYTES) as reader:
            unpacked, issues, layout_seen = _unpack_inline(reader, role.dataset, event.name, mark)
    except NotFound:
        return Outcome(Result.STALE, "stale event: that generation is gone from the bucket")
    except _ForTheJob:
        return _start_import(event, role)
    except zipfile.BadZipFile as exc:
        unpacked, issues, layout_seen = 0, [not_a_zip(event.name, exc)], None
    except ArchiveRefused as exc:
        unpacked, issues, layout_seen = 0, [exc.issue(event.name)], None
    kept, total = imports.limited_issues(issues)  # a file document holds at most 1 MiB
    dataset_index.put_file(role.dataset, event.name, event.generation, kept,
                           {"unpacked": unpacked, "issues_total": total, "layout": layout_seen})
    return Outcome(Result.APPLIED, f"archive unpacked ({layout_seen}): {unpacked} files, {len(issues)} issues",
                   {"unpacked": unpacked, "issues": len(issues), "layout": layout_seen})


def _start_import(event: ObjectEvent, role: DatasetObjectRole) -> Outcome:
    """Too large for one call: the import job unpacks it. One import per archive generation."""
    import_id = imports.drop_import_id(event.name, event.generation)
    document = imports.new_import(import_id, role.dataset, f"gs://{event.bucket}/{event.name}", "zip", None,
                                  None, time.time(), event.generation)
    created = import_store.create(document)
    if created or import_store.status_of(import_id) == imports.QUEUED:
        topics.publish(config.import_topic(), ImportRequest(import_id=import_id))
    dataset_index.put_file(role.dataset, event.name, event.generation, [], {"import_id": import_id})
    return Outcome(Result.APPLIED, f"archive of {event.size} bytes: import {import_id} started",
                   {"import_id": import_id})


def not_a_zip(archive: str, exc: Exception) -> Issue:
    return Issue("import_not_a_zip", f"the archive cannot be read as a zip file: {exc}", archive)


def open_zip(reader) -> zipfile.ZipFile:
    """The zip of a seekable reader, once its end record shows a directory small enough to read whole."""
    archive_rules.check_directory(archive_rules.read_directory_end(reader))
    reader.seek(0)
    return zipfile.ZipFile(reader)


def _unpack_inline(reader, dataset: str, archive: str, mark: str) -> tuple[int, list[Issue], str | None]:
    with open_zip(reader) as zip_file:
        if coco_bytes(zip_file.infolist()) > INLINE_COCO_BYTES:
            raise _ForTheJob()
        plan, members, generated = plan_zip(zip_file, archive, dataset=dataset)
        already = already_unpacked(dataset, mark)  # a retried event resumes, not restarts
        with Unpacker(dataset, mark) as unpacker:
            unpack_zip_members(zip_file, [(info, target) for info, target in members if target not in already],
                               unpacker)
            for target, data in generated.items():
                if target not in already:
                    unpacker.put(target, data)
    return len(members) + len(generated), plan.issues, plan.layout


def plan_zip(zip_file: zipfile.ZipFile, archive: str, archive_format: str | None = None,
             dataset: str | None = None) -> tuple[ImportPlan, list, dict[str, bytes]]:
    """The plan (with its issues and layout), the members to unpack and the files to write that the archive does
    not hold. archive_format "yolo" takes every file as it is; "coco" requires COCO annotation files; None: the
    files say which layout it is (common.domain.dataset_formats). A COCO or VOC archive's classes are matched onto
    those of the dataset's data.yaml, when it has one."""
    plan = plan_import(zip_file.infolist(), archive)
    generated: dict[str, bytes]
    if archive_format == "yolo":
        members, generated, plan.layout = plan.members, {}, dataset_formats.ULTRALYTICS
    else:
        members, generated = _recognized(zip_file, plan, archive, dataset)
    if archive_format == "coco" and plan.layout not in dataset_formats.COCO_LAYOUTS:
        plan.issues.append(Issue("import_no_coco_annotations", "asked for COCO, but the archive holds no "
                                 "instances_<split>.json or <split>/_annotations.coco.json: its files are unpacked "
                                 f"as its layout ({plan.layout}) says", archive))
    members, skipped = archive_rules.keep_dataset_files(members, [info.filename for info, _ in members], archive)
    plan.issues.extend(skipped)
    return plan, members, generated


def coco_bytes(infos: list[zipfile.ZipInfo]) -> int:
    """The bytes of a zip's COCO annotation files, as its directory says."""
    return sum(info.file_size for info in infos if not info.is_dir() and coco.is_annotation_file(info.filename))


def _recognized(zip_file: zipfile.ZipFile, plan: ImportPlan, archive: str,
                dataset: str | None) -> tuple[list, dict[str, bytes]]:
    """The archive's layout recognised: its members moved where the dataset keeps them, and the labels and
    data.yaml made from its annotations. COCO annotations too large to parse refuse the archive, before any
    is read. When the layout matched its classes onto the dataset's data.yaml (COCO, VOC), the data.yaml naming
    them is written first, based on the generation read: when another import (or a person) changed it meanwhile,
    this one plans again on the new names, so two imports at once never give one class id two names."""
    by_path = {plan.relative(info): info for info, _ in plan.members}
    known = len(plan.issues)
    for _ in range(CLASS_WRITE_ATTEMPTS):
        del plan.issues[known:]
        classes = _DatasetYaml(dataset)
        found = dataset_formats.recognize(list(by_path), {path: info.file_size for path, info in by_path.items()},
                                          lambda path: zip_file.open(by_path[path]), archive, classes,
                                          config.import_coco_max_bytes())
        plan.issues.extend(found.issues)
        plan.layout = found.layout
        if classes.write_first(found.generated, archive):
            return [(by_path[path], target) for path, target in found.moves], found.generated
    raise ServiceUnavailable(f"the data.yaml of {dataset} changed {CLASS_WRITE_ATTEMPTS} times while this import "
                             "matched its classes onto it: the import is retried")


class _DatasetYaml:
    """The dataset's data.yaml as an import reads it (a callable for dataset_formats.recognize), and the
    generation it read, so that the data.yaml the import makes replaces exactly that one."""

    def __init__(self, dataset: str | None):
        self.name = layout.dataset_object(dataset, "data.yaml") if dataset else None
        self.generation: int | None = None  # None: never read
        self.data: bytes | None = None

    def __call__(self) -> bytes | None:
        if self.name is None:
            return None
        try:
            self.generation, self.data = guarded_objects.current(self.name, max_bytes=MAX_DATA_YAML_BYTES)
        except guarded_objects.TooLarge as too_large:
            raise ArchiveRefused("import_classes", f"the dataset's data.yaml is {too_large.size} bytes, over the "
                                 f"{MAX_DATA_YAML_BYTES} read: the export's classes cannot be matched onto it; "
                                 "replace it with a data.yaml that names the classes, then import again") from None
        return self.data

    def write_first(self, generated: dict[str, bytes], archive: str) -> bool:
        """Write the made data.yaml now (taken out of `generated`) when it was based on the one read; False when
        that one moved on meanwhile."""
        if self.name is None or self.generation is None or "data.yaml" not in generated:
            return True  # nothing read (no dataset, or no data.yaml), or nothing made
        data = generated.pop("data.yaml")
        if data == self.data:
            return True
        try:
            guarded_objects.write(self.name, data, self.generation, f"import {archive}", "application/yaml")
        except guarded_objects.Moved:
            return False
        return True


def already_unpacked(dataset: str, mark: str) -> set[str]:
    """The dataset-relative paths this mark wrote already: a retry skips them."""
    return {layout.dataset_relative(blob.name, dataset)
            for blob in storage.client().list_blobs(storage.bucket(), prefix=layout.dataset_prefix(dataset))
            if (blob.metadata or {}).get(IMPORT_MARK) == mark}


def unpack_zip_members(zip_file: zipfile.ZipFile, todo: list, unpacker: Unpacker,
                       tick: Callable[[], None] = lambda: None) -> None:
    """Members are read in archive order (one sequential pass over the archive)
    and uploaded in parallel; at most a few are in memory. tick() runs before
    each member (it may raise to stop)."""
    for info, target in sorted(todo, key=lambda item: item[0].header_offset):
        tick()
        if info.file_size > IN_MEMORY_BYTES:
            with zip_file.open(info) as member:
                unpacker.put(target, member, info.file_size)
        else:
            unpacker.put(target, zip_file.read(info))


class Unpacker:
    """Uploads members into datasets/<dataset>/ with the mark, a few at once, counting what is done."""

    def __init__(self, dataset: str, mark: str):
        self.dataset, self.mark = dataset, mark
        self.members_done = self.bytes_done = 0
        self._pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS)
        self._pending: deque[Future] = deque()
        self._lock = threading.Lock()

    def __enter__(self) -> Unpacker:
        return self

    def put(self, target: str, data, size: int | None = None) -> None:
        """Upload bytes in the pool, or stream a file-like of `size` bytes here and now."""
        if not isinstance(data, bytes):
            if size is None:
                raise ValueError(f"{target}: a stream is put with its size")
            self._upload(target, data, size)
            return
        self._pending.append(self._pool.submit(self._upload, target, data, len(data)))
        while len(self._pending) >= UPLOAD_THREADS * 2:
            self._pending.popleft().result()

    def _upload(self, target: str, data, size: int):
        blob = storage.bucket().blob(layout.dataset_object(self.dataset, target))
        blob.metadata = {IMPORT_MARK: self.mark}
        if isinstance(data, bytes):
            blob.upload_from_string(data)
        else:
            blob.upload_from_file(data, size=size)
        with self._lock:
            self.members_done += 1
            self.bytes_done += size
        return blob

    def __exit__(self, kind, error, traceback) -> None:
        try:
            while self._pending:
                future = self._pending.popleft()
                if kind is None:
                    future.result()
                else:
                    future.cancel()
        finally:
            self._pool.shutdown(wait=True)
