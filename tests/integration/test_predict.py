"""The prediction function through the local stack: parity with Ultralytics' own
ONNX prediction, every bad input, and a model whose ONNX export failed."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from common.cloud import model_cache, storage
from common.domain import layout, prediction
from common.domain.imaging import open_image
from common.domain.prediction import Thresholds
from common.services import detection
from infra.local.client import sign_up
from infra.local.sample import generated_dataset, squares_image, ultralytics_photo
from tests.integration.helpers import drop, stats_when
from tests.integration.trained import TINY, finished_job, trained_model  # noqa: F401 - a fixture

CONF, IOU = 0.001, 0.7
EDGE = 1e-3  # a box this close to `conf` may be on either side of it in one of the two
# In a subprocess: importing Ultralytics registers Pillow plugins in the process.
# imgsz: a dynamic graph is predicted at the size asked (640 unless told), so it is told the trained one.
ULTRALYTICS_PREDICT = """
import json, sys
from ultralytics import YOLO
model = YOLO(sys.argv[1], task="detect")
conf, iou, imgsz = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
for path in sys.argv[5:]:
    boxes = model.predict(path, conf=conf, iou=iou, imgsz=imgsz, verbose=False)[0].boxes
    print("PREDICTED", json.dumps({"xyxy": boxes.xyxy.tolist(), "conf": boxes.conf.tolist(),
                                   "cls": boxes.cls.int().tolist()}))
"""
DETECTOR_IMGSZ = 128
TRAIN_DETECTOR = """
import json, shutil, sys
from ultralytics import YOLO
folder, imgsz = sys.argv[1], int(sys.argv[2])
YOLO("yolov8n.yaml").train(data=folder + "/data.yaml", epochs=10, imgsz=imgsz, batch=8, workers=0, plots=False,
                           val=False, project=folder, name="run", verbose=False)
trained = YOLO(folder + "/run/weights/last.pt")
exported = {kind: shutil.move(trained.export(format="onnx", imgsz=imgsz, dynamic=kind == "dynamic"),
                             f"{folder}/{kind}.onnx") for kind in ("static", "dynamic")}
print("EXPORTED", json.dumps(exported))
"""


@pytest.fixture(scope="module")
def predict_url(stack) -> str:
    return stack.env()["PREDICT_URL"]


@pytest.fixture(scope="module")
def auth(stack) -> dict:
    return {"Authorization": f"Bearer {stack.token}"}


def post(url: str, model_id: str, auth: dict, **kwargs) -> requests.Response:
    return requests.post(f"{url}/models/{model_id}/predict", headers={**auth, **kwargs.pop("headers", {})},
                         timeout=60, **kwargs)


# ---- images of every kind --------------------------------------------------------

def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png16(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def rotated_jpeg(photo: bytes, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[274] = orientation
    return encoded(Image.open(io.BytesIO(photo)), "JPEG", quality=95, exif=exif.tobytes())


def every_kind_of_image() -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    bus, zidane = ultralytics_photo("bus.jpg"), ultralytics_photo("zidane.jpg")
    shapes = generated_dataset(1, 0, size=(300, 100))["images/g00000.jpg"]
    colour = Image.open(io.BytesIO(bus)).resize((200, 150))
    return {
        "bus.jpg": bus, "zidane.jpg": zidane, "wide.jpg": shapes,
        "tall.png": encoded(Image.open(io.BytesIO(zidane)).resize((90, 400)), "PNG"),
        "tiny.png": encoded(colour.resize((37, 23)), "PNG"),
        "grey.png": encoded(colour.convert("L"), "PNG"),
        "rgba.png": encoded(colour.convert("RGBA"), "PNG"),
        "palette.png": encoded(colour.convert("P", palette=Image.ADAPTIVE, colors=64), "PNG"),
        "sixteen.png": png16(rng.integers(0, 65536, (120, 160, 3)).astype(np.uint16)),
        "exif6.jpg": rotated_jpeg(bus, 6), "exif3.jpg": rotated_jpeg(zidane, 3), "exif8.jpg": rotated_jpeg(bus, 8),
        "phone.heic": heic(Image.open(io.BytesIO(zidane)).resize((480, 270))),
    }


def heic(image: Image.Image) -> bytes:
    """A real HEIC (pillow-heif's encoder); both sides read it with pi-heif."""
    import pillow_heif
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=90)
    return buffer.getvalue()


# ---- parity --------------------------------------------------------------------

def ultralytics_boxes(onnx_path, paths, conf: float, iou: float, tmp_path, imgsz: int = TINY["imgsz"]) -> list[dict]:
    done = in_ultralytics(ULTRALYTICS_PREDICT, onnx_path, conf, iou, imgsz, *paths, tmp_path=tmp_path)
    return [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if line.startswith("PREDICTED ")]


def in_ultralytics(script: str, *args, tmp_path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def iou_of(a, b) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else float(a == b)


def unmatched(ours: list[dict], theirs: dict, conf: float) -> list:
    """Boxes of either side without a partner on the other (same class, IoU >= 0.95, confidence
    within 0.01), except those on the edge of `conf`."""
    remaining = list(zip(theirs["xyxy"], theirs["conf"], theirs["cls"]))
    missing = []
    for box in ours:
        xyxy = [box["x1"], box["y1"], box["x2"], box["y2"]]
        partner = next((t for t in remaining if t[2] == box["class_id"] and abs(t[1] - box["confidence"]) <= 0.01
                        and iou_of(t[0], xyxy) >= 0.95), None)
        if partner is not None:
            remaining.remove(partner)
        elif box["confidence"] > conf + EDGE:
            missing.append(("ours", box))
    return missing + [("ultralytics", t) for t in remaining if t[1] > conf + EDGE]


def written(images: dict[str, bytes], folder: Path) -> list[Path]:
    for name, data in images.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in images]


def test_predictions_match_ultralytics_on_photos_and_every_image_mode(predict_url, auth, trained_model, tmp_path):
    onnx = tmp_path / "best.onnx"
    storage.blob_at(trained_model["weights"]["onnx"]).download_to_filename(str(onnx))
    assert model_cache.from_bytes(onnx.read_bytes(), (str(onnx), 0)).stride == 32, "the export is not dynamic"
    images = every_kind_of_image()
    theirs = ultralytics_boxes(onnx, written(images, tmp_path), CONF, IOU, tmp_path)
    files = [("file", (name, data, "application/octet-stream")) for name, data in images.items()]
    answer = post(predict_url, trained_model["id"], auth, files=files, params={"conf": CONF, "iou": IOU})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_id"] == trained_model["id"] and body["classes"] == trained_model["classes"]
    assert [p["source"] for p in body["predictions"]] == list(images)
    compared = 0
    for name, ours, reference in zip(images, body["predictions"], theirs):
        upright = open_image(io.BytesIO(images[name]))  # HEIC too
        width, height = upright.size[::-1] if name.startswith(("exif6", "exif8")) else upright.size
        assert (ours["width"], ours["height"]) == (width, height), name
        assert not unmatched(ours["boxes"], reference, CONF), (name, unmatched(ours["boxes"], reference, CONF))
        compared += len(ours["boxes"])
        for box in ours["boxes"]:
            assert box["cx"] == pytest.approx((box["x1"] + box["x2"]) / 2 / width, abs=1e-4)
            assert box["h"] == pytest.approx((box["y2"] - box["y1"]) / height, abs=1e-4)
    assert compared > 20, "the model predicted too little to compare"
    assert set(body["speed_ms"]) == {"preprocess", "inference", "postprocess"}


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> dict[str, Path]:
    """A model that detects, as ONNX with a dynamic and with a static input. The shared tiny model's
    boxes barely depend on the image (2 epochs at 64 px), so it cannot tell a wrong letterbox from a
    right one; 10 epochs of coloured squares at 128 px (seconds) make boxes that do."""
    folder = tmp_path_factory.mktemp("detector")
    for index in range(32):
        image, label = squares_image(index)
        split = "val" if index % 8 == 7 else "train"
        for kind, name, data in (("images", f"s{index}.jpg", image), ("labels", f"s{index}.txt", label.encode())):
            (folder / kind / split).mkdir(parents=True, exist_ok=True)
            (folder / kind / split / name).write_bytes(data)
    (folder / "data.yaml").write_text(f"path: {folder}\ntrain: images/train\nval: images/val\n"
                                      "names: {0: red, 1: green, 2: blue}\n")
    done = in_ultralytics(TRAIN_DETECTOR, folder, DETECTOR_IMGSZ, tmp_path=folder)
    return json.loads(done.stdout.split("EXPORTED ")[-1])


@pytest.mark.parametrize("graph", ["dynamic", "static"])
def test_a_detecting_model_gives_ultralytics_boxes_with_either_kind_of_input(detector, graph, tmp_path):
    """Ultralytics letterboxes into the minimum rectangle for a dynamic input (what the trainer exports)
    and into the whole square for a static one (models exported before): so does prediction."""
    model = model_cache.from_bytes(Path(detector[graph]).read_bytes(), (detector[graph], 0))
    assert model.stride == (32 if graph == "dynamic" else None)
    images = every_kind_of_image()
    theirs = ultralytics_boxes(detector[graph], written(images, tmp_path), CONF, IOU, tmp_path, imgsz=DETECTOR_IMGSZ)
    compared = 0
    for name, reference in zip(images, theirs):
        size, found = detection.detect(model, images[name], Thresholds(conf=CONF, iou=IOU))
        ours = [prediction.box_view(box, size, model.names) for box in found]
        assert not unmatched(ours, reference, CONF), (name, unmatched(ours, reference, CONF))
        compared += len(ours)
    assert compared > 50, "the model predicted too little to compare"


def test_raw_bytes_and_bucket_objects_give_the_same_prediction(predict_url, auth, trained_model):
    image = storage.bucket().list_blobs(prefix=layout.dataset_object(trained_model["dataset"], "images/"))
    blob = next(iter(image))
    uri = f"gs://{storage.bucket().name}/{blob.name}"
    answer = post(predict_url, trained_model["id"], auth, data=blob.download_as_bytes(),
                  headers={"Content-Type": "image/jpeg"}, params={"conf": 0.01})
    timing = dict(part.strip().split(";dur=") for part in answer.headers["Server-Timing"].split(","))
    assert list(timing) == ["auth", "model", "body", "preprocess", "inference", "postprocess"]
    assert all(float(ms) >= 0 for ms in timing.values()) and float(timing["inference"]) > 0
    raw = answer.json()
    named = post(predict_url, trained_model["id"], auth, json={"images": [uri], "conf": 0.01}).json()
    assert named["predictions"][0]["source"] == uri and raw["predictions"][0]["source"] == "body"
    assert named["predictions"][0]["boxes"] == raw["predictions"][0]["boxes"]
    some = post(predict_url, trained_model["id"], auth, json={"images": [uri], "conf": 0.001, "max_det": 3,
                                                             "classes": [trained_model["classes"][0], 1]}).json()
    boxes = some["predictions"][0]["boxes"]
    assert 0 < len(boxes) <= 3 and {b["class_id"] for b in boxes} <= {0, 1}


# ---- bad input -----------------------------------------------------------------

def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG header declaring far more pixels than Pillow's limit; no pixel data worth decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


BAD_BODIES = {  # each made from the bus photo (a fixture: read at test time, never at collection), and its reason
    "not an image": (lambda bus: b"hello, I am text", "not an image"),
    "truncated": (lambda bus: bus[:len(bus) // 2], "corrupt or truncated"),
    "bomb": (lambda bus: bomb_png(), "not decoded"),
    "too small to be anything": (lambda bus: b"\xff\xd8\xff", "not"),
}


@pytest.mark.parametrize("kind", list(BAD_BODIES))
def test_a_bad_image_body_is_a_400_with_its_reason(predict_url, auth, trained_model, bus_photo, kind):
    made_from, reason = BAD_BODIES[kind]
    body = made_from(bus_photo)
    answer = post(predict_url, trained_model["id"], auth, data=body, headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert reason in error["message"] and error["param"] == "body" and error["request_id"]


def test_a_batch_with_one_bad_image_fails_only_that_image(predict_url, auth, trained_model, bus_photo):
    files = [("file", ("good.jpg", bus_photo, "image/jpeg")), ("file", ("bad.jpg", b"nope", "image/jpeg")),
             ("file", ("bomb.png", bomb_png(), "image/png")), ("file", ("half.jpg", bus_photo[:5000], "image/jpeg"))]
    answer = post(predict_url, trained_model["id"], auth, files=files)
    assert answer.status_code == 200, answer.text
    good, bad, bomb, half = answer.json()["predictions"]
    assert good["width"] == 810 and "error" not in good
    assert (bad["error"]["code"], bomb["error"]["code"], half["error"]["code"]) == \
        ("image_unreadable", "image_too_large", "image_corrupt")
    assert bad["boxes"] == [] and bad["width"] is None


@pytest.mark.parametrize("params, param", [
    ({"conf": "2"}, "conf"), ({"conf": "-0.1"}, "conf"), ({"iou": "abc"}, "iou"), ({"max_det": "0"}, "max_det"),
    ({"max_det": "1001"}, "max_det"), ({"classes": "unicorn"}, "classes"), ({"colour": "red"}, "colour"),
])
def test_a_parameter_out_of_range_is_a_400_naming_it(predict_url, auth, trained_model, bus_photo, params, param):
    answer = post(predict_url, trained_model["id"], auth, data=bus_photo, params=params,
                  headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param


def test_only_members_may_predict_and_a_grant_takes_effect_at_once(stack, api, predict_url, trained_model, bus_photo):
    """The instance keeps a model's document for a minute, and whom it admitted PREDICT_ACCESS_SECONDS, never a
    refusal: a person given a role predicts at their next request. (A removal takes effect within the period:
    tests/security/test_predict_attacks.py.)"""
    uid, token = sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], f"p-{uuid.uuid4().hex[:8]}@example.com",
                         "secret-123")
    person = {"Authorization": f"Bearer {token}"}
    members = f"{api.url}/datasets/{trained_model['dataset']}/members/{uid}"
    assert post(predict_url, trained_model["id"], person, data=bus_photo).status_code == 404
    assert api.session.put(members, json={"role": "viewer"}, timeout=30).status_code == 200
    assert post(predict_url, trained_model["id"], person, data=bus_photo).status_code == 200


def test_refusals_of_the_request_itself(predict_url, auth, trained_model, bus_photo):
    model_id = trained_model["id"]
    assert post(predict_url, model_id, auth, data=b"", headers={"Content-Type": "image/jpeg"}).status_code == 400
    too_big = post(predict_url, model_id, auth, data=b"\0" * (32 * 1024 * 1024 + 1),
                   headers={"Content-Type": "application/octet-stream"})
    assert too_big.status_code == 413, too_big.text
    batch = post(predict_url, model_id, auth, files=[("file", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(33)])
    assert batch.status_code == 400 and batch.json()["error"]["param"] == "file"
    assert post(predict_url, "model-nosuch", auth, data=bus_photo).status_code == 404
    assert post(predict_url, model_id, {}, data=bus_photo).status_code == 401
    assert post(predict_url, model_id, {"Authorization": "Bearer wrong"}, data=bus_photo).status_code == 401
    assert requests.get(f"{predict_url}/models/{model_id}/predict", headers=auth, timeout=30).status_code == 405
    assert requests.post(f"{predict_url}/elsewhere", headers=auth, timeout=30).status_code == 404
    json_batch = post(predict_url, model_id, auth, json={"images": ["gs://x/y"] * 33})
    assert json_batch.status_code == 400 and json_batch.json()["error"]["param"] == "images"


@pytest.mark.parametrize("uri, status", [
    ("gs://another-bucket/datasets/d/images/a.jpg", 403),
    ("gs://{bucket}/derived/thumbnails/d/abc.jpg", 403),
    ("gs://{bucket}/datasets/d/labels/a.txt", 403),
    ("https://example.com/a.jpg", 400),
    (7, 400),
])
def test_only_dataset_images_of_the_data_bucket_can_be_named(predict_url, auth, trained_model, uri, status):
    uri = uri.format(bucket=storage.bucket().name) if isinstance(uri, str) else uri
    answer = post(predict_url, trained_model["id"], auth, json={"images": [uri]})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["param"] == "images"


def test_a_missing_object_fails_only_that_image(predict_url, auth, trained_model):
    uri = f"gs://{storage.bucket().name}/datasets/{trained_model['dataset']}/images/train/nobody.jpg"
    answer = post(predict_url, trained_model["id"], auth, json={"images": [uri]})
    assert answer.status_code == 200 and answer.json()["predictions"][0]["error"]["code"] == "image_not_found"


# ---- a model the export failed for ---------------------------------------------

def test_a_failed_export_registers_the_model_and_prediction_answers_409(stack, api, bucket, predict_url, auth,
                                                                         monkeypatch, bus_photo):
    from common.cloud import launcher
    from tests.integration.export_drill import drill_launcher
    monkeypatch.setattr(launcher, "from_config", lambda: drill_launcher(stack.state_dir))
    dataset = f"px-{uuid.uuid4().hex[:8]}"
    drop(bucket, dataset, generated_dataset(4, 2, size=(96, 72)))
    stats_when(api, dataset, {"labeled": 6})
    job = train_in_process(dataset)
    assert job["status"] == "completed", job
    model = api.get(f"/models/{job['model_id']}")
    assert model["weights"]["pt"].endswith("best.pt") and "onnx" not in model["weights"]
    assert "export failure drill" in model["onnx"]["error"]
    answer = post(predict_url, model["id"], auth, data=bus_photo)
    assert answer.status_code == 409 and "export failure drill" in answer.json()["error"]["message"]


def train_in_process(dataset: str) -> dict:
    """The training function's own code, here, so that the test's launcher starts the trainer."""
    from common.platform.events import PubSubMessage
    from common.services import start_training
    request_id = f"export-{uuid.uuid4().hex[:8]}"
    body = {"dataset": dataset, "request_id": request_id, **TINY, "epochs": 1}
    start_training.handle(PubSubMessage("test-message", json.dumps(body).encode(), "test-event", {}))
    return finished_job(start_training.job_id_for(request_id))


def test_the_registered_model_carries_its_evaluation_on_the_test_split(api, trained_model):
    evaluation = api.get(f"/models/{trained_model['id']}")["evaluation"]
    assert evaluation["split"] == "test", evaluation
    assert set(evaluation["per_class"]) <= set(trained_model["classes"])
    for figures in evaluation["per_class"].values():
        assert {"precision", "recall", "mAP50", "mAP50-95", "instances"} == set(figures)
    matrix = evaluation["confusion_matrix"]
    assert matrix["labels"] == [*trained_model["classes"], "background"]
    assert [row["predicted"] for row in matrix["rows"]] == matrix["labels"]
    assert all(len(row["true"]) == len(matrix["labels"]) for row in matrix["rows"])
    true_boxes = sum(row["true"][i] for row in matrix["rows"] for i in range(len(trained_model["classes"])))
    assert true_boxes == sum(f["instances"] for f in evaluation["per_class"].values()) or not evaluation["per_class"]
