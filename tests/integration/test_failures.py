"""Transient failures are given back to Pub/Sub (redelivered); bad files never are."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from google.cloud import pubsub_v1

from infra.local import stack as local_stack
from infra.local.sample import synthetic_image
from infra.local.client import wait_for
from tests.integration.helpers import drop, stats_when

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 3  # CLOUD_DEADLINE_SECONDS: how long one Firestore call may retry before it gives up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: free, and connections to it are refused


def refused_address() -> str:
    return f"127.0.0.1:{free_port()}"


def test_firestore_unavailable_gives_the_event_back_for_redelivery(stack, tmp_path):
    """An ingest function whose Firestore is down answers the push with an error: Pub/Sub delivers it again (and
    again)."""
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=publisher.topic_path(stack.project, "failures-events")).name
    subscription = subscriber.subscription_path(stack.project, "failures-pull")
    subscriber.create_subscription(request={"name": subscription, "topic": topic, "ack_deadline_seconds": 600})
    name, log_path, port = "datasets/d/images/a.jpg", tmp_path / "ingest.log", free_port()
    env = {**os.environ, **stack.env(), "PYTHONPATH": str(REPO), "INGEST_SUBSCRIPTION": "failures-pull",
           "CLOUD_DEADLINE_SECONDS": str(DEADLINE), "FIRESTORE_EMULATOR_HOST": refused_address(),
           "INGEST_STATUS_PORT": str(free_port())}
    with log_path.open("wb") as log:
        function = subprocess.Popen(local_stack.function_command("ingest", port), env=env, cwd=REPO, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        pump = subprocess.Popen([sys.executable, "-m", "infra.local.push_pump", subscription,
                                 f"http://127.0.0.1:{port}/", "4"], env=env, cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        publisher.publish(topic, json.dumps({"bucket": stack.bucket, "name": name, "generation": "1",
                                             "size": "10"}).encode(),
                          eventType="OBJECT_FINALIZE", bucketId=stack.bucket, objectId=name,
                          objectGeneration="1").result()
        retries = wait_for(lambda: outcomes_logged(log_path, name), lambda found: found.count("retry") >= 2, 60,
                           "the event retried after its redelivery")
        # bounded by the setting, not by the client's default deadline (60 s): start-up plus one deadline
        assert time.monotonic() - started < 2 * DEADLINE + 30
        assert set(retries) == {"retry"}, retries  # never acknowledged as done
    finally:
        pump.terminate()
        assert pump.wait(timeout=30) == 0  # SIGTERM: it gives back what it holds and stops cleanly
        os.killpg(function.pid, signal.SIGTERM)
        function.wait(timeout=30)
    first = next(record for record in logged(log_path) if record.get("object") == name)
    assert first["severity"] == "WARNING" and "redelivered" in first["message"]
    assert "ServiceUnavailable" in first["error"] or "RetryError" in first["error"], first


def logged(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]


def outcomes_logged(path: Path, name: str) -> list[str]:
    return [record["outcome"] for record in logged(path) if record.get("object") == name]


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
    """The outcome of every handling of each object of `dataset`, from the ingest function's log."""
    prefix, found = f"datasets/{dataset}/", {}
    for line in (stack.state_dir / "ingest.log").read_text(errors="replace").splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        if record.get("object", "").startswith(prefix):
            found.setdefault(record["object"], []).append(record.get("outcome"))
    return found
