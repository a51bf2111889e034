"""The watch's sweeps over imports: one whose job execution ended while it still waited on it
(its tasks out of retries, killed for memory, a local process gone) becomes failed, with
how it ended and how to start it again (common.domain.imports.execution_ended); one that waits
for a message that never came (queued or staged, or a phase with no execution: its request's
publish failed, the function died before it launched) gets its request again, or fails once
that did not help (the job kernel's rule, common.domain.jobs.resend_action)."""
from __future__ import annotations

import time

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db, executions, import_store, job_store, topics
from common.domain import imports
from common.domain import jobs as kernel
from common.platform import config

WAITING = (imports.QUEUED, imports.STAGED, imports.STAGING, imports.RUNNING)


def sweep() -> list[str]:
    """The ids of the imports failed by this sweep."""
    query = import_store.collection().where(filter=FieldFilter("status", "in", list(imports.WATCHED)))
    waiting = [document for document in (doc.to_dict() for doc in query.stream(**db.deadline()))
               if document.get("execution")]
    return [document["id"] for document in waiting if watch(document, time.time())]


def resend_waiting(now: float) -> dict[str, str]:
    """{import id: what was done} for the imports that wait on a request message quiet for too long."""
    query = import_store.collection().where(filter=FieldFilter("status", "in", list(WAITING)))
    acted = {}
    for document in (snapshot.to_dict() for snapshot in query.stream(**db.deadline())):
        if document["status"] in imports.WATCHED and document.get("execution"):
            continue  # an execution runs it: `watch` follows that one
        activity = max(document.get("phase_started_at") or 0.0, document.get("started_at") or 0.0)
        stalled = kernel.resend_action(document, document["status"], activity, now, config.job_stall_seconds())
        if stalled is not None:
            acted[document["id"]] = _resend(document, stalled)
    return acted


def _resend(document: dict, stalled: kernel.Stalled) -> str:
    status = document["status"]

    def change(current: dict) -> dict | None:
        if current["status"] != status or current.get("execution"):
            return None  # it moved meanwhile
        if stalled.action == "fail":
            return {"status": imports.FAILED, "finished_at": time.time(), "error": f"{stalled.reason} (`yolodrop "
                    f"import {current['dataset']} {current['source']}`: what is unpacked is kept)"}
        return job_store.republished(current, status)

    changed = import_store.transition(document["id"], change)
    if changed and stalled.action != "fail":
        topics.publish(config.import_topic(), {"import_id": document["id"]})
    return "failed" if changed and stalled.action == "fail" else "request sent again" if changed else "moved"


def watch(document: dict, now: float) -> dict | None:
    running, ended_at, detail = executions.import_execution(document)
    if running:
        return None
    activity = max([document.get("phase_started_at") or document.get("started_at") or 0.0,
                    *(task.get("updated_at") or 0.0 for task in import_store.read_tasks(document["id"]))])

    def change(current: dict) -> dict | None:
        if current.get("execution") != document["execution"]:
            return None  # a new phase started since
        return imports.execution_ended(current, running, ended_at, detail, activity, now,
                                       config.watch_grace_seconds())
    return import_store.transition(document["id"], change)
