"""Versions on the one request path and a crash-safe freeze: a version whose publish fails at creation stays
recorded (queued) and is frozen once when the request is retried with its request_id, or by the watch when
nobody retries; a freeze killed mid-copy and run again counts its storage as an undisturbed freeze does. The
API and the freeze run in this process (their publishes and copies can be made to fail); everything else is
the local stack."""
from __future__ import annotations

import hashlib
import threading
import time
import uuid

import pytest
from google.api_core.exceptions import ServiceUnavailable

from common.cloud import content_store, storage, version_store
from common.domain import layout
from common.services import versions, watch_versions
from infra.local.client import wait_for
from infra.local.sample import generated_dataset
from tests.integration.helpers import drop, stats_when
from tests.integration.test_job_kernel import LATER
from tests.integration.test_job_requests import APP, FailsOnce


def images_of(bucket, api, dataset: str) -> dict[str, bytes]:
    """A small dataset of content no other test stored, indexed; its images."""
    files = generated_dataset(2, 1, seed=uuid.uuid4().int % 10 ** 6)
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": 3})
    return {name: data for name, data in files.items() if name.startswith("images/")}


def frozen(api, dataset: str, version: str) -> dict:
    return wait_for(lambda: api.get(f"/datasets/{dataset}/versions/{version}"),
                    lambda v: v["status"] in ("completed", "failed"), 60, f"version {version} frozen")


def ask(stack, dataset: str, body: dict, expect: int) -> dict:
    answer = APP.test_client().post(f"/datasets/{dataset}/versions", json=body,
                                    headers={"Authorization": f"Bearer {stack.token}"})
    assert answer.status_code == expect, answer.get_json()
    return answer.get_json()


def recorded(dataset: str) -> list[dict]:
    return [snapshot.to_dict() for snapshot in version_store.versions_of(dataset).get()]


def test_a_version_whose_publish_failed_is_frozen_once_when_retried(stack, api, bucket, dataset, monkeypatch):
    images_of(bucket, api, dataset)
    wire = FailsOnce(monkeypatch)
    ask(stack, dataset, {"name": "nightly", "request_id": "nightly-1"}, 503)
    [queued] = recorded(dataset)  # kept, not forgotten: a retry or the watch starts it
    assert (queued["status"], queued["name"]) == ("queued", "nightly")
    answer = ask(stack, dataset, {"name": "nightly", "request_id": "nightly-1"}, 202)
    assert (answer["version"], frozen(api, dataset, answer["version"])["status"]) == (queued["id"], "completed")
    assert len(wire.calls) == 2 and wire.calls[0] == wire.calls[1]
    assert [version["id"] for version in recorded(dataset)] == [queued["id"]]


def test_a_version_whose_publish_failed_and_was_never_retried_is_started_by_the_watch(stack, api, bucket, dataset,
                                                                                     monkeypatch):
    images_of(bucket, api, dataset)
    FailsOnce(monkeypatch)
    ask(stack, dataset, {}, 503)
    [queued] = recorded(dataset)
    assert queued["status"] == "queued"
    assert watch_versions.resend_waiting(time.time() + LATER)[f"{dataset}:{queued['id']}"] == "sent again"
    assert frozen(api, dataset, queued["id"])["status"] == "completed"


class CopiesThenDies:
    """content_store's copy that copies `copies` objects, then fails every later copy (a freeze killed)."""

    def __init__(self, monkeypatch, copies: int):
        self.real, self.left, self.lock = content_store._rewrite, copies, threading.Lock()
        monkeypatch.setattr(content_store, "_rewrite", self.rewrite)

    def rewrite(self, target, source) -> None:
        with self.lock:
            self.left -= 1
            dead = self.left < 0
        if dead:
            raise ServiceUnavailable("the freeze is killed mid-copy")
        self.real(target, source)


def test_a_freeze_killed_mid_copy_and_run_again_counts_storage_as_an_undisturbed_one(api, bucket, dataset,
                                                                                     monkeypatch):
    images = images_of(bucket, api, dataset)
    version = versions.request(dataset, {"name": None, "note": None}, "test")["id"]  # frozen here, not published
    CopiesThenDies(monkeypatch, copies=2)
    with pytest.raises(ServiceUnavailable):
        versions.freeze(dataset, version)
    copied = [storage.bucket().get_blob(layout.content_object(hashlib.sha256(data).hexdigest()))
              for data in images.values()]
    assert len([blob for blob in copied if blob is not None]) == 2  # the crash came after two copies
    monkeypatch.undo()

    again = versions.freeze(dataset, version)
    total = sum(len(data) for data in images.values())
    assert again["status"] == "completed"  # as a first freeze of new content: every byte referenced is new
    assert again["storage"] == {"referenced_bytes": total, "new_bytes": total}
    second = versions.freeze(dataset, versions.request(dataset, {"name": None, "note": None}, "test")["id"])
    assert second["storage"] == {"referenced_bytes": total, "new_bytes": 0}
