from common.domain import training_job


def job(**fields):
    return {**training_job.queued_job("job-1", "r-1", "d", 3, {"model": "yolov8n.yaml"}, now=1.0), **fields}


def event(kind, seq, run=0, **fields):
    return {"job_id": "job-1", "type": kind, "sequence": training_job.sequence(run, seq), "run": run, **fields}


def play(*events, start=None):
    state = start or job()
    for e in events:
        update = training_job.apply_event(state, e, now=2.0)
        if update:
            state = {**state, **update}
    return state


def test_a_run_from_start_to_model():
    done = play(event("started", 1, device="cpu"),
                event("epoch", 2, epoch=1, epochs=3, metrics={"mAP50": 0.1}, seconds=1.5),
                event("epoch", 3, epoch=2, epochs=3, metrics={"mAP50": 0.2}),
                event("completed", 4, epoch=2, metrics={"mAP50": 0.2}, weights={"pt": "gs://b/best.pt"}))
    assert done["status"] == training_job.COMPLETED and done["epoch"] == 2
    assert [(h["epoch"], h["mAP50"]) for h in done["history"]] == [(1, 0.1), (2, 0.2)]
    assert done["model_id"] == "model-1" and done["started_at"] == 2.0 and done["finished_at"] == 2.0


def test_duplicate_and_late_events_change_nothing():
    state = play(event("started", 1), event("epoch", 3, epoch=2, epochs=3))
    assert training_job.apply_event(state, event("epoch", 3, epoch=2, epochs=3), 3.0) is None   # duplicate
    assert training_job.apply_event(state, event("epoch", 2, epoch=1, epochs=3), 3.0) is None   # late
    assert state["epoch"] == 2 and [h["epoch"] for h in state["history"]] == [2]


def test_nothing_changes_after_the_end():
    done = play(event("started", 1), event("cancelled", 2, weights={}))
    assert done["status"] == training_job.CANCELLED
    assert training_job.apply_event(done, event("started", 1, run=1), 3.0) is None


def test_a_retried_run_supersedes_a_failure_and_repeats_epochs():
    failed = play(event("started", 1), event("epoch", 2, epoch=1, epochs=3), event("epoch", 3, epoch=2, epochs=3),
                  event("failed", 4, error="CUDA out of memory"))
    assert failed["status"] == training_job.FAILED and failed["error"] == "CUDA out of memory"
    resumed = play(event("started", 1, run=1, resumed_from_epoch=1),
                   event("epoch", 2, run=1, epoch=2, epochs=3), start=failed)
    assert resumed["status"] == training_job.RUNNING and resumed["error"] is None
    assert [(h["epoch"], h["run"]) for h in resumed["history"]] == [(1, 0), (2, 1)]
    late_from_first_run = event("epoch", 5, run=0, epoch=3, epochs=3)
    assert training_job.apply_event(resumed, late_from_first_run, 3.0) is None


def test_model_document_carries_what_a_user_needs():
    state = play(event("started", 1))
    completed = event("completed", 2, classes=["a"], metrics={"mAP50": 0.5},
                      weights={"pt": "gs://b/best.pt", "onnx": "gs://b/best.onnx"}, epoch=3)
    onnx = training_job.registered_onnx(completed, in_bucket=True)
    model = training_job.model_document({**state, "manifest": "gs://b/m.json"}, completed, onnx)
    assert model == {"id": "model-1", "dataset": "d", "job_id": "job-1", "manifest": "gs://b/m.json",
                     "classes": ["a"], "metrics": {"mAP50": 0.5}, "base_model": "yolov8n.yaml", "epochs": 3,
                     "weights": {"pt": "gs://b/best.pt", "onnx": "gs://b/best.onnx"}, "created_at": None,
                     "onnx": {"uri": "gs://b/best.onnx"}, "evaluation": None, "version": None}


def test_registration_says_why_a_model_cannot_predict():
    onnx = {"uri": "gs://b/best.onnx", "generation": 7, "imgsz": [64, 64], "classes": ["a"]}
    good = event("completed", 2, classes=["a"], onnx=onnx)
    assert training_job.registered_onnx(good, in_bucket=True) == onnx
    assert "not in the bucket" in training_job.registered_onnx(good, in_bucket=False)["error"]
    renamed = event("completed", 2, classes=["b"], onnx=onnx)
    assert training_job.registered_onnx(renamed, True)["error"] == "the ONNX has the classes ['a'], the model ['b']"
    failed = event("completed", 2, classes=["a"], onnx={"error": "RuntimeError: no exporter"})
    assert training_job.registered_onnx(failed, in_bucket=False) == {"error": "RuntimeError: no exporter"}
    assert "exported no ONNX" in training_job.registered_onnx(event("completed", 2), in_bucket=False)["error"]


def test_a_request_firestore_cannot_store_is_recorded_as_text():
    unstorable = {"dataset": "d", "epochs": [[1, 2]]}  # an array inside an array
    job = training_job.failed_job("job-1", "r", "d", unstorable, "invalid", now=1.0)
    assert job["request"] == {"raw": repr(unstorable)} and job["status"] == training_job.FAILED
    storable = {"dataset": "d", "epochs": 3}
    assert training_job.failed_job("job-1", "r", "d", storable, "invalid", now=1.0)["request"] == storable
