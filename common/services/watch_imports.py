"""The watch's sweep over imports: one whose job execution ended while it still waited on it
(its tasks out of retries, killed for memory, a local process gone) becomes failed, with
how it ended and how to start it again (common.domain.imports.execution_ended)."""
from __future__ import annotations

import time

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db, executions, import_store
from common.domain import imports
from common.platform import config


def sweep() -> list[str]:
    """The ids of the imports failed by this sweep."""
    query = import_store.collection().where(filter=FieldFilter("status", "in", list(imports.WATCHED)))
    waiting = [document for document in (doc.to_dict() for doc in query.stream(**db.deadline()))
               if document.get("execution")]
    return [document["id"] for document in waiting if watch(document, time.time())]


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
