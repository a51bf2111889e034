"""Stores own their documents (issue 27): the services decide, the stores read and write in one transaction. What
each transition writes, and what it leaves alone, on the stack's Firestore emulator."""
from __future__ import annotations

import time
import uuid

import pytest

from common.cloud import db, job_store, training_store, version_store
from common.domain import exports, training_job


def test_a_training_job_changes_as_decided_with_its_model_and_only_then(stack):
    job_id, model_id = f"store-drill-{uuid.uuid4().hex[:12]}", f"store-drill-model-{uuid.uuid4().hex[:12]}"
    # ended from the start, so that the watch leaves it alone: a transition writes whatever its rule decides
    training_store.replace(job_id, {**training_job.queued_job(job_id, job_id, f"store-drill-{job_id}", 1, {},
                                                              time.time()), "status": training_job.COMPLETED,
                                    "sequence": 1})

    def next_of(sequence: int):
        return lambda job: {"sequence": sequence} if job["sequence"] < sequence else None

    def model(job: dict) -> dict:
        return {"id": model_id, "job_id": job["id"], "dataset": f"store-drill-{job_id}"}

    assert training_store.transition(job_id, next_of(2), model) == {"sequence": 2}
    assert training_store.read(job_id)["sequence"] == 2
    assert training_store.model(model_id)["job_id"] == job_id
    db.client().collection("models").document(model_id).delete()

    assert training_store.transition(job_id, next_of(2), model) is None  # decided nothing: nothing registered
    assert training_store.model(model_id) is None and training_store.read(job_id)["sequence"] == 2

    missing = f"store-drill-{uuid.uuid4().hex[:12]}"
    with pytest.raises(training_store.NoSuchJob):
        training_store.transition(missing, lambda job: {"status": "failed"})
    assert training_store.read(missing) is None  # never created by a transition


def test_a_found_document_changes_as_decided_and_a_gone_one_not_at_all(stack):
    drill = db.client().collection(f"found-drill-{uuid.uuid4().hex[:12]}")
    for name, status in (("a", "queued"), ("b", "queued"), ("c", "completed")):
        drill.document(name).set({"id": name, "status": status, "tries": 0})

    found = {f.document["id"]: f for f in job_store.with_status(drill, ("queued",))}
    assert sorted(found) == ["a", "b"]

    def one_more(document: dict) -> dict | None:
        return {"tries": document["tries"] + 1} if document["status"] == "queued" else None

    assert job_store.transition(found["a"], one_more) == {"tries": 1}
    assert drill.document("a").get().get("tries") == 1
    drill.document("b").delete()
    assert job_store.transition(found["b"], one_more) is None
    assert not drill.document("b").get().exists  # not made again by an update


def test_an_export_is_settled_unless_it_has_ended(stack):
    export_id = f"store-drill-{uuid.uuid4().hex[:12]}"
    assert version_store.export_status(export_id) is None
    version_store.exports().document(export_id).set({"id": export_id, "dataset": f"store-drill-{export_id}",
                                                     "format": exports.YOLO, "status": exports.RUNNING,
                                                     "created_at": time.time()})
    assert version_store.settle_export(export_id, {"files_done": 3}) is None
    assert version_store.settle_export(export_id, {"status": exports.COMPLETED}) is None
    assert version_store.settle_export(export_id, {"status": exports.FAILED, "error": "late"}) == exports.COMPLETED
    assert version_store.export_status(export_id) == exports.COMPLETED
    stored = version_store.exports().document(export_id).get().to_dict()
    assert stored["files_done"] == 3 and "error" not in stored
