"""Attacks on the prediction function (POST /models/{id}/predict) of the local stack, over HTTP:
a stranger's request on another person's model, another tenant's bucket objects, a 16-bit
decompression bomb, oversized bodies and a flood of requests."""
from __future__ import annotations

import http.client
import struct
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from common.api.resources import predictions
from common.cloud import storage
from common.platform import config
from infra.local.client import sign_up, wait_for
from infra.local.sample import generated_dataset
from tests.integration.helpers import dataset_when, drop
from tests.integration.trained import trained_model  # noqa: F401 - a fixture

GIB = 1024 ** 3
PRODUCTION_MEMORY = 2 * GIB       # infra/settings.json: predict has 2Gi
PRODUCTION_CONCURRENCY = 4        # and takes 4 requests at once


@pytest.fixture(scope="module")
def predict_url(stack) -> str:
    return stack.env()["PREDICT_URL"]


@pytest.fixture(scope="module")
def admin(stack) -> dict:
    return {"Authorization": f"Bearer {stack.token}"}


def person(stack, name: str) -> tuple[str, dict]:
    uid, token = sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], f"{name}-{uuid.uuid4().hex[:8]}@example.com",
                         "secret-123")
    return uid, {"Authorization": f"Bearer {token}"}


def post(url: str, model_id: str, auth: dict, **kwargs) -> requests.Response:
    return requests.post(f"{url}/models/{model_id}/predict", headers={**auth, **kwargs.pop("headers", {})},
                         timeout=120, **kwargs)


def png16_zeros(width: int, height: int) -> bytes:
    """A 16-bit greyscale PNG of zeros: a few hundred KB that decode to 2 bytes a pixel."""
    packer, row = zlib.compressobj(9), b"\x00" * (1 + 2 * width)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def worker_pid(stack) -> int:
    """The process that runs prediction: functions-framework's gunicorn worker, a child of the stack's process."""
    master = stack.pids["predict"]
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, f"expected one gunicorn worker under {master}, found {children}"
    return int(children[0])


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in bytes."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def data_limit(pid: int) -> int:
    """The process's RLIMIT_DATA (the local stack sets production's memory, infra/local/stack.py)."""
    line = next(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
                if line.startswith("Max data size"))
    return int(line.split()[3])


def reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the kernel's reset of VmHWM to the current RSS


@pytest.fixture(scope="module")
def another_tenant(stack, bucket, api) -> str:
    """A dataset of someone else, with one image; its name."""
    dataset = f"victim-{uuid.uuid4().hex[:8]}"
    drop(bucket, dataset, generated_dataset(1, 0))
    dataset_when(api, dataset, lambda view: view["stats"].get("images") == 1, "its image indexed")
    return dataset


def object_reads(stack, name: str, media_only: bool = False) -> int:
    """Requests fake-gcs-server logged for the object `name`: of its metadata or its bytes, or of its bytes only."""
    encoded = name.replace("/", "%2F")
    lines = (stack.state_dir / "gcs.log").read_text(errors="replace").splitlines()
    return sum((name in line or encoded in line) and (not media_only or "alt=media" in line) for line in lines)


# ---- a stranger on another person's model ------------------------------------------------

def test_a_stranger_is_refused_before_a_byte_of_the_body_is_read(stack, predict_url, trained_model):
    """The request declares 8 MiB and sends 1 KiB: a function that read the body before it authorized
    would wait for the rest; it answers 404 at once, as GET /models/{id} answers the stranger."""
    _, stranger = person(stack, "stranger")
    address = urlsplit(predict_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=20)
    try:
        connection.putrequest("POST", f"/models/{trained_model['id']}/predict")
        connection.putheader("Authorization", stranger["Authorization"])
        connection.putheader("Content-Type", "image/jpeg")
        connection.putheader("Content-Length", str(8 * 1024 ** 2))
        connection.endheaders(b"\xff\xd8" + b"\x00" * 1022)
        answer = connection.getresponse()
        assert answer.status == 404, answer.read()
        message = answer.read().decode()
    finally:
        connection.close()
    assert f"no model '{trained_model['id']}'" in message and trained_model["dataset"] not in message


def test_a_person_taken_off_the_dataset_stops_predicting_within_the_period(stack, api, predict_url, trained_model):
    """Prediction keeps whom it admitted PREDICT_ACCESS_SECONDS (5 s): a viewer's predictions go through, and
    once they are taken off the dataset they are refused as a stranger is, within that period."""
    uid, viewer = person(stack, "viewer")
    members = f"{api.url}/datasets/{trained_model['dataset']}/members/{uid}"
    assert api.session.put(members, json={"role": "viewer"}, timeout=30).status_code == 200
    image = {"data": generated_dataset(1, 0)["images/g00000.jpg"], "headers": {"Content-Type": "image/jpeg"}}
    assert post(predict_url, trained_model["id"], viewer, **image).status_code == 200  # admitted, and kept

    assert api.session.delete(members, timeout=30).status_code == 200
    taken_off = time.monotonic()
    period = config.predict_access_seconds()
    answer = wait_for(lambda: post(predict_url, trained_model["id"], viewer, **image), lambda a: a.status_code != 200,
                      period + 30, "the prediction refused", interval=0.25)
    assert answer.status_code == 404 and answer.json()["error"]["message"] == f"no model {trained_model['id']!r}"
    assert time.monotonic() - taken_off < period + 10  # the period, and the requests' own time here


def test_a_strangers_named_images_are_never_looked_at(stack, predict_url, trained_model, another_tenant):
    """Neither their names (a malformed body or too many images would be a 400; another tenant's image a 404
    naming its dataset), nor their metadata, nor their bytes: the answer is the model's 404 and
    fake-gcs-server never saw a request for them."""
    _, stranger = person(stack, "stranger")
    missing = f"datasets/{trained_model['dataset']}/images/never-{uuid.uuid4().hex[:8]}.jpg"
    uri = f"gs://{config.data_bucket()}/{missing}"
    for body in ({"images": "not a list"}, {"images": [uri] * (predictions.MAX_BATCH + 1)},
                 {"images": [uri, f"gs://{config.data_bucket()}/datasets/{another_tenant}/images/x.jpg"]}):
        answer = post(predict_url, trained_model["id"], stranger, json=body)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["message"] == f"no model {trained_model['id']!r}"
    assert object_reads(stack, missing) == 0


def test_another_tenants_bucket_image_shows_nothing_of_it(stack, api, predict_url, trained_model, another_tenant):
    """A viewer of the model's dataset names an image of a dataset they are not a member of."""
    uid, viewer = person(stack, "viewer")
    members = f"{api.url}/datasets/{trained_model['dataset']}/members/{uid}"
    assert api.session.put(members, json={"role": "viewer"}, timeout=30).status_code == 200
    theirs = next(iter(storage.bucket().list_blobs(prefix=f"datasets/{another_tenant}/images/")))
    own = next(iter(storage.bucket().list_blobs(prefix=f"datasets/{trained_model['dataset']}/images/")))
    uris = [f"gs://{config.data_bucket()}/{own.name}", f"gs://{config.data_bucket()}/{theirs.name}"]
    reads_before = object_reads(stack, theirs.name)
    answer = post(predict_url, trained_model["id"], viewer, json={"images": uris})
    assert answer.status_code == 404, answer.text
    error = answer.json()["error"]
    assert f"no dataset {another_tenant!r}" in error["message"] and error["param"] == "images"
    assert "predictions" not in answer.json() and object_reads(stack, theirs.name) == reads_before
    assert post(predict_url, trained_model["id"], viewer, json={"images": uris[:1]}).status_code == 200


# ---- a 16-bit bomb ------------------------------------------------------------------------

def test_a_sixteen_bit_bomb_is_refused_undecoded(predict_url, admin, trained_model):
    bomb = png16_zeros(8000, 8000)  # 64 megapixels; an int64 copy of it alone is 512 MB
    answer = post(predict_url, trained_model["id"], admin, data=bomb, headers={"Content-Type": "image/png"})
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert "8000x8000" in message and str(config.predict_max_pixels()) in message and "not decoded" in message


def test_sixteen_bit_images_at_the_pixel_limit_stay_within_productions_memory(stack, predict_url, admin,
                                                                              trained_model, bus_photo):
    """Production's concurrency of requests, each a 16-bit image just under the pixel limit, while the owner
    predicts a photo, in a worker limited to production's memory: every answer is right, the worker is the
    same process, its peak resident memory under 2 GiB."""
    side = int(config.predict_max_pixels() ** 0.5)
    heavy = png16_zeros(side, side)
    pid = worker_pid(stack)
    assert data_limit(pid) == PRODUCTION_MEMORY  # an allocation past it fails: a fix must not only move the crash
    reset_peak_rss(pid)
    at_rest = peak_rss(pid)
    with ThreadPoolExecutor(max_workers=PRODUCTION_CONCURRENCY + 1) as pool:
        bombs = [pool.submit(post, predict_url, trained_model["id"], admin, data=heavy,
                             headers={"Content-Type": "image/png"}) for _ in range(PRODUCTION_CONCURRENCY)]
        photo = pool.submit(post, predict_url, trained_model["id"], admin, data=bus_photo,
                            headers={"Content-Type": "image/jpeg"})
        answers = [future.result() for future in bombs]
        owner = photo.result()
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert (answer.json()["predictions"][0]["width"], answer.json()["predictions"][0]["height"]) == (side, side)
    assert owner.status_code == 200 and owner.json()["predictions"][0]["width"] == 810
    assert worker_pid(stack) == pid
    print(f"predict worker: resident {at_rest / GIB:.2f} GiB before, peak {peak_rss(pid) / GIB:.2f} GiB")
    assert peak_rss(pid) < PRODUCTION_MEMORY, f"peak {peak_rss(pid) / GIB:.2f} GiB"


# ---- oversized requests ---------------------------------------------------------------------

def test_a_body_over_the_cap_is_refused_naming_it(predict_url, admin, trained_model):
    cap = config.predict_max_bytes()
    declared = post(predict_url, trained_model["id"], admin, data=b"\0" * (cap + 1),
                    headers={"Content-Type": "image/jpeg"})
    chunked = post(predict_url, trained_model["id"], admin, data=iter([b"\0" * (1024 ** 2)] * ((cap >> 20) + 2)),
                   headers={"Content-Type": "image/jpeg"})
    for answer in (declared, chunked):
        assert answer.status_code == 413, answer.text
        assert f"at most {cap} bytes" in answer.json()["error"]["message"]
    too_long = post(predict_url, trained_model["id"], admin, json={"images": ["gs://x/" + "y" * 70_000]})
    assert too_long.status_code == 413 and "JSON body" in too_long.json()["error"]["message"]


def test_named_objects_over_the_cap_are_refused_from_their_metadata(stack, bucket, api, predict_url, admin,
                                                                    trained_model):
    cap = config.predict_max_bytes()
    dataset = f"big-{uuid.uuid4().hex[:8]}"
    name = f"datasets/{dataset}/images/half.png"
    bucket.blob(name).upload_from_string(b"\0" * (cap // 2 + 1))
    dataset_when(api, dataset, lambda view: view["stats"].get("images", 0) + view["stats"].get("issues", 0) >= 1,
                 "ingest to have read the object")
    reads, media_reads = object_reads(stack, name), object_reads(stack, name, media_only=True)
    answer = post(predict_url, trained_model["id"], admin,
                  json={"images": [f"gs://{config.data_bucket()}/{name}"] * 2})
    assert answer.status_code == 413, answer.text
    assert f"at most {cap} bytes" in answer.json()["error"]["message"] and answer.json()["error"]["param"] == "images"
    assert object_reads(stack, name) > reads, "prediction's metadata reads should show in fake-gcs-server's log"
    assert object_reads(stack, name, media_only=True) == media_reads


# ---- a flood -----------------------------------------------------------------------------------

def test_prediction_is_rate_limited_per_person(stack, predict_url, bus_photo):
    """Requests of one person are counted before the model is even looked up; beyond the limit a 429 names
    it and when to come back, and another person is not held back. Two windows' worth of requests at most:
    a window may end mid-flood, but then one of the two holds more than the limit."""
    limit, seconds = config.predict_rate_limit()
    _, busy = person(stack, "busy")
    _, other = person(stack, "other")
    started, session, answers = time.monotonic(), requests.Session(), []
    while len(answers) <= 2 * limit and (not answers or answers[-1].status_code != 429):
        answers.append(session.post(f"{predict_url}/models/model-nosuch/predict", headers=busy, timeout=30))
    assert time.monotonic() - started < seconds, "the flood outlasted a window: the test cannot tell"
    assert [answer.status_code for answer in answers[:limit]] == [404] * limit
    refused = answers[-1]
    assert refused.status_code == 429, refused.text
    assert f"more than {limit} prediction requests in {seconds} s" in refused.json()["error"]["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= seconds
    assert post(predict_url, "model-nosuch", other, data=bus_photo).status_code == 404
