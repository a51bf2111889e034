import os
import subprocess
import sys

import pytest

from common.domain import base_models
from common.domain.training_request import (ADMINISTRATOR, CORE_ARGS, MODEL_YAML, InvalidRequest, in_val_split,
                                            job_id_for, model_kind, validate)

BASE = {"dataset": "d", "model": "yolov8n.yaml"}


def test_defaults_and_request_id():
    request = validate(BASE, "message-1")
    assert request.request_id == "message-1"
    assert request.train_args == {name: default for name, (_, default) in CORE_ARGS.items()}
    assert validate({**BASE, "request_id": "r-1"}, "message-1").request_id == "r-1"


def test_passthrough_args_are_checked_and_kept():
    request = validate({**BASE, "epochs": 3, "imgsz": 64, "lr0": 0.02, "optimizer": "AdamW", "cos_lr": True}, "m")
    assert request.train_args["lr0"] == 0.02 and request.train_args["optimizer"] == "AdamW"
    assert request.train_args["cos_lr"] is True and request.epochs == 3


@pytest.mark.parametrize("body, reason", [
    ({**BASE, "epochs": 0}, "epochs must be from 1 to 1000"),
    ({**BASE, "epochs": 2.5}, "epochs must be an integer"),
    ({**BASE, "epochs": True}, "epochs must be an integer"),
    ({**BASE, "imgsz": 5000}, "imgsz must be from 32 to 2048"),
    ({**BASE, "batch": 0}, "batch must be -1"),
    ({**BASE, "lr0": "fast"}, "lr0 must be a number"),
    ({**BASE, "optimizer": "Adagrad"}, "optimizer must be one of"),
    ({**BASE, "cos_lr": "yes"}, "cos_lr must be true or false"),
    ({**BASE, "device": "cuda:3"}, "not allowed: device"),
    ({**BASE, "data": "/etc/passwd", "project": "x"}, "not allowed: data, project"),
    ({**BASE, "val_fraction": 0.9}, "val_fraction must be from 0.05 to 0.5"),
    ({"model": "yolov8n.yaml"}, "dataset is required"),
    ({"dataset": "d"}, "model is required"),
    ({**BASE, "model": "yolov8n-seg.yaml"}, "unknown model 'yolov8n-seg.yaml'"),
    ({**BASE, "model": "resnet50.yaml"}, "unknown model"),
    ({**BASE, "model": "gs://bucket/weights.onnx"}, "weights are never read from a path"),
    ({**BASE, "model": "gs://bucket/datasets/d/w/evil.pt"}, "train a model here and name its id"),
    ({**BASE, "model": "https://example.com/yolo11n.pt"}, "never read from a path"),
    ({**BASE, "model": "../derived/base-models/yolo11n.pt"}, "never read from a path"),
    ({**BASE, "model": "/tmp/yolo11n.pt"}, "never read from a path"),
    ({**BASE, "request_id": "a b"}, "request_id must be"),
    ([1, 2], "must be a JSON object"),
])
def test_invalid_requests_say_why(body, reason):
    with pytest.raises(InvalidRequest, match=reason.replace("(", r"\(")):
        validate(body, "m")


def test_model_kinds():
    kinds = [model_kind(m) for m in ("yolo11s.yaml", "yolo11n.pt", "gs://b/w.pt", "a/b.pt", "model-abc")]
    assert kinds == ["yaml", "pretrained", "path", "path", "registered"]


ACCEPTED_EXAMPLES = ["yolov5n.yaml", "yolov6n.yaml", "yolov8n.yaml", "yolo11n.yaml", "yolo12n.yaml", "yolo26n.yaml",
                     "yolov3-tiny.yaml", "yolov9t.yaml", "yolov10n.yaml"]
BUILD_EACH = """
import sys
from ultralytics import YOLO
for name in sys.argv[1:]:
    print("BUILT", name, YOLO(name).task)
"""


def test_each_accepted_model_family_builds_in_ultralytics(tmp_path):
    """The YAML pattern must not accept a family this Ultralytics cannot build.
    In a subprocess: importing Ultralytics registers Pillow plugins in the process.
    Offline, as on a machine where Ultralytics never ran: YOLO_OFFLINE skips its
    online check (DNS lookups at import) and a fresh YOLO_CONFIG_DIR makes it write
    its settings and print its first-run banner."""
    assert all(MODEL_YAML.match(name) for name in ACCEPTED_EXAMPLES)
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path)}
    built = subprocess.run([sys.executable, "-c", BUILD_EACH, *ACCEPTED_EXAMPLES],
                           capture_output=True, text=True, timeout=300, env=env)
    assert built.returncode == 0, built.stderr[-2000:]
    # Ultralytics prints a settings banner on its first run: read only our own lines.
    reported = [line.split()[1:] for line in built.stdout.splitlines() if line.startswith("BUILT ")]
    assert reported == [[name, "detect"] for name in ACCEPTED_EXAMPLES]


@pytest.mark.parametrize("name", ["yolov9n.yaml", "yolov10.yaml", "yolov8n-seg.yaml", "yolov8n-pose.yaml",
                                  "yolov4.yaml"])
def test_model_names_ultralytics_has_no_detector_for_are_refused(name):
    assert not MODEL_YAML.match(name)


def test_job_id_is_stable_per_request_id():
    assert job_id_for("r-1") == job_id_for("r-1") != job_id_for("r-2")
    assert job_id_for("r-1").startswith("job-")


def test_job_ids_are_namespaced_by_the_person_who_asks():
    """A person's retry is the same job; another person's same request_id is not."""
    assert job_id_for("r-1", "uid-a") == job_id_for("r-1", "uid-a")
    assert len({job_id_for("r-1", "uid-a"), job_id_for("r-1", "uid-b"), job_id_for("r-1")}) == 3
    # the administrator and a direct publisher (no requester) are the operators' one namespace
    assert job_id_for("r-1", ADMINISTRATOR) == job_id_for("r-1", None)


SHA = "ab" * 32


def test_official_weights_need_a_pin():
    assert base_models.pin_for("yolo11n.pt", f"yolo11n.pt={SHA.upper()}, yolov8s.pt={'cd' * 32}") == SHA
    with pytest.raises(InvalidRequest, match="yolo11s.pt have no pinned SHA-256.*BASE_MODEL_SHA256"):
        base_models.pin_for("yolo11s.pt", f"yolo11n.pt={SHA}")


@pytest.mark.parametrize("setting", ["yolo11n.pt", f"evil.pt={SHA}", "yolo11n.pt=abc", f"gs://b/yolo11n.pt={SHA}"])
def test_a_malformed_pin_is_refused_naming_it(setting):
    with pytest.raises(ValueError, match="BASE_MODEL_SHA256: .* is not <official weights name>="):
        base_models.parse_pins(setting)


def test_val_split_by_content_is_deterministic_and_near_the_fraction():
    import hashlib
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)]
    val = [h for h in hashes if in_val_split(h, 0.2)]
    assert 0.17 < len(val) / len(hashes) < 0.23
    assert val == [h for h in hashes if in_val_split(h, 0.2)]
    assert set(val) <= {h for h in hashes if in_val_split(h, 0.3)}  # a larger fraction only adds images
