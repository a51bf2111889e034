"""The job kernel under faults (issue 22), with dataset jobs: a publish that fails at creation, an end that fails
after the last unit, a unit asked for before the plan, units delivered twice and a worker killed mid-unit.

Firestore and the bucket are the stack's (real emulators); where a test must decide when each message arrives, it
catches what the kernel publishes and delivers it itself, in this process, in the order (and as often) it chooses.
"""
from __future__ import annotations

import json
import time
import uuid

import functions_framework
import pytest
from google.api_core.exceptions import ServiceUnavailable

from common.cloud import dataset_job_store, db, guarded_objects, job_store, topics
from common.domain import class_changes
from common.domain import jobs as kernel
from common.domain.datayaml import parse_data_yaml
from common.domain.messages import Message
from common.platform.events import PubSubMessage
from common.platform.handler import Result
from common.services import dataset_jobs, jobs
from infra.local.client import wait_for
from infra.local.sample import synthetic_image
from tests.integration.helpers import dataset_when, drop, stats_when

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
NAMES = ["person", "bus", "tie", "car"]
MAP = {"car": "bus", "tie": None, "person": "human"}  # merge, delete and rename: ids move and boxes go
LATER = 10 ** 6  # seconds: a `now` at which every job that has not ended has been quiet for long


def yaml_of(names: list[str]) -> bytes:
    return class_changes.with_names(b"train: images/train\nnc: 0\n", names)


@pytest.fixture
def labelled(bucket, api) -> tuple[str, dict[str, bytes]]:
    """45 labelled images (three units at the tests' unit size), several classes per file: (dataset, labels)."""
    dataset = f"kern-{uuid.uuid4().hex[:8]}"
    labels = {f"labels/train/i{i:02d}.txt": f"{i % 4} 0.5 0.5 0.2 0.2\n{(i + 1) % 4} 0.3 0.3 0.1 0.1\n".encode()
              for i in range(45)}
    files = {"data.yaml": yaml_of(NAMES), **labels,
             **{f"images/train/i{i:02d}.jpg": synthetic_image(300 + i, size=(48, 32))[0] for i in range(45)}}
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": 45, "boxes": 90})
    return dataset, labels


class Wire:
    """What the kernel publishes, caught instead of sent: delivered by the test."""

    def __init__(self, monkeypatch, fail_first: int = 0):
        self.messages: list[dict] = []
        self.fail_first = fail_first
        monkeypatch.setattr(topics, "publish", self.publish)

    def publish(self, topic: str, message: Message, deadline: float | None = None, **attributes: str) -> str:
        if self.fail_first:
            self.fail_first -= 1
            raise ServiceUnavailable("the test's publish fails")
        self.messages.append(json.loads(message.wire()))  # as it goes on the wire
        return str(len(self.messages))

    def take(self, step: str) -> list[dict]:
        taken = [message for message in self.messages if message.get("step") == step]
        self.messages = [message for message in self.messages if message.get("step") != step]
        return taken


def deliver(message: dict):
    return dataset_jobs.handle(PubSubMessage("test", json.dumps(message).encode(), "test", {}))


def remap_job(dataset: str, bucket) -> dict:
    remap = class_changes.plan_remap(NAMES, MAP, None)
    generation = bucket.get_blob(f"datasets/{dataset}/data.yaml").generation
    return dataset_jobs.dataset_jobs.new_job(
        dataset_jobs.dataset_jobs.remap_job_id(dataset, generation, MAP, remap.names), dataset,
        dataset_jobs.dataset_jobs.REMAP, time.time(), "test", map=MAP, names_before=NAMES, names_after=remap.names,
        ids={str(old): new for old, new in remap.ids.items()}, data_yaml="data.yaml")


def one_clean_pass(labels: dict[str, bytes]) -> dict[str, bytes]:
    ids = class_changes.plan_remap(NAMES, MAP, None).ids
    return {path: (class_changes.remap_label_text(data.decode(), ids) or data.decode()).encode()
            for path, data in labels.items()}


def label_files(bucket, dataset: str, labels: dict[str, bytes]) -> dict[str, bytes]:
    return {path: bucket.blob(f"datasets/{dataset}/{path}").download_as_bytes() for path in labels}


def names_in_data_yaml(bucket, dataset: str) -> list[str]:
    path = f"datasets/{dataset}/data.yaml"
    return parse_data_yaml(bucket.blob(path).download_as_bytes(), path).names


def test_a_remap_whose_publish_fails_at_creation_runs_to_its_end_when_the_request_is_retried(
        labelled, bucket, api, stack, monkeypatch):
    dataset, labels = labelled
    client, auth = APP.test_client(), {"Authorization": f"Bearer {stack.token}"}
    publish = topics.publish
    failures = []

    def fails_once(*args, **kwargs):
        if not failures:
            failures.append(True)
            raise ServiceUnavailable("the test's publish fails")
        return publish(*args, **kwargs)

    monkeypatch.setattr(topics, "publish", fails_once)
    first = client.post(f"/datasets/{dataset}/classes/remap", headers=auth, json={"map": MAP})
    assert first.status_code >= 500
    retried = client.post(f"/datasets/{dataset}/classes/remap", headers=auth, json={"map": MAP})
    assert retried.status_code == 202, retried.get_json()
    job_id = retried.get_json()["job_id"]
    job = wait_for(lambda: client.get(f"/datasets/{dataset}/jobs/{job_id}", headers=auth).get_json(),
                   lambda view: view["status"] in kernel.FINAL, 120, f"job {job_id}")
    assert job["status"] == "completed" and job["files_done"] == 45
    assert label_files(bucket, dataset, labels) == one_clean_pass(labels)
    dataset_when(api, dataset, lambda view: view["classes"] == ["human", "bus"], "the remapped names")


def test_a_job_whose_publish_failed_and_was_never_retried_is_started_by_the_watch(labelled, monkeypatch):
    dataset, _ = labelled
    wire = Wire(monkeypatch, fail_first=1)
    job_id = dataset_jobs.dataset_jobs.revalidation_job_id(dataset, 12345)
    with pytest.raises(ServiceUnavailable):
        dataset_jobs.start_revalidation(dataset, 12345)
    assert dataset_job_store.get(job_id)["status"] == kernel.QUEUED and not wire.messages
    assert jobs.watch(time.time() + LATER)[job_id] == "plan asked again"
    run_to_the_end(wire, job_id)
    ended = dataset_job_store.get(job_id)
    assert ended["status"] == kernel.COMPLETED and ended["files_total"] == 45


def run_to_the_end(wire: Wire, job_id: str, twice: bool = False) -> None:
    """Deliver what the kernel publishes for the job until nothing is left (each message twice when asked);
    messages the watch sent for other tests' jobs are dropped."""
    while wire.messages:
        message = wire.messages.pop(0)
        for _ in range(2 if twice and message["job_id"] == job_id else 1 if message["job_id"] == job_id else 0):
            deliver(message)


def test_an_end_that_fails_after_the_last_unit_is_finished_by_the_watch(labelled, bucket, monkeypatch):
    dataset, labels = labelled
    wire = Wire(monkeypatch)
    job = dataset_jobs.start(remap_job(dataset, bucket))
    write_names = dataset_jobs._write_names
    calls = []

    def fails_once(job):
        calls.append(job["id"])
        if len(calls) == 1:
            raise ServiceUnavailable("the end is cut short")
        return write_names(job)

    monkeypatch.setattr(dataset_jobs, "_write_names", fails_once)
    deliver(wire.take("plan")[0])
    units = wire.take("chunk")
    for message in units[:-1]:
        deliver(message)
    with pytest.raises(ServiceUnavailable):
        deliver(units[-1])
    stuck = dataset_job_store.get(job["id"])
    assert stuck["status"] == kernel.RUNNING and names_in_data_yaml(bucket, dataset) == NAMES
    assert jobs.watch(time.time() + LATER)[job["id"]] == "end asked"
    run_to_the_end(wire, job["id"])
    assert dataset_job_store.get(job["id"])["status"] == kernel.COMPLETED
    assert names_in_data_yaml(bucket, dataset) == ["human", "bus"]
    assert label_files(bucket, dataset, labels) == one_clean_pass(labels)


def test_a_unit_asked_for_before_the_plan_is_refused_and_the_job_still_ends(labelled, bucket, monkeypatch):
    dataset, labels = labelled
    wire = Wire(monkeypatch)
    job = dataset_jobs.start(remap_job(dataset, bucket))
    assert deliver({"job_id": job["id"], "step": "chunk", "chunk": 0}).result == Result.REJECTED
    mark_planned = job_store.mark_planned
    crashed = []

    def crash_once(*args):
        if not crashed:
            crashed.append(True)
            raise ServiceUnavailable("the planner dies after writing the plan")
        return mark_planned(*args)

    monkeypatch.setattr(job_store, "mark_planned", crash_once)
    plan = wire.take("plan")[0]
    with pytest.raises(ServiceUnavailable):
        deliver(plan)
    deliver(plan)  # the redelivery plans at once: the lease was let go
    run_to_the_end(wire, job["id"])
    assert dataset_job_store.get(job["id"])["status"] == kernel.COMPLETED
    assert label_files(bucket, dataset, labels) == one_clean_pass(labels)


def test_units_delivered_twice_and_a_worker_killed_mid_unit_remap_each_file_exactly_once(
        labelled, bucket, monkeypatch):
    dataset, labels = labelled
    wire = Wire(monkeypatch)
    job = dataset_jobs.start(remap_job(dataset, bucket))
    deliver(wire.take("plan")[0])
    write = guarded_objects.write
    written = []

    def killed_after_three(*args, **kwargs):
        if len(written) == 3:
            raise SystemExit("the worker is killed mid-unit")
        written.append(args[0])
        return write(*args, **kwargs)

    monkeypatch.setattr(guarded_objects, "write", killed_after_three)
    first = wire.messages[0]
    with pytest.raises(SystemExit):
        deliver(first)
    monkeypatch.setattr(guarded_objects, "write", write)
    run_to_the_end(wire, job["id"], twice=True)
    deliver(first)  # and the killed unit's message once more, late
    ended = dataset_job_store.get(job["id"])
    assert ended["status"] == kernel.COMPLETED and ended["files_total"] == 45
    assert label_files(bucket, dataset, labels) == one_clean_pass(labels)
    assert names_in_data_yaml(bucket, dataset) == ["human", "bus"]


def test_a_failed_remap_asked_for_again_resumes_without_remapping_a_file_twice(labelled, bucket, monkeypatch):
    dataset, labels = labelled
    wire = Wire(monkeypatch)
    job = dataset_jobs.start(remap_job(dataset, bucket))
    deliver(wire.take("plan")[0])
    deliver(wire.take("chunk")[0])  # one unit done, then the job fails (the watch gave up on it, say)
    job_store.finish(dataset_job_store.jobs(), job["id"], kernel.FAILED, error="given up")
    again = dataset_jobs.start(remap_job(dataset, bucket))
    assert again["id"] == job["id"] and again["status"] == kernel.RUNNING
    run_to_the_end(wire, job["id"])
    assert dataset_job_store.get(job["id"])["status"] == kernel.COMPLETED
    assert label_files(bucket, dataset, labels) == one_clean_pass(labels)


def test_a_remap_is_cancelled_while_queued_only_and_a_cancelled_one_asked_again_starts_afresh(
        labelled, bucket, stack, monkeypatch):
    dataset, labels = labelled
    wire = Wire(monkeypatch)
    client, auth = APP.test_client(), {"Authorization": f"Bearer {stack.token}"}
    job_id = client.post(f"/datasets/{dataset}/classes/remap", headers=auth, json={"map": MAP}).get_json()["job_id"]
    cancelled = client.post(f"/datasets/{dataset}/jobs/{job_id}/cancel", headers=auth)
    assert cancelled.status_code == 202, cancelled.get_json()
    assert (cancelled.get_json()["status"], cancelled.get_json()["cancelled_by"]) == (kernel.CANCELLED, "admin")
    assert deliver(wire.take("plan")[0]).result == Result.DUPLICATE  # the plan step delivered later does nothing
    assert job_id not in {job["id"] for job in job_store.active(dataset_job_store.jobs())}  # the watch's sweep
    assert label_files(bucket, dataset, labels) == labels

    again = client.post(f"/datasets/{dataset}/classes/remap", headers=auth, json={"map": MAP})
    assert again.get_json()["job_id"] == job_id and dataset_job_store.get(job_id)["status"] == kernel.QUEUED
    deliver(wire.take("plan")[0])  # planned: it rewrites files now
    refused = client.post(f"/datasets/{dataset}/jobs/{job_id}/cancel", headers=auth)
    assert refused.status_code == 409 and "remap back" in refused.get_json()["error"]["message"]
    run_to_the_end(wire, job_id)
    assert dataset_job_store.get(job_id)["status"] == kernel.COMPLETED
    assert label_files(bucket, dataset, labels) == one_clean_pass(labels)
    ended = client.post(f"/datasets/{dataset}/jobs/{job_id}/cancel", headers=auth)
    assert ended.status_code == 409 and "has ended (completed)" in ended.get_json()["error"]["message"]


# ---- one claim (job_store.claim, Heartbeat, release) -----------------------------------------------------------

def claimed_by_a_for(ref, lease: kernel.Lease, since: float) -> float:
    """Seconds since `since`, once a claim by another holder was refused because `a` holds the lease."""
    with pytest.raises(kernel.LeaseHeld, match="claimed by a"):
        job_store.claim(ref, lease, "b", lambda document: True)
    return time.time() - since


def claim_or_none(ref, lease: kernel.Lease, holder: str) -> job_store.Claim | None:
    try:
        return job_store.claim(ref, lease, holder, lambda document: True)
    except kernel.LeaseHeld:
        return None


def test_one_claim_one_holder_its_heartbeat_keeps_it_and_a_lease_run_out_is_taken_over(stack):
    ref = db.client().collection("claim-drill").document(uuid.uuid4().hex)
    lease = kernel.Lease(3.0, at="claimed_at", holder="claimed_by")  # beats 0.75 s apart: room for a loaded machine
    first = job_store.claim(ref, lease, "a", lambda document: True)
    assert first.taken and first.document is None  # a new document, made with the claim
    assert job_store.claim(ref, lease, "a", lambda document: True).taken  # its holder's claim, retried
    taken_at = time.time()
    with job_store.Heartbeat(first):  # a beat every quarter of the lease: held far longer than the lease
        wait_for(lambda: claimed_by_a_for(ref, lease, taken_at), lambda held: held > 2 * lease.seconds, 60,
                 "the heartbeat keeping the claim")
    second = wait_for(lambda: claim_or_none(ref, lease, "b"), lambda claim: claim is not None, 30,
                      "the lease, run out once its heartbeat stopped, taken over")
    assert second.taken and second.document["claimed_by"] == "a"
    assert not job_store.renew(first) and not job_store.release(first)  # `a` lost it: it writes nothing
    assert ref.get().get("claimed_by") == "b"
    assert job_store.release(second, note="let go")
    third = claim_or_none(ref, lease, "c")  # a released lease is taken at once
    assert third is not None and third.document["note"] == "let go"
    refused = job_store.claim(ref, lease, "d", lambda document: document["note"] != "let go")
    assert not refused.taken and refused.document["claimed_by"] == "c"
    assert ref.get().get("claimed_by") == "c"
