"""Where the scheduled reconciliation stopped (common.services.reconcile): the last dataset a run compared, so the
next run goes on after it. One document; a run delivered twice reads and writes the same."""
from __future__ import annotations

from common.cloud import db

COLLECTION, DOCUMENT = "operations", "reconciliation"


def _ref():
    return db.client().collection(COLLECTION).document(DOCUMENT)


def resume_after() -> str | None:
    """The dataset the last run stopped after; None: start from the first."""
    snapshot = _ref().get(**db.deadline())
    return (snapshot.to_dict() or {}).get("after") if snapshot.exists else None


def stopped_after(dataset: str | None, now: float) -> None:
    _ref().set({"after": dataset, "at": now}, **db.deadline())
