"""Exports and versions that survive their faults: an export killed half-way resumes after its last
committed part and completes; every message delivered twice, with a crash in the middle of a part, gives the
archive an undisturbed export gives, byte for byte; a freeze for an export crashed once makes one version; a
version request crashed before its version was ready, then delivered twice, makes that one version, ready;
a call out of time hands the rest to the stack's export function through export-requests; an export cancelled
half-way stops at its next part and leaves neither an archive nor its parts.

The faults are driven here, on the stack's bucket and Firestore: the export function's own work
(common.services.export.handle) runs in this process or in a drill subprocess (tests/integration/
export_chaos.py) that kills itself; its continuation messages go to a topic of this test's, pulled here."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import functions_framework
import pytest
from google.api_core.exceptions import ServiceUnavailable
from google.cloud import pubsub_v1

from common.cloud import export_parts as stored_parts, storage, version_store
from common.domain import exports, layout, request_bodies, versions as version_rules, zip_parts
from common.platform.events import PubSubMessage
from common.platform.handler import Outcome, Result
from common.services import export, watch_exports
from infra.local.client import wait_for
from infra.local.sample import data_yaml, synthetic_image
from tests.integration.export_chaos import message
from tests.integration.helpers import drop, stats_when
from tests.integration.test_export import export_of
from tests.integration.test_versions import ready_version

REPO = Path(__file__).resolve().parents[2]
API_APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
IMAGES = 7
DEADLINE = 60


def images_of(dataset: str) -> dict[str, bytes]:
    files = {"data.yaml": data_yaml().encode()}
    for n in range(IMAGES):
        split = "val" if n % 3 == 2 else "train"
        image, label = synthetic_image(500 + n, size=(64 + 4 * n, 48))
        files[f"images/{split}/r{n}.jpg"] = image
        files[f"labels/{split}/r{n}.txt"] = label.encode() if n != 4 else b""  # r4: a background image
    return files


@pytest.fixture(scope="module")
def exported(stack, api, bucket):
    """A dataset of 7 images, its version, and that version exported undisturbed by the stack's export
    function (cut into parts of 3 images: EXPORT_PART_FILES in tests/conftest.py) in each format."""
    dataset = f"resume-{uuid.uuid4().hex[:8]}"
    drop(bucket, dataset, images_of(dataset))
    stats_when(api, dataset, {"images": IMAGES, "background": 1})
    version = ready_version(api, dataset)["id"]
    archives = {}
    for export_format in ("yolo", "coco"):
        done = export_of(api, dataset, {"format": export_format, "version": version})
        assert done["status"] == "completed", done
        archives[export_format] = storage.blob_at(done["uri"]).download_as_bytes()
    return {"dataset": dataset, "version": version, "archives": archives}


def new_export(dataset: str, export_format: str, version: str | None) -> str:
    """An export recorded as the API records it, but with no message published: this test delivers it."""
    export_id = f"export-{uuid.uuid4().hex[:16]}"
    request = request_bodies.ExportRequest(format=export_format, version=version)
    version_store.exports().document(export_id).create(
        exports.new_document(export_id, dataset, request, "test", time.time()))
    return export_id


def deliver(export_id: str) -> Outcome | None:
    """One delivery of the export's message; None when another delivery's claim is still alive."""
    try:
        return export.handle(message(export_id))
    except export.ExportBusy:
        return None


def status(export_id: str) -> str:
    return version_store.exports().document(export_id).get().get("status")


def archive_of(export_id: str) -> tuple[dict, bytes]:
    document = version_store.exports().document(export_id).get().to_dict()
    assert document["status"] == "completed", document
    return document, storage.blob_at(document["uri"]).download_as_bytes()


def parts_left(export_id: str) -> list[str]:
    return [blob.name for blob in storage.client().list_blobs(storage.bucket(),
                                                              prefix=layout.export_parts(export_id))]


def test_an_export_killed_half_way_resumes_where_it_stopped(exported, monkeypatch):
    monkeypatch.setenv("EXPORT_PART_FILES", "2")
    export_id = new_export(exported["dataset"], "yolo", exported["version"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    drill = subprocess.run([sys.executable, "-m", "tests.integration.export_chaos", export_id, "6"], env=env,
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert drill.returncode == -signal.SIGKILL, drill.stdout + drill.stderr[-3000:]
    committed = stored_parts.done(layout.export_parts(export_id))
    assert [(p.first, p.end) for p in sorted(committed, key=lambda p: p.index)] == [(0, 2), (2, 4)]

    monkeypatch.setenv("EXPORT_LEASE_SECONDS", "2")  # the killed delivery's claim runs out quickly
    resumed = wait_for(lambda: deliver(export_id), lambda outcome: outcome is not None, DEADLINE,
                       "the killed delivery's claim taken over")
    assert resumed.result == Result.APPLIED, resumed
    # two parts found done, the rest written: 3 of 7 images (the part cut short and the one after), and the tail
    assert (resumed.fields["parts_found"], resumed.fields["parts_written"]) == (2, 3)
    assert resumed.fields["files_written"] == IMAGES - 4 < IMAGES
    document, archive = archive_of(export_id)
    assert archive == exported["archives"]["yolo"]
    assert (document["files_done"], document["bytes"]) == (IMAGES, len(archive))
    assert parts_left(export_id) == []
    assert deliver(export_id).result == Result.DUPLICATE


def test_every_message_twice_with_a_crash_mid_part_gives_the_undisturbed_archive(exported, monkeypatch):
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    topic = publisher.create_topic(name=publisher.topic_path(project, f"resume-{uuid.uuid4().hex[:8]}")).name
    subscription = subscriber.create_subscription(
        request={"name": subscriber.subscription_path(project, topic.rsplit("/", 1)[1]), "topic": topic}).name
    monkeypatch.setenv("EXPORT_TOPIC", topic.rsplit("/", 1)[1])
    monkeypatch.setenv("EXPORT_CALL_SECONDS", "0")  # every call writes one part and hands the rest on
    images_written = crash_once_at_image(monkeypatch, 3)

    export_id = new_export(exported["dataset"], "coco", exported["version"])
    outcomes, pending, deadline = [], [message(export_id)], time.monotonic() + DEADLINE
    while pending or status(export_id) != "completed":
        assert time.monotonic() < deadline, f"export {export_id} not completed within {DEADLINE} s"
        for delivered in pending:
            for _ in range(2):  # each message twice
                outcomes.append(delivered_until_acknowledged(delivered))
        pending = pulled(subscriber, subscription)

    document, archive = archive_of(export_id)
    assert archive == exported["archives"]["coco"]
    applied = [o for o in outcomes if o.result == Result.APPLIED]
    # every part written once (7 of one image each, then the tail), whatever came twice; only the image
    # under way at the crash was written again
    assert sum(o.fields["parts_written"] for o in applied) == IMAGES + 1
    assert sum(o.fields["files_written"] for o in applied) == IMAGES
    assert len(images_written) == IMAGES + 1
    assert any(o.result == Result.DUPLICATE for o in outcomes)  # the deliveries after the end
    assert parts_left(export_id) == []


def crash_once_at_image(monkeypatch, n: int) -> list[str]:
    """A transient failure (a lost connection) while the n-th image is written, half-way through its part."""
    add_pieces, written = zip_parts.PartWriter.add_pieces, []

    def failing(self, name, pieces, compress=True):
        if not compress:
            written.append(name)
            if len(written) == n:
                raise ServiceUnavailable("fault drill: the connection dropped mid-part")
        return add_pieces(self, name, pieces, compress)
    monkeypatch.setattr(zip_parts.PartWriter, "add_pieces", failing)
    return written


def delivered_until_acknowledged(delivered) -> Outcome:
    """A delivery; a transient failure is delivered again, as Pub/Sub does."""
    while True:
        try:
            return export.handle(delivered)
        except ServiceUnavailable:
            continue


def pulled(subscriber, subscription: str) -> list:
    """The continuation messages published since, acknowledged (they are delivered here)."""
    answer = subscriber.pull(request={"subscription": subscription, "max_messages": 100}, timeout=10)
    if answer.received_messages:
        subscriber.acknowledge(request={"subscription": subscription,
                                        "ack_ids": [m.ack_id for m in answer.received_messages]})
    return [message(json.loads(m.message.data)["export_id"]) for m in answer.received_messages]


def test_a_freeze_for_export_crashed_once_makes_one_version(api, bucket, dataset, monkeypatch):
    drop(bucket, dataset, dict(list(images_of(dataset).items())[:5]))
    stats_when(api, dataset, {"images": 2})
    create_version, crashes = version_store.create_version, []

    def crashing_after(*args, **kwargs):
        made = create_version(*args, **kwargs)
        if not crashes:
            crashes.append(made["id"])
            raise ServiceUnavailable("fault drill: the call died right after the version was made")
        return made
    monkeypatch.setattr(version_store, "create_version", crashing_after)

    export_id = new_export(dataset, "yolo", None)
    with pytest.raises(ServiceUnavailable):
        export.handle(message(export_id))
    assert export.handle(message(export_id)).result == Result.APPLIED
    document, _ = archive_of(export_id)
    listed = api.get(f"/datasets/{dataset}/versions")["versions"]
    assert [v["id"] for v in listed] == crashes == [document["version"]]


def test_a_version_request_crashed_after_its_image_list_and_delivered_twice_makes_one_ready_version(
        api, bucket, dataset, monkeypatch):
    drop(bucket, dataset, dict(list(images_of(dataset).items())[:5]))
    stats_when(api, dataset, {"images": 2})
    created = version_store.create_version(dataset, lambda number: version_rules.new_document(
        dataset, number, {"name": None, "note": None}, "test", time.time()))  # as POST /versions records it
    request = PubSubMessage("v", json.dumps({"dataset": dataset, "version": created["id"]}).encode(), "v", {})
    summary, crashes = version_rules.summary, []

    def crashing(frozen):  # after the image list is written, before the version says ready
        if not crashes:
            crashes.append(frozen["version"])
            raise ServiceUnavailable("fault drill: the call died before the version was ready")
        return summary(frozen)
    monkeypatch.setattr(version_rules, "summary", crashing)

    with pytest.raises(ServiceUnavailable):
        export.handle(request)
    assert [export.handle(request).result for _ in range(2)] == [Result.APPLIED, Result.APPLIED]
    listed = api.get(f"/datasets/{dataset}/versions")["versions"]
    assert [(v["id"], v["status"], v["phase"], v["stats"]["images"]) for v in listed] == [
        (created["id"], "completed", "ready", 2)]


def test_a_call_out_of_time_hands_the_rest_to_the_export_function(api, exported, monkeypatch):
    monkeypatch.setenv("EXPORT_CALL_SECONDS", "0")  # this call writes one part, then publishes to export-requests
    export_id = new_export(exported["dataset"], "yolo", exported["version"])
    handed_on = export.handle(message(export_id))
    assert (handed_on.result, handed_on.fields["parts_written"]) == (Result.APPLIED, 1), handed_on
    assert "continues in a new call" in handed_on.detail
    done = wait_for(lambda: api.get(f"/exports/{export_id}"), lambda e: e["status"] in ("completed", "failed"),
                    DEADLINE, "the stack's export function finishing the export")
    _, archive = archive_of(export_id)
    assert done["status"] == "completed" and archive == exported["archives"]["yolo"]


def test_an_export_whose_message_is_gone_is_sent_again_by_the_watch_and_completes(exported):
    """Recorded, but its message never came (a failed publish, the dead letters): the watch sends it again and
    the stack's export function writes the undisturbed archive."""
    export_id = new_export(exported["dataset"], "yolo", exported["version"])
    assert watch_exports.resend_waiting(time.time() + 10 ** 6)[export_id] == "sent again"
    wait_for(lambda: status(export_id), lambda found: found in ("completed", "failed"), 120, f"export {export_id}")
    assert archive_of(export_id)[1] == exported["archives"]["yolo"]


def test_an_export_cancelled_mid_way_stops_at_its_next_part_and_never_completes(exported, stack, monkeypatch):
    client, auth = API_APP.test_client(), {"Authorization": f"Bearer {stack.token}"}
    export_id = new_export(exported["dataset"], "yolo", exported["version"])
    commit, committed = stored_parts.commit, []

    def cancelled_after_the_first_part(record, directory):
        committed.append(commit(record, directory))
        if len(committed) == 1:
            answer = client.post(f"/exports/{export_id}/cancel", headers=auth)
            assert answer.status_code == 202 and answer.get_json()["status"] == "cancelled", answer.get_json()
        return committed[-1]
    monkeypatch.setattr(stored_parts, "commit", cancelled_after_the_first_part)

    stopped = export.handle(message(export_id))
    assert stopped.result == Result.DUPLICATE and "cancelled" in stopped.detail, stopped
    assert len(committed) == 1  # of three parts and the tail: it stopped at the next part
    document = version_store.exports().document(export_id).get().to_dict()
    assert (document["status"], document["uri"], document["cancelled_by"]) == ("cancelled", None, "admin")
    assert list(storage.client().list_blobs(storage.bucket(), prefix=f"derived/exports/{export_id}/")) == []
    assert deliver(export_id).result == Result.DUPLICATE  # a redelivered request does nothing
    assert export_id not in watch_exports.resend_waiting(time.time() + 10 ** 6)
    assert status(export_id) == "cancelled"
    assert client.post(f"/exports/{export_id}/cancel", headers=auth).status_code == 202  # a retry: as it is

    finished = new_export(exported["dataset"], "yolo", exported["version"])
    monkeypatch.setattr(stored_parts, "commit", commit)
    assert deliver(finished).result == Result.APPLIED
    refused = client.post(f"/exports/{finished}/cancel", headers=auth)
    assert refused.status_code == 409 and "has ended (completed)" in refused.get_json()["error"]["message"]
