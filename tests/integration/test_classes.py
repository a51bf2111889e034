"""Class changes through the API: new names, remaps that rewrite label files
(merging, deleting, reordering), and revalidation as a job in chunks."""
from __future__ import annotations

import uuid

import functions_framework
import pytest

from common.cloud import guarded_objects, storage
from common.domain import class_changes
from common.services import dataset_jobs
from infra.local.client import wait_for
from infra.local.sample import synthetic_image
from tests.integration.helpers import dataset_when, drop, stats_when

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
NAMES = ["person", "bus", "tie", "car"]


@pytest.fixture(scope="module")
def client(stack):
    return APP.test_client()


@pytest.fixture
def auth(stack) -> dict:
    return {"Authorization": f"Bearer {stack.token}"}


def yaml_of(names: list[str]) -> bytes:
    return class_changes.with_names(b"train: images/train\nnc: 0\n", names)


@pytest.fixture
def labelled(bucket, api) -> str:
    """45 labelled images (three chunks of 20 at the tests' chunk size): class i % 4 in image i,
    plus one label line ingest cannot read, which a remap must keep."""
    dataset = f"cls-{uuid.uuid4().hex[:8]}"
    files = {"data.yaml": yaml_of(NAMES)}
    for i in range(45):
        files[f"images/train/i{i:02d}.jpg"] = synthetic_image(100 + i, size=(64, 48))[0]
        files[f"labels/train/i{i:02d}.txt"] = f"{i % 4} 0.5 0.5 0.2 0.2\n".encode()
    files["labels/train/i00.txt"] = b"0 0.5 0.5 0.2 0.2\nnot a row\n"
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": 45, "boxes": 45})
    return dataset


def job_when_ended(client, auth, dataset: str, job_id: str) -> dict:
    return wait_for(lambda: client.get(f"/datasets/{dataset}/jobs/{job_id}", headers=auth).get_json(),
                    lambda job: job["status"] in ("completed", "failed"), 90, f"job {job_id}")


def test_new_names_are_written_to_data_yaml_with_a_precondition(client, auth, api, labelled):
    current = client.get(f"/datasets/{labelled}/classes", headers=auth).get_json()
    assert current["names"] == NAMES and current["generation"] > 0
    renamed = ["human", "bus", "tie", "car"]
    answer = client.put(f"/datasets/{labelled}/classes", json={"names": renamed},
                        headers={**auth, "If-Match": str(current["generation"])})
    assert answer.status_code == 200 and answer.get_json()["generation"] > current["generation"]
    stale = client.put(f"/datasets/{labelled}/classes", json={"names": NAMES},
                       headers={**auth, "If-Match": str(current["generation"])})
    assert stale.status_code == 412 and stale.get_json()["names"] == renamed
    stats = dataset_when(api, labelled, lambda view: view["classes"] == renamed, "the new names")["stats"]
    assert stats["boxes_per_class"] == {"human": 12, "bus": 11, "tie": 11, "car": 11}
    assert b"train: images/train" in storage.bucket().blob(current["path"]).download_as_bytes()


def test_a_remap_rewrites_labels_then_data_yaml_and_the_counts_follow(client, auth, api, bucket, labelled):
    answer = client.post(f"/datasets/{labelled}/classes/remap", headers=auth,
                         json={"map": {"car": "bus", "tie": None}})
    assert answer.status_code == 202 and answer.get_json()["names_after"] == ["person", "bus"]
    job = job_when_ended(client, auth, labelled, answer.get_json()["job_id"])
    assert (job["status"], job["files_total"], job["files_done"], job["chunks_total"]) == ("completed", 45, 45, 3)
    assert job["rewritten"] == 22  # the tie and car files; person and bus keep their ids
    stats = dataset_when(api, labelled, lambda view: view["classes"] == ["person", "bus"],
                         "the remapped names")["stats"]
    assert stats["boxes_per_class"] == {"person": 12, "bus": 22} and stats["boxes"] == 34
    assert bucket.blob(f"datasets/{labelled}/labels/train/i00.txt").download_as_bytes() == \
        b"0 0.5 0.5 0.2 0.2\nnot a row\n"


def test_a_label_written_during_a_remap_is_remapped_from_its_new_content(labelled, bucket, monkeypatch):
    """Someone writes the file between the remap's read and its write: the precondition refuses the
    remap's write, and the remap reads the new content and remaps that."""
    path = f"datasets/{labelled}/labels/train/i03.txt"
    read = guarded_objects.read
    raced = []

    def read_then_someone_writes(name, *args, **kwargs):
        held = read(name, *args, **kwargs)
        if not raced:
            raced.append(True)
            bucket.blob(name).upload_from_string(b"3 0.1 0.1 0.1 0.1\n2 0.9 0.9 0.1 0.1\n")
        return held

    monkeypatch.setattr(guarded_objects, "read", read_then_someone_writes)
    assert dataset_jobs._rewrite(path, {0: 0, 1: 1, 2: None, 3: 1}, "remap-raced") is True
    assert bucket.blob(path).download_as_bytes() == b"1 0.1 0.1 0.1 0.1\n"


def test_a_bad_remap_says_why_and_starts_nothing(client, auth, labelled):
    answer = client.post(f"/datasets/{labelled}/classes/remap", headers=auth, json={"map": {"giraffe": "x"}})
    assert answer.status_code == 400 and "giraffe" in answer.get_json()["error"]["message"]
    jobs = client.get(f"/datasets/{labelled}/jobs", headers=auth).get_json()["jobs"]
    assert {job["kind"] for job in jobs} == {"revalidate"}


def test_a_dropped_data_yaml_revalidates_in_chunks_with_progress(client, auth, api, bucket, labelled):
    bucket.blob(f"datasets/{labelled}/data.yaml").upload_from_string(yaml_of(["person", "bus"]))
    stats = dataset_when(api, labelled, lambda view: view["classes"] == ["person", "bus"], "the dropped names")["stats"]
    assert stats["boxes_per_class"] == {"person": 12, "bus": 11} and stats["boxes"] == 23
    jobs = client.get(f"/datasets/{labelled}/jobs", headers=auth).get_json()["jobs"]
    newest = jobs[0]
    assert (newest["kind"], newest["status"], newest["files_total"], newest["files_done"], newest["chunks_done"]) \
        == ("revalidate", "completed", 45, 45, 3)
