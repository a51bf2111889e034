"""The imports function's work: an import request ({"import_id"}) -> its source probed, the job launched once.

A queued import: the source is looked at (its size, whether it answers range
requests, what kind of archive its first bytes are) and one of three runs
starts: a zip read at random (in the bucket, or from a server with ranges)
gets N parallel unpack tasks; a zip from a server without ranges gets one
stage task (phase staging), which copies it into the bucket and publishes the
import again (phase staged: the N tasks follow, phase unpacking); a tar gets
one unpack task. A refused or
unreadable source fails the import at once, with the reason, and is not
retried. A redelivered request finds the execution already started and
starts nothing.
"""
from __future__ import annotations

import math
import time

from common.cloud import import_launcher, import_store, remote_source, runner, storage
from common.domain import imports, source_urls
from common.domain.imports import InvalidImportRequest
from common.domain.messages import ImportRequest
from common.domain.source_urls import InvalidSource
from common.platform import config
from common.platform.events import PubSubMessage, decode
from common.platform.handler import Outcome, Result

BYTES_PER_TASK = 256 * 1024 ** 2  # an archive smaller than this gets one task per this many bytes
HEAD_BYTES = 512


def handle(message: PubSubMessage, launcher: runner.Runner | None = None) -> Outcome:
    import_id = decode(message, ImportRequest).import_id
    document = import_store.read(import_id)
    if document is None:
        return Outcome(Result.REJECTED, f"no import {import_id!r}")
    if document["status"] in imports.FINAL:
        return Outcome(Result.DUPLICATE, f"import {import_id} is {document['status']}")
    if document["status"] == imports.QUEUED:
        document = _begin(document)
        if document["status"] == imports.FAILED:
            return Outcome(Result.REJECTED, f"import {import_id} failed: {document['error']}")
    elif imports.step(document) == imports.STAGED:
        document = _after_staging(document)
    phase = imports.STAGE if imports.step(document) == imports.STAGING else imports.UNPACK
    execution = import_launcher.launch_once(launcher or import_launcher.from_config(), import_id, phase,
                                            document["tasks"])
    import_store.update(import_id, {"execution": execution})
    return Outcome(Result.APPLIED, f"import {import_id}: {phase} with {document['tasks']} tasks ({execution})",
                   {"tasks": document["tasks"], "phase": phase})


def _begin(document: dict) -> dict:
    try:
        size, ranges, archive = _look_at(document)
    except (InvalidSource, InvalidImportRequest, remote_source.SourceRefused, remote_source.SourceError) as exc:
        return _fail(document, str(exc))
    if size is not None and size > config.import_max_bytes():
        return _fail(document, f"the archive has {size} bytes; the limit is {config.import_max_bytes()}")
    if archive is None:
        return _fail(document, "the source is neither a zip nor a tar archive (its first bytes say neither): "
                               "check that the URL gives the archive itself, not a page about it")
    if archive == "zip" and not ranges:
        phase, tasks = imports.STAGING, 1
    else:
        phase, tasks = imports.UNPACKING, _task_count(document, size, archive)
    fields = {"status": imports.RUNNING, "phase": phase, "tasks": tasks, "archive": archive, "size": size,
              "ranges": ranges, "started_at": time.time(), "phase_started_at": time.time(), "tasks_finished": [],
              "execution": None}
    return _move(document, imports.QUEUED, fields)


def _after_staging(document: dict) -> dict:
    return _move(document, imports.STAGED, {"status": imports.RUNNING, "phase": imports.UNPACKING, "ranges": True,
                                            "tasks_finished": [],
                                            "tasks": _task_count(document, document.get("size"), "zip"),
                                            "phase_started_at": time.time(), "execution": None})


def _move(document: dict, expected: str, fields: dict) -> dict:
    """Change the import from step `expected` (imports.step); whoever moved it first wins and everyone
    launches its phase."""
    import_store.transition(document["id"],
                            lambda current: fields if imports.step(current) == expected else None)
    return _read_back(document["id"])


def _fail(document: dict, reason: str) -> dict:
    import_store.finish_task(document["id"], 0, failed_with=reason)
    return _read_back(document["id"])


def _read_back(import_id: str) -> dict:
    """The import as this step just wrote it: an import is never deleted."""
    found = import_store.read(import_id)
    if found is None:
        raise LookupError(f"import {import_id} is gone: its dataset was deleted meanwhile?")
    return found


def _look_at(document: dict) -> tuple[int | None, bool, str | None]:
    """(size, read by ranges, archive kind) of the import's source."""
    source = source_urls.parse(document["source"])
    in_bucket = source.bucket_object()
    if in_bucket:  # checked again here: the importer's account reads it
        bucket, name = in_bucket
        imports.check_bucket_source(bucket, name, config.data_bucket(), document["dataset"], config.import_buckets())
        blob = storage.client().bucket(bucket).get_blob(name, generation=document.get("generation"))
        if blob is None:
            raise remote_source.SourceError(f"{document['source']} does not exist (or this generation is gone)")
        head = b"" if source.archive else blob.download_as_bytes(start=0, end=HEAD_BYTES - 1)
        return blob.size, True, source.archive or source_urls.sniff(head)
    probe = remote_source.probe(source.url)
    return probe.size, probe.ranges, source.archive or source_urls.sniff(probe.head)


def _task_count(document: dict, size: int | None, archive: str) -> int:
    if archive != "zip":
        return 1
    wanted = document.get("tasks_wanted") or math.ceil((size or 0) / BYTES_PER_TASK)
    return max(1, min(wanted, config.import_tasks()))
