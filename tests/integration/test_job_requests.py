"""The one request path (common/services/job_requests.py) under a publish that fails at creation: the API records
the job, answers 503, and the client's retry with the same request_id finds that job and publishes its request,
so the export and the import run to their end once, and a training job is asked for exactly once more. The API
runs in this process (its publishes can be made to fail); everything else is the local stack."""
from __future__ import annotations

import json
import uuid
import zipfile

import functions_framework
import pytest
from google.api_core.exceptions import ServiceUnavailable

from common.cloud import import_store, topics, training_store, version_store
from common.domain import jobs as kernel
from common.domain.messages import Message
from infra.local.client import wait_for
from infra.local.sample import generated_dataset
from tests.archive_servers import folder, ranged  # noqa: F401 (fixtures)
from tests.integration.helpers import drop, stats_when

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")


class FailsOnce:
    """topics.publish that fails its first call; later calls are sent, or only kept when `send` is False."""

    def __init__(self, monkeypatch, send: bool = True):
        self.real, self.send, self.calls = topics.publish, send, []
        monkeypatch.setattr(topics, "publish", self.publish)

    def publish(self, topic: str, message: Message, deadline: float | None = None, **attributes: str) -> str:
        self.calls.append((topic, message))
        if len(self.calls) == 1:
            raise ServiceUnavailable("the test's publish fails")
        return self.real(topic, message, deadline, **attributes) if self.send else "kept"


@pytest.fixture(scope="module")
def sample(bucket, api) -> str:
    dataset = f"requests-{uuid.uuid4().hex[:8]}"
    files = generated_dataset(4, 2, seed=31)
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": 6})
    return dataset


def asked_twice(stack, path: str, body: dict) -> tuple[dict, dict]:
    client, auth = APP.test_client(), {"Authorization": f"Bearer {stack.token}"}
    first = client.post(path, headers=auth, json=body)
    assert first.status_code == 503, first.get_json()
    retried = client.post(path, headers=auth, json=body)
    assert retried.status_code == 202, retried.get_json()
    return first.get_json(), retried.get_json()


def test_an_export_whose_publish_failed_runs_once_when_retried(stack, api, sample, monkeypatch):
    wire = FailsOnce(monkeypatch)
    _, answer = asked_twice(stack, f"/datasets/{sample}/exports", {"format": "yolo", "request_id": "export-once"})
    export = wait_for(lambda: api.get(f"/exports/{answer['export_id']}"), lambda e: e["status"] in kernel.FINAL,
                      120, "the export to end")
    assert export["status"] == "completed" and export["files_done"] == export["files_total"] > 0
    assert len(wire.calls) == 2 and wire.calls[0] == wire.calls[1]  # one export asked for twice
    mine = version_store.exports().where("dataset", "==", sample).get()
    assert [snapshot.id for snapshot in mine] == [answer["export_id"]]


def test_an_import_whose_publish_failed_runs_once_when_retried(stack, api, folder, ranged, monkeypatch):
    dataset = f"requests-import-{uuid.uuid4().hex[:6]}"
    assert api.session.post(f"{api.url}/datasets", json={"id": dataset}, timeout=30).status_code == 201
    files = generated_dataset(3, 2, seed=37)
    with zipfile.ZipFile(folder / f"{dataset}.zip", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    wire = FailsOnce(monkeypatch)
    body = {"url": ranged.url(f"{dataset}.zip"), "request_id": "import-once"}
    _, answer = asked_twice(stack, f"/datasets/{dataset}/imports", body)
    view = wait_for(lambda: api.get(f"/imports/{answer['import_id']}"), lambda i: i["status"] in kernel.FINAL,
                    120, "the import to end")
    assert (view["status"], view["members_done"]) == ("completed", len(files))
    assert len(wire.calls) == 2
    assert [s.id for s in import_store.collection().where("dataset", "==", dataset).get()] == [answer["import_id"]]


def test_a_training_whose_publish_failed_is_recorded_and_asked_for_once_more_by_the_retry(stack, api, sample,
                                                                                        monkeypatch):
    wire = FailsOnce(monkeypatch, send=False)  # no trainer runs: the test reads what was asked for
    body = {"dataset": sample, "model": "yolo11n.yaml", "epochs": 1, "request_id": f"train-{uuid.uuid4().hex[:6]}"}
    _, answer = asked_twice(stack, "/training", body)
    assert [json.loads(message.wire()) for _, message in wire.calls] == [body, body]
    job = training_store.jobs().document(answer["job_id"]).get().to_dict()
    assert (job["status"], job["request_id"]) == ("queued", body["request_id"])
    # Cancelled before anything was launched, it ends at once and the watch has nothing to send again.
    cancelled = api.session.post(f"{api.url}/jobs/training/{answer['job_id']}/cancel", timeout=30)
    assert cancelled.status_code == 202, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["cancellable"]) == ("cancelled", False)
    assert api.get(f"/training/{answer['job_id']}")["status"] == "cancelled"
    again = api.session.post(f"{api.url}/jobs/training/{answer['job_id']}/cancel", timeout=30)
    assert again.status_code == 202 and again.json()["status"] == "cancelled"  # a retried cancel: as it is


def test_a_version_cannot_be_cancelled_and_says_why(api, sample):
    version = api.session.post(f"{api.url}/datasets/{sample}/versions", json={}, timeout=30).json()
    refused = api.session.post(f"{api.url}/jobs/version/{sample}:{version['version']}/cancel", timeout=30)
    assert refused.status_code == 409 and "frozen in one short step" in refused.json()["error"]["message"]
