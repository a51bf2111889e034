"""One task of the import job: its share of an archive unpacked into the dataset, or the archive staged.

    IMPORT_ID=... IMPORT_PHASE=unpack|stage python -m jobs.importer   (+ CLOUD_RUN_TASK_INDEX/COUNT/ATTEMPT)

unpack, a zip: the central directory is read by range requests (ZIP64
included), every task makes the same plan from it, takes its run of members
(common.domain.imports.share) and streams them into the bucket, each marked
with the import's id. A retried task lists what its import wrote already and
skips it, so no member is written twice and none is lost. Task 0 also writes
what the archive does not hold (a COCO archive's labels and data.yaml, its
classes matched by name onto the dataset's data.yaml when it has one) and
the plan's totals and issues on the import.
unpack, a tar or tar.gz: one task reads the stream front to back, its
decompressed bytes counted as they come (common.domain.archive.ExpansionGuard:
a bomb stops after a few tens of MB), its members counted as a zip's are.
Only dataset files are unpacked (images, labels, data.yaml): any other member
is skipped and counted as an issue. An archive refused whole (a zip's directory
too large, a bomb, COCO files too large to parse) fails the import with its
reason, recorded as an issue too.
stage: a zip whose server cannot answer range requests is copied once into
the bucket (a resumable upload, under derived/), and the import published
again so that the unpack phase reads the copy by ranges.

Every second a task writes its counts to its own document and reads its
import's status: a cancelled or failed import stops its other tasks. A
failure that would fail again (not a zip, a refused address, a lying server)
fails the import and ends the task with success, so it is not retried; a
transient one ends it with an error, and the platform runs it again.
"""
from __future__ import annotations

import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, cast

from google.api_core.exceptions import NotFound

from common.cloud import import_store, remote_source, storage, topics
from common.domain import archive as archive_rules
from common.domain import dataset_formats, imports, layout
from common.domain.issues import Issue
from common.domain.messages import ImportRequest
from common.platform import config, log
from common.platform.failures import is_transient
from common.services.archive_import import (IN_MEMORY_BYTES, Unpacker, already_unpacked, not_a_zip, open_zip,
                                            plan_zip, unpack_zip_members)

PROGRESS_SECONDS = 1.0
COPY_PIECE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Task:
    import_id: str
    phase: str
    index: int = 0
    count: int = 1
    attempt: int = 0


class Stopped(Exception):
    """The import was cancelled or failed elsewhere: this task stops where it is."""


def run(task: Task) -> int:
    """The task's exit code: 0 when done or not worth a retry, 1 for the platform to run it again."""
    document = import_store.read(task.import_id)
    if document is None or document["status"] in imports.FINAL:
        log.info("import task: nothing to do", import_id=task.import_id, status=document and document["status"])
        return 0
    try:
        if task.phase == imports.STAGE:
            _stage(document)  # the unpack phase follows; the import is not done
        else:
            _unpack(document, task)
            import_store.finish_task(task.import_id, task.index)
    except Stopped:
        pass
    except archive_rules.ArchiveRefused as exc:
        if task.index == 0:
            _record_totals(task.import_id, 0, 0, [exc.issue(document["source"])], None)
        import_store.finish_task(task.import_id, task.index, failed_with=_reason(exc))
        log.warning("import refused", import_id=task.import_id, code=exc.code, reason=str(exc))
    except Exception as exc:
        if is_transient(exc):
            log.warning("import task: transient failure, to be retried", import_id=task.import_id, error=repr(exc))
            return 1
        import_store.finish_task(task.import_id, task.index, failed_with=_reason(exc))
        log.error("import failed", import_id=task.import_id, error=repr(exc))
    _drop_staged_copy_when_ended(task.import_id)
    return 0


def _drop_staged_copy_when_ended(import_id: str) -> None:
    """The copy of an archive staged under derived/ goes once its import has ended (whichever task sees it first)."""
    document = import_store.read(import_id)
    staged = (document or {}).get("read_from") or ""
    if document and document["status"] in imports.FINAL and staged.startswith("gs://"):
        try:
            storage.blob_at(staged).delete()
        except NotFound:
            pass  # another task took it


def _reason(exc: Exception) -> str:
    if isinstance(exc, (remote_source.SourceError, remote_source.SourceRefused)):
        return str(exc)
    if isinstance(exc, archive_rules.ArchiveRefused):
        return f"{exc} ({exc.code})"
    if isinstance(exc, zipfile.BadZipFile):
        return not_a_zip("the archive", exc).message + ": check that the URL gives the archive itself"
    if isinstance(exc, tarfile.TarError):
        return f"the archive cannot be read as a tar file: {exc}"
    if isinstance(exc, NotFound):
        return "the archive is gone from the bucket (deleted or overwritten): drop it again"
    return f"the import failed: {exc!r}"


# ---- reading the source --------------------------------------------------------------

def _read_from(document: dict) -> str:
    return document.get("read_from") or document["source"]


def _open_random_access(document: dict):
    """A seekable reader of the archive: the bucket object, or the URL by ranges."""
    where = _read_from(document)
    if where.startswith("gs://"):
        generation = document.get("generation") if where == document["source"] else None
        blob = storage.blob_at(where)
        if generation:
            blob = blob.bucket.blob(blob.name, generation=generation)
        return blob.open("rb", chunk_size=storage.CHUNK_BYTES)
    return remote_source.open_ranges(where, document["size"])


def _open_stream(document: dict):
    where = _read_from(document)
    if where.startswith("gs://"):
        return storage.blob_at(where).open("rb", chunk_size=storage.CHUNK_BYTES)
    return remote_source.open_stream(where, config.import_download_seconds())


class _Progress:
    """The task's own document, written at most once a second; the import's status read as often."""

    def __init__(self, import_id: str, task: dict, unpacker: Unpacker):
        self.import_id, self.task, self.unpacker = import_id, task, unpacker
        self.resumed = task["members_done"], task["bytes_done"]
        self.last = 0.0
        import_store.write_task(import_id, task)

    def tick(self) -> None:
        """Between members: the counts written and the import's status read, once a second."""
        now = time.monotonic()
        if now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        self.write()
        if import_store.status_of(self.import_id) in imports.FINAL:
            raise Stopped()

    def skip(self, size: int) -> None:
        """A member an earlier attempt wrote: counted as done and as skipped."""
        self.task["skipped"] += 1
        self.resumed = (self.resumed[0] + 1, self.resumed[1] + size)

    def write(self, **fields) -> None:
        self.task.update(members_done=self.resumed[0] + self.unpacker.members_done,
                         bytes_done=self.resumed[1] + self.unpacker.bytes_done, **fields)
        import_store.write_task(self.import_id, self.task)


# ---- unpack --------------------------------------------------------------------------

def _unpack(document: dict, task: Task) -> None:
    if document.get("archive") in ("tar", "tgz"):
        _unpack_tar(document, task)
    else:
        _unpack_zip(document, task)


def _unpack_zip(document: dict, task: Task) -> None:
    dataset, mark = document["dataset"], document["id"]
    with _open_random_access(document) as reader, open_zip(reader) as zip_file:
        plan, members, generated = plan_zip(zip_file, document["source"], document.get("format"), dataset)
        if task.index == 0:
            _record_totals(document["id"], len(members) + len(generated),
                           sum(info.file_size for info, _ in members) + sum(map(len, generated.values())),
                           plan.issues, plan.layout)
        ordered = sorted(members, key=lambda item: item[0].header_offset)
        mine = imports.share(ordered, [info.compress_size for info, _ in ordered], task.index, task.count)
        extra = generated if task.index == 0 else {}
        already = _already_written(task, dataset, mark)
        done = [(info, target) for info, target in mine if target in already]
        task_doc = imports.task_document(task.index, task.attempt, len(mine) + len(extra),
                                         sum(info.file_size for info, _ in mine) + sum(map(len, extra.values())))
        task_doc.update(members_done=len(done), bytes_done=sum(info.file_size for info, _ in done), skipped=len(done))
        with Unpacker(dataset, mark) as unpacker:
            progress = _Progress(document["id"], task_doc, unpacker)
            unpack_zip_members(zip_file, [item for item in mine if item[1] not in already], unpacker,
                               progress.tick)
            for target, data in extra.items():
                if target not in already:
                    unpacker.put(target, data)
        progress.write(status=imports.COMPLETED)


def _already_written(task: Task, dataset: str, mark: str) -> set[str]:
    """What an earlier attempt of this task wrote (a listing of the dataset); a first attempt
    has none, since the tasks' shares are disjoint."""
    return already_unpacked(dataset, mark) if task.attempt > 0 else set()


def _record_totals(import_id: str, members_total: int, bytes_total: int, issues: list[Issue],
                   layout_seen: str | None) -> None:
    """What the whole archive holds, its layout and what was refused, on the import (written by one task)."""
    kept, total = imports.limited_issues([issue.to_dict() for issue in issues])
    import_store.update(import_id, {"members_total": members_total, "bytes_total": bytes_total,
                                    "issues": kept, "issues_total": total, "layout": layout_seen})


def _unpack_tar(document: dict, task: Task) -> None:
    """A tar stream, front to back: members are planned as they come (the enclosing
    folder is the first member's, when it is not part of the layout)."""
    dataset, mark = document["dataset"], document["id"]
    already = _already_written(task, dataset, mark)
    issues: list[Issue] = []
    skipped = archive_rules.SkippedFiles(document["source"])
    task_doc = imports.task_document(task.index, task.attempt, 0, 0)
    entries = files = 0
    streamed, has_data_yaml = dataset_formats.Streamed(document["source"]), False
    with _open_stream(document) as stream, archive_rules.ExpansionGuard(stream) as guard, \
            tarfile.open(fileobj=guard, mode="r|") as tar, Unpacker(dataset, mark) as unpacker:
        progress = _Progress(document["id"], task_doc, unpacker)
        strip = None
        for member in tar:
            guard.member_seen(member.size)
            entries, files = entries + 1, files + (not member.isdir())
            archive_rules.check_counts(entries, files)
            if member.isdir() or archive_rules.is_junk(member.name):
                continue
            if strip is None:
                strip = _enclosing_folder_of(member.name)
            target = _tar_target(member, strip, streamed, issues)
            if target is None:
                continue
            if streamed.keeps(target, member.size):
                streamed.class_files[target] = _regular(tar, member).read()
                continue
            if not archive_rules.is_dataset_file(target):
                skipped.add(member.name)
                continue
            has_data_yaml = has_data_yaml or target == "data.yaml"
            task_doc["members_total"] += 1
            task_doc["bytes_total"] += member.size
            if target in already:
                progress.skip(member.size)
                continue
            source = _regular(tar, member)
            unpacker.put(target, source.read() if member.size <= IN_MEMORY_BYTES else source, member.size)
            progress.tick()
        layout_seen, generated, names_issues = streamed.finish(wrote_data_yaml=has_data_yaml)
        for target, data in generated.items():
            task_doc["members_total"] += 1
            if target not in already:
                unpacker.put(target, data)
    _record_totals(document["id"], task_doc["members_total"], task_doc["bytes_total"],
                   issues + names_issues + skipped.issues(), layout_seen)
    progress.write(status=imports.COMPLETED)


def _enclosing_folder_of(first_name: str) -> str:
    parts = PurePosixPath(first_name).parts
    if len(parts) < 2 or parts[0] in ("images", "labels") or parts[0].lower() in layout.SPLIT_ALIASES:
        return ""
    return parts[0] + "/"


def _tar_target(member: tarfile.TarInfo, strip: str, streamed: dataset_formats.Streamed,
                issues: list[Issue]) -> str | None:
    refusal = archive_rules.member_refusal(member.name, link=member.issym(), special=not member.isfile()
                                           and not member.issym(), size=member.size)
    if refusal:
        issues.append(Issue(refusal[0], f"{member.name}: {refusal[1]}; not unpacked", streamed.source))
        return None
    relative = member.name.removeprefix("./")
    relative = relative[len(strip):] if strip and relative.startswith(strip) else relative
    try:
        return streamed.target(relative)
    except ValueError as refused:
        issues.append(Issue("import_coco_in_tar", str(refused), streamed.source))
        return None


# ---- stage ---------------------------------------------------------------------------

def _stage(document: dict) -> None:
    """Copy the archive into the bucket once, then publish the import again for its unpack phase."""
    staged = layout.import_staging(document["id"], document.get("archive") or "zip")
    task_doc = imports.task_document(0, 0, 0, document.get("size") or 0)
    import_store.write_task(document["id"], task_doc)
    copied, last = 0, time.monotonic()
    with _open_stream(document) as source, storage.blob(staged).open("wb", chunk_size=storage.CHUNK_BYTES,
                                                                      ignore_flush=True) as target:
        while piece := source.read(COPY_PIECE_BYTES):
            target.write(piece)
            copied += len(piece)
            if time.monotonic() - last >= PROGRESS_SECONDS:
                last = time.monotonic()
                import_store.write_task(document["id"], {**task_doc, "bytes_done": copied})
                if import_store.status_of(document["id"]) in imports.FINAL:
                    raise Stopped()
    import_store.delete_task(document["id"], 0)  # the unpack phase counts afresh
    staged_fields = {"status": imports.RUNNING, "phase": imports.STAGED, "size": copied,
                     "read_from": f"gs://{storage.bucket().name}/{staged}"}
    # moved only from staging: a cancel or a failure meanwhile stands
    import_store.transition(document["id"], lambda current: staged_fields
                            if imports.step(current) == imports.STAGING else None)
    topics.publish(config.import_topic(), ImportRequest(import_id=document["id"]))


def _regular(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    """A member's content: never None, as only regular files get a target (_tar_target)."""
    return cast(IO[bytes], tar.extractfile(member))
