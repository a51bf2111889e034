"""An archive dropped at imports/<dataset>.zip, unpacked into datasets/<dataset>/.

Each unpacked file then arrives as an ordinary event. A COCO archive (one
instances_<split>.json per split, or Roboflow's <split>/_annotations.coco.json,
with its images) unpacks into the YOLO layout: its images under
images/<split>/, a label file per image made from its annotations, and the
categories as the classes of data.yaml (common.domain.coco). The archive is read with
range requests, never held whole in memory or on disk. Unpacked files are
marked with the archive's generation, so a retried event resumes instead of
starting again. The archive's record (its issues, how many files) is a file
document of the dataset.
"""
from __future__ import annotations

import zipfile
from concurrent.futures import ThreadPoolExecutor

from google.api_core.exceptions import NotFound

from common.cloud import dataset_index, storage
from common.domain import layout
from common.domain import coco, exports
from common.domain.archive import ImportPlan, plan_import
from common.domain.issues import Issue
from common.domain.layout import ObjectRole
from common.platform.events import DELETED, ObjectEvent
from common.platform.handler import Outcome, Result

UPLOAD_THREADS = 8
IN_MEMORY_BYTES = 16 * 1024 * 1024  # larger members are streamed
IMPORT_MARK = "yolodrop-import"  # object metadata: which archive generation wrote it


def handle(event: ObjectEvent, role: ObjectRole) -> Outcome:
    if event.action == DELETED:
        dataset_index.put_file(role.dataset, event.name, event.generation, None)
        return Outcome(Result.APPLIED, "archive removed (its unpacked files stay)")
    if dataset_index.is_stale_file(dataset_index.read_file(role.dataset, event.name), event.generation):
        return Outcome(Result.DUPLICATE, "duplicate event: this archive generation is unpacked")
    mark = f"{event.name}#{event.generation}"
    try:
        with storage.blob(event.name, event.generation).open("rb", chunk_size=storage.CHUNK_BYTES) as reader:
            unpacked, issues = _unpack(reader, role.dataset, event.name, mark)
    except NotFound:
        return Outcome(Result.STALE, "stale event: that generation is gone from the bucket")
    except zipfile.BadZipFile as exc:
        unpacked, issues = 0, [Issue("import_not_a_zip", f"the archive cannot be read as a zip file: {exc}",
                                     event.name)]
    dataset_index.put_file(role.dataset, event.name, event.generation, issues, {"unpacked": unpacked})
    return Outcome(Result.APPLIED, f"archive unpacked: {unpacked} files, {len(issues)} issues",
                   {"unpacked": unpacked, "issues": len(issues)})


def _unpack(reader, dataset: str, archive: str, mark: str) -> tuple[int, list[Issue]]:
    with zipfile.ZipFile(reader) as zip_file:
        plan = plan_import(zip_file.infolist(), archive)
        members, generated = _as_yolo(zip_file, plan, archive)
        already = _already_unpacked(dataset, mark)  # a retried event resumes, not restarts
        todo = [(info, target) for info, target in members if target not in already]
        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            # Members are read in archive order (one sequential pass over the
            # archive) and uploaded in parallel; at most a few are in memory.
            pending = []
            for info, target in todo:
                if info.file_size > IN_MEMORY_BYTES:
                    with zip_file.open(info) as member:
                        _upload_member(dataset, target, member, mark, info.file_size)
                    continue
                pending.append(pool.submit(_upload_member, dataset, target, zip_file.read(info), mark))
                if len(pending) >= UPLOAD_THREADS * 2:
                    pending.pop(0).result()
            for future in pending:
                future.result()
            list(pool.map(lambda item: _upload_member(dataset, item[0], item[1], mark),
                          [(target, data) for target, data in generated.items() if target not in already]))
    return len(members) + len(generated), plan.issues


def _as_yolo(zip_file: zipfile.ZipFile, plan: ImportPlan, archive: str) -> tuple[list, dict[str, bytes]]:
    """The members to unpack, and files to write that the archive does not hold: for
    a COCO archive, images moved to images/<split>/, their labels and data.yaml."""
    annotation_files = [(info, target) for info, target in plan.members if coco.is_annotation_file(target)]
    if not annotation_files:
        return plan.members, {}
    documents = {}
    for info, target in annotation_files:
        if info.file_size > coco.MAX_ANNOTATION_BYTES:
            plan.issues.append(Issue("import_coco_json", f"{target}: {info.file_size} bytes; the limit is "
                                     f"{coco.MAX_ANNOTATION_BYTES}: split it by split", archive))
            continue
        documents[target] = zip_file.read(info)
    imported = coco.plan(documents, [target for _, target in plan.members], archive)
    plan.issues.extend(imported.issues)
    members = [(info, imported.images.get(target, target)) for info, target in plan.members
               if not coco.is_annotation_file(target)]
    return members, {**imported.labels, "data.yaml": exports.data_yaml(imported.classes)}


def _already_unpacked(dataset: str, mark: str) -> set[str]:
    return {layout.dataset_relative(blob.name, dataset)
            for blob in storage.client().list_blobs(storage.bucket(), prefix=layout.dataset_prefix(dataset))
            if (blob.metadata or {}).get(IMPORT_MARK) == mark}


def _upload_member(dataset: str, target: str, data, mark: str, size: int | None = None) -> None:
    """Upload bytes, or stream a file-like of `size` bytes."""
    blob = storage.bucket().blob(layout.dataset_object(dataset, target))
    blob.metadata = {IMPORT_MARK: mark}
    if isinstance(data, bytes):
        blob.upload_from_string(data)
    else:
        blob.upload_from_file(data, size=size)
