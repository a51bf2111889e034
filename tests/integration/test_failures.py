"""Transient failures raise (the platform redelivers); bad files never do."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from infra.local.sample import synthetic_image
from tests.integration.helpers import drop, handled_objects, stats_when

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 3  # CLOUD_DEADLINE_SECONDS: how long one Firestore call may retry before it gives up
HANDLER = """
from cloudevents.http import CloudEvent
from functions.ingest.main import ingest_object
ingest_object(CloudEvent({"type": "google.cloud.storage.object.v1.finalized", "id": "t1", "source": "test"},
                         {"bucket": "b", "name": "datasets/d/images/a.jpg", "generation": "1", "size": "10"}))
"""


def refused_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # closed again: connections are refused


def test_firestore_unavailable_raises_for_redelivery():
    env = {**os.environ, "PYTHONPATH": str(REPO), "GOOGLE_CLOUD_PROJECT": "p", "DATA_BUCKET": "b",
           "CLOUD_DEADLINE_SECONDS": str(DEADLINE),
           "FIRESTORE_EMULATOR_HOST": refused_address(), "STORAGE_EMULATOR_HOST": f"http://{refused_address()}"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", HANDLER], env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.stderr
    # bounded by the setting, not by the client's default deadline (60 s): start-up plus one deadline
    assert elapsed < DEADLINE + 20, f"the handler gave up after {elapsed:.0f}s: a Firestore call ignores the deadline"
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert logged[-1]["severity"] == "WARNING" and "redelivered" in logged[-1]["message"]
    assert "ServiceUnavailable" in result.stderr or "RetryError" in result.stderr


def test_bad_files_are_acknowledged_once(stack, bucket, api, dataset):
    drop(bucket, dataset, {"images/bad.jpg": b"not an image", "labels/bad.txt": b"x y z",
                           "images/good.jpg": synthetic_image(3)[0]})
    stats_when(api, dataset, {"images": 2, "issues": 2})
    assert sorted(handled_objects(stack, dataset)) == sorted(f"datasets/{dataset}/{name}"
                                     for name in ("images/bad.jpg", "labels/bad.txt", "images/good.jpg"))
