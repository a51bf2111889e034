"""Transient failures raise (the platform redelivers); bad files never do."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from infra.local.sample import synthetic_image
from infra.local.client import wait_for
from tests.integration.helpers import drop, stats_when

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
    assert (logged[-1]["outcome"], logged[-1]["severity"]) == ("retry", "WARNING"), logged[-1]
    assert "ServiceUnavailable" in logged[-1]["error"] or "RetryError" in logged[-1]["error"], logged[-1]


def test_bad_files_are_acknowledged_once(stack, bucket, api, dataset):
    drop(bucket, dataset, {"images/bad.jpg": b"not an image", "labels/bad.txt": b"x y z",
                           "images/good.jpg": synthetic_image(3)[0]})
    stats_when(api, dataset, {"images": 2, "issues": 2})
    objects = [f"datasets/{dataset}/{name}" for name in ("images/bad.jpg", "labels/bad.txt", "images/good.jpg")]
    # the log line follows the index write: wait until every object has one
    outcomes = wait_for(lambda: ingest_outcomes(stack, dataset), lambda found: set(found) == set(objects), 30,
                        "an ingest outcome logged for each object")
    # acknowledged: each handled once and applied (its issue recorded), none raised for a redelivery
    assert outcomes == {name: ["applied"] for name in objects}


def ingest_outcomes(stack, dataset: str) -> dict[str, list[str]]:
    """The outcome of every handling of each object of `dataset`, from the ingest server's log."""
    prefix, found = f"datasets/{dataset}/", {}
    for line in (stack.state_dir / "ingest.log").read_text(errors="replace").splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        if record.get("object", "").startswith(prefix):
            found.setdefault(record["object"], []).append(record.get("outcome"))
    return found
