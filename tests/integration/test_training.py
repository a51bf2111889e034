"""Training through the local stack: requests, the trainer, progress, models.

A tiny generated dataset (96x72 images, imgsz 64, a few epochs) keeps each
training to seconds on a CPU; the trainer, the functions and the emulators are
the real ones.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest

from common.cloud import storage, training_store
from common.domain import layout, training_job
from common.domain.training_request import job_id_for
from infra.local.client import wait_for
from infra.local.sample import CLASSES, generated_dataset
from tests.integration.helpers import drop, stats_when

TRAIN_DEADLINE = 240
TINY = {"model": "yolov8n.yaml", "imgsz": 64, "batch": 4, "workers": 0}
# In a subprocess: importing Ultralytics registers Pillow plugins in the process.
# The registered best.pt and its ONNX export predict one image at the same input
# size (rect=False: a square letterbox for both, as the static ONNX needs).
PREDICT = """
import json, sys
from ultralytics import YOLO
image = sys.argv[3]
for weights in sys.argv[1:3]:
    result = YOLO(weights, task="detect").predict(image, imgsz=64, conf=0.001, rect=False, verbose=False)[0]
    print("PREDICTED", json.dumps({"names": [result.names[i] for i in sorted(result.names)],
                      "classes": result.boxes.cls.int().tolist(), "conf": result.boxes.conf.tolist()}))
"""
CLEAR = 0.002  # boxes compared between best.pt and best.onnx: well above predict's conf, so none sits on the edge

@pytest.fixture(scope="module")
def tiny(stack, bucket, api) -> str:
    """A dataset of 8 train and 4 val generated images, indexed."""
    name = f"tiny-{uuid.uuid4().hex[:8]}"
    drop(bucket, name, generated_dataset(8, 4, size=(96, 72)))
    stats_when(api, name, {"labeled": 12})
    return name


def publish(topic: str, body) -> str:
    """Publish one message; its message id."""
    from google.cloud import pubsub_v1
    publisher = pubsub_v1.PublisherClient()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return publisher.publish(publisher.topic_path(os.environ["GOOGLE_CLOUD_PROJECT"], topic), data).result(timeout=30)


def job_when(api, job_id: str, done, what: str, timeout: float = TRAIN_DEADLINE) -> dict:
    return wait_for(lambda: api.get_or_none(f"/training/{job_id}"), lambda j: j is not None and done(j),
                    timeout, f"job {job_id} {what}", interval=0.5)


def finished(api, job_id: str, timeout: float = TRAIN_DEADLINE) -> dict:
    return job_when(api, job_id, lambda j: j["status"] in ("completed", "failed", "cancelled"), "to finish", timeout)


def run_markers(job_id: str) -> list[str]:
    return [b.name for b in storage.bucket().list_blobs(prefix=layout.training_runs(job_id))]


def test_published_request_trains_registers_a_model_that_predicts(stack, api, tiny, tmp_path):
    request_id = f"r-{uuid.uuid4().hex[:8]}"
    body = {"dataset": tiny, "epochs": 2, "request_id": request_id, **TINY}
    publish("training-requests", body)
    publish("training-requests", body)  # the same request again: still one job, one trainer run
    job_id = api.session.post(f"{api.url}/training", json=body, timeout=30).json()["job_id"]

    job = finished(api, job_id)
    assert job["status"] == "completed", job
    assert [h["epoch"] for h in job["history"]] == [1, 2] and job["epoch"] == 2
    assert {"box_loss", "cls_loss", "dfl_loss", "precision", "recall", "mAP50", "mAP50-95"} <= set(job["history"][0])
    assert job["images"] == {"train": 8, "val": 4, "test": 0}
    assert run_markers(job_id) == [layout.training_runs(job_id) + "0"]

    model = api.get(f"/models/{job['model_id']}")
    assert (model["dataset"], model["job_id"], model["classes"]) == (tiny, job_id, CLASSES)
    assert model["manifest"] == job["manifest"] and "mAP50" in model["metrics"]
    assert model["weights"]["pt"].endswith("best.pt") and model["weights"]["onnx"].endswith("best.onnx")
    assert job_id in [j["id"] for j in api.get("/training", dataset=tiny)["jobs"]]
    assert job["model_id"] in [m["id"] for m in api.get("/models", dataset=tiny)["models"]]

    weights, onnx = tmp_path / "best.pt", tmp_path / "best.onnx"
    storage.blob_at(model["weights"]["pt"]).download_to_filename(str(weights))
    storage.blob_at(model["weights"]["onnx"]).download_to_filename(str(onnx))
    image = next(i for i in api.get(f"/datasets/{tiny}/images")["images"])
    local_image = tmp_path / "image.jpg"
    storage.blob(image["path"]).download_to_filename(str(local_image))
    predicted = subprocess.run([sys.executable, "-c", PREDICT, str(weights), str(onnx), str(local_image)],
                               capture_output=True, text=True, timeout=120,
                               env={**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path)})
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    by_pt, by_onnx = (json.loads(line.split(" ", 1)[1]) for line in predicted.stdout.splitlines()
                      if line.startswith("PREDICTED "))  # Ultralytics prints its own lines too
    assert by_pt["names"] == by_onnx["names"] == CLASSES
    # Two epochs teach the model little, so its boxes are not the labelled ones; but the
    # exported ONNX must be the same network: the same boxes, the same confidences.
    assert by_pt["conf"] and by_onnx["conf"], (by_pt, by_onnx)
    assert by_pt["classes"][0] == by_onnx["classes"][0] and abs(by_pt["conf"][0] - by_onnx["conf"][0]) < 1e-4
    clear = [sorted(c for c, conf in zip(p["classes"], p["conf"]) if conf > CLEAR) for p in (by_pt, by_onnx)]
    assert clear[0] == clear[1], (by_pt, by_onnx)


@pytest.mark.parametrize("body, reason", [
    ({"dataset": "never-dropped", "model": "yolov8n.yaml"}, "unknown dataset 'never-dropped'"),
    ({"dataset": "{unlabelled}", "model": "yolov8n.yaml"}, "has no labelled images"),
    ({"dataset": "{classless}", "model": "yolov8n.yaml"}, "has no classes"),
])
def test_invalid_requests_end_as_failed_jobs_with_their_reason(api, bucket, tiny, body, reason, request):
    names = {"tiny": tiny, "unlabelled": f"{tiny}-unlabelled", "classless": f"{tiny}-classless"}
    if "{unlabelled}" in body["dataset"]:
        drop(bucket, names["unlabelled"], {"data.yaml": b"names: [a]\n",
                                           "images/x.jpg": generated_dataset(1, 0)["images/g00000.jpg"]})
        stats_when(api, names["unlabelled"], {"unlabeled": 1})
    if "{classless}" in body["dataset"]:
        files = generated_dataset(2, 1)
        files.pop("data.yaml")
        drop(bucket, names["classless"], files)
        stats_when(api, names["classless"], {"labeled": 3})
    body = {**body, "dataset": body["dataset"].format(**names)}
    job_id = api.session.post(f"{api.url}/training", json=body, timeout=30).json()["job_id"]
    job = finished(api, job_id, timeout=60)
    assert job["status"] == "failed" and reason in job["error"], job


@pytest.mark.parametrize("fields, reason", [
    ({"epochs": 100000}, "epochs must be from 1 to 1000"),
    ({"device": "cuda:7"}, "not allowed: device"),
    ({"batch": 0}, "batch must be -1 (automatic) or from 1 to 512"),
])
def test_the_api_refuses_arguments_the_training_would_refuse_before_recording_a_job(api, tiny, fields, reason):
    request_id = f"bad-args-{uuid.uuid4().hex[:8]}"
    answer = api.session.post(f"{api.url}/training", json={"dataset": tiny, "model": "yolov8n.yaml",
                                                           "request_id": request_id, **fields}, timeout=30)
    assert answer.status_code == 400 and reason in answer.json()["error"]["message"], answer.text
    assert api.session.get(f"{api.url}/training/{job_id_for(request_id)}", timeout=30).status_code == 404


def test_a_published_request_with_an_argument_out_of_range_ends_failed(api, tiny):
    request_id = f"bad-epochs-{uuid.uuid4().hex[:8]}"
    publish("training-requests", {"dataset": tiny, "model": "yolov8n.yaml", "epochs": 100000,
                                  "request_id": request_id})
    job = finished(api, job_id_for(request_id), timeout=60)
    assert job["status"] == "failed" and "epochs must be from 1 to 1000" in job["error"], job


@pytest.mark.parametrize("model, status, reason", [
    ("yolov7x.yaml", 400, "unknown model 'yolov7x.yaml'"),
    ("gs://yolodrop-data/nowhere.pt", 400, "weights are never read from a path"),
    ("model-nosuchmodel", 404, "no model 'model-nosuchmodel'"),
])
def test_the_api_refuses_a_model_no_training_can_start_from(api, tiny, model, status, reason):
    answer = api.session.post(f"{api.url}/training", json={"dataset": tiny, "model": model}, timeout=30)
    assert answer.status_code == status and reason in answer.json()["error"]["message"], answer.text


@pytest.mark.parametrize("model, reason", [
    ("yolov7x.yaml", "unknown model 'yolov7x.yaml'"),
    ("model-nosuchmodel", "unknown model 'model-nosuchmodel'"),
])
def test_a_published_request_naming_an_unknown_model_ends_failed(api, tiny, model, reason):
    request_id = f"bad-model-{uuid.uuid4().hex[:8]}"
    publish("training-requests", {"dataset": tiny, "model": model, "request_id": request_id})
    job = finished(api, job_id_for(request_id), timeout=60)
    assert job["status"] == "failed" and reason in job["error"], job


def test_a_request_that_is_not_json_ends_failed(api):
    message_id = publish("training-requests", b"{not json")
    job_id = job_id_for(f"message-{message_id}")  # no request_id to read: the message names the job
    job = finished(api, job_id, timeout=60)
    assert job["status"] == "failed" and job["error"].startswith("the message is not JSON"), job
    assert (job["request_id"], job["dataset"]) == (f"message-{message_id}", None), job


def test_a_killed_trainer_resumes_from_its_checkpoint(stack, api, tiny, monkeypatch, tmp_path):
    """The training function's own code, run here with a launcher that installs the
    SIGKILL drill (tests/integration/trainer_drill.py): the first trainer kills
    itself once epoch 1 is checkpointed; then the task runs again, as Cloud Run
    retries it, on a fresh disk."""
    from common.cloud import launcher
    from common.services import start_training
    from tests.integration.trainer_drill import drill_launcher
    drill = drill_launcher(kill_after_epoch=1, log_dir=stack.state_dir)
    monkeypatch.setattr(launcher, "from_config", lambda: drill)
    request_id = f"kill-{uuid.uuid4().hex[:8]}"
    body = {"dataset": tiny, "epochs": 3, "request_id": request_id, **TINY}
    from common.platform.events import PubSubMessage
    from common.platform.handler import Result
    outcome = start_training.handle(PubSubMessage("test-message", json.dumps(body).encode(), "test-event", {}))
    assert outcome.result is Result.APPLIED, outcome
    job_id = start_training.job_id_for(request_id)
    first = drill.processes[job_id]
    assert training_store.jobs().document(job_id).get().to_dict()["execution"] == f"local-run-{job_id}"
    assert first.wait(timeout=TRAIN_DEADLINE) == -signal.SIGKILL, _tail(stack.state_dir / f"trainer-{job_id}.log")
    killed = job_when(api, job_id, lambda j: j["epoch"] == 1, "to show epoch 1", timeout=30)
    assert killed["status"] == "running"
    assert storage.bucket().blob(layout.training_checkpoint(job_id, "last.pt")).exists()

    env = {**os.environ, "JOB_ID": job_id, "MANIFEST_URI": killed["manifest"], "CLOUD_RUN_TASK_ATTEMPT": "1",
           "TRAINER_WORK_DIR": str(tmp_path / "fresh-disk")}
    retried = subprocess.run([sys.executable, "-m", "jobs.trainer"], env=env, capture_output=True,
                             timeout=TRAIN_DEADLINE)
    assert retried.returncode == 0, retried.stderr[-3000:]

    job = finished(api, job_id, timeout=60)
    assert job["status"] == "completed" and job["resumed_from_epoch"] == 1 and job["run"] == 1
    # epoch 1 was trained by the first run only; the retry went on from epoch 2
    assert [(h["epoch"], h["run"]) for h in job["history"]] == [(1, 0), (2, 1), (3, 1)]
    assert len(run_markers(job_id)) == 2


def _tail(path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else f"{path} is missing"


def test_duplicate_and_out_of_order_progress_events_change_nothing(stack, api):
    job_id = f"job-progress-{uuid.uuid4().hex[:8]}"
    training_store.jobs().document(job_id).set(
        {**training_job.queued_job(job_id, "r", "d", 2, {"model": "yolov8n.yaml"}, now=1.0), "manifest": "gs://b/m.json"})

    def send(kind, n, **fields):
        before = _progress_outcomes(stack, job_id)
        publish("training-progress", {"job_id": job_id, "type": kind, "sequence": training_job.sequence(0, n),
                                      "run": 0, **fields})
        wait_for(lambda: _progress_outcomes(stack, job_id), lambda o: len(o) == len(before) + 1, 30,
                 f"the progress function to handle {kind} #{n}")
        return _progress_outcomes(stack, job_id)[-1]

    assert send("started", 1) == "applied"
    assert send("epoch", 3, epoch=2, epochs=2, metrics={"mAP50": 0.2}) == "applied"
    assert send("epoch", 2, epoch=1, epochs=2, metrics={"mAP50": 0.1}) == "duplicate"     # late
    assert send("epoch", 3, epoch=2, epochs=2, metrics={"mAP50": 0.2}) == "duplicate"     # duplicate
    assert send("completed", 4, epoch=2, classes=["a"], metrics={"mAP50": 0.2},
                weights={"pt": "gs://b/best.pt", "onnx": "gs://b/best.onnx"}) == "applied"
    assert send("failed", 5, error="a late failure from nowhere") == "duplicate"          # after the end
    job = api.get(f"/training/{job_id}")
    assert (job["status"], job["epoch"], job["error"]) == ("completed", 2, None)
    assert [h["epoch"] for h in job["history"]] == [2]
    assert api.get(f"/models/{job['model_id']}")["weights"]["onnx"] == "gs://b/best.onnx"


def _progress_outcomes(stack, job_id: str) -> list[str]:
    """The outcome (applied, duplicate, ...) of each progress event of `job_id`, in the order handled."""
    lines = (stack.state_dir / "progress.log").read_text(errors="replace").splitlines()
    records = (json.loads(line) for line in lines if line.startswith("{"))
    return [r["outcome"] for r in records if job_id in r.get("message", "")]


def test_cancel_stops_between_epochs(api, tiny):
    body = {"dataset": tiny, "epochs": 200, **TINY}
    job_id = api.session.post(f"{api.url}/training", json=body, timeout=30).json()["job_id"]
    job_when(api, job_id, lambda j: j["epoch"] >= 1, "to finish an epoch")
    answer = api.session.post(f"{api.url}/training/{job_id}/cancel", timeout=30)
    assert answer.status_code == 202 and answer.json()["cancel_requested"] is True
    job = finished(api, job_id, timeout=120)
    assert job["status"] == "cancelled" and job["epoch"] < 200
    assert job["weights"]["last_pt"].endswith("checkpoint/last.pt") and job["model_id"] is None
    again = api.session.post(f"{api.url}/training/{job_id}/cancel", timeout=30)
    assert again.status_code == 409 and "already cancelled" in again.json()["error"]["message"]
    assert api.session.post(f"{api.url}/training/job-none/cancel", timeout=30).status_code == 404


def test_training_api_errors(api):
    assert api.session.post(f"{api.url}/training", data="nope", timeout=30).status_code == 400
    bad_id = api.session.post(f"{api.url}/training", json={"dataset": "d", "request_id": 7}, timeout=30)
    assert bad_id.status_code == 400 and bad_id.json()["error"]["param"] == "request_id"
    assert api.get("/training/job-none", expect=404)["error"]["status"] == 404
    assert api.get("/models/model-none", expect=404)["error"]["status"] == 404
    assert api.session.get(f"{api.url}/models", headers={"Authorization": ""}, timeout=30).status_code == 401


def test_a_launch_that_fails_after_the_trainer_started_is_not_repeated(stack, api, tiny, monkeypatch):
    """run_job may raise after the execution exists: the redelivered request finds
    the trainer already running for the job and records it, instead of a second one."""
    from google.api_core.exceptions import ServiceUnavailable

    from common.cloud import launcher, runner
    from common.platform.events import PubSubMessage
    from common.services import start_training

    class AnswerLost(runner.LocalRunner):
        def start(self, execution: runner.Execution) -> str:
            super().start(execution)
            raise ServiceUnavailable("the trainer started, but the answer was lost")

    lost = AnswerLost("trainer", stack.state_dir, "jobs.trainer", env=launcher.TRAINER_SAFETY_ENV)
    real = launcher.local(stack.state_dir)
    request_id = f"once-{uuid.uuid4().hex[:8]}"
    message = PubSubMessage("m-once", json.dumps({"dataset": tiny, "epochs": 1, "request_id": request_id,
                                                  **TINY}).encode(), "e-once", {})
    monkeypatch.setattr(launcher, "from_config", lambda: lost)
    with pytest.raises(ServiceUnavailable):
        start_training.handle(message)
    monkeypatch.setattr(launcher, "from_config", lambda: real)
    start_training.handle(message)  # the redelivery
    job_id = job_id_for(request_id)
    (started,) = lost.processes.values()
    assert real.processes == {}, "a second trainer was launched"
    assert training_store.jobs().document(job_id).get().to_dict()["execution"] == f"local-run-{job_id}"
    assert finished(api, job_id)["status"] == "completed"
