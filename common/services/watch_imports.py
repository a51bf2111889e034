"""The watch's sweeps over imports: one whose job execution ended while it still waited on it
(its tasks out of retries, killed for memory, a local process gone) becomes failed, with
how it ended and how to start it again (common.domain.imports.execution_ended); one that waits
for a message that never came (queued or at phase staged, or a phase with no execution: its request's
publish failed, the function died before it launched) gets its request again, or fails once
that did not help (the job kernel's rule, common.domain.jobs.resend_action)."""
from __future__ import annotations

import time

from common.cloud import executions, import_store
from common.domain import imports
from common.domain.messages import ImportRequest
from common.platform import config
from common.services import jobs


def sweep() -> list[str]:
    """The ids of the imports failed by this sweep."""
    waiting = [document for document in import_store.with_status(imports.WATCHED_STORED)
               if imports.waits_on_execution(document) and document.get("execution")]
    return [document["id"] for document in waiting if watch(document, time.time())]


def _waits(document: dict) -> bool:
    """Queued or staged (its next step is a message), or in a phase no execution runs."""
    return not (imports.waits_on_execution(document) and document.get("execution"))


def _failed(document: dict, reason: str, now: float) -> dict:
    return {"status": imports.FAILED, "finished_at": now,
            "error": f"{reason} (`yolodrop import {document['dataset']} {document['source']}`: what is unpacked "
                     "is kept)"}


WAITING = jobs.Waiting(
    import_store.collection, imports.STORED_ACTIVE, config.import_topic,
    message=lambda document: (ImportRequest(import_id=document["id"]), {}), waits=_waits,
    activity=lambda document: max(document.get("phase_started_at") or 0.0, document.get("started_at") or 0.0),
    progress=imports.step, failed=_failed)


def resend_waiting(now: float) -> dict[str, str]:
    """{import id: what was done} for the imports that wait on a request message quiet for too long."""
    return jobs.resend_stalled(WAITING, now)


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
