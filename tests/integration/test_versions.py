"""Versions through the stack: frozen, immutable after an overwrite and a delete, listed, trained on."""
from __future__ import annotations

import hashlib
import json
import uuid

from google.cloud.firestore import DELETE_FIELD

from common.cloud import storage, version_store
from common.domain import layout
from infra.local.client import ApiClient, wait_for
from infra.local.sample import data_yaml, synthetic_image
from tests.integration.helpers import drop, stats_when

DEADLINE = 60


def post(api: ApiClient, path: str, body, expect: int) -> dict:
    answer = api.session.post(f"{api.url}{path}", json=body, timeout=30)
    assert answer.status_code == expect, answer.text
    return answer.json()


def ready_version(api: ApiClient, dataset: str, body=None) -> dict:
    version = post(api, f"/datasets/{dataset}/versions", body or {}, 202)["version"]
    return wait_for(lambda: api.get(f"/datasets/{dataset}/versions/{version}"),
                    lambda v: v["status"] in ("completed", "failed"), DEADLINE, f"version {version} frozen")


def small_dataset(api: ApiClient, bucket, dataset: str) -> dict[str, bytes]:
    files = {"data.yaml": data_yaml().encode()}
    for n, split in enumerate(("train", "train", "val")):
        image, label = synthetic_image(100 + n, size=(96, 64))
        files[f"images/{split}/i{n}.jpg"], files[f"labels/{split}/i{n}.txt"] = image, label.encode()
    files["images/train/broken.jpg"] = b"not an image"
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": 4, "labeled": 3})
    return files


def test_a_version_survives_an_overwrite_and_a_delete(api, bucket, dataset):
    files = small_dataset(api, bucket, dataset)
    version = ready_version(api, dataset, {"name": "first", "note": "before the edits"})
    assert (version["status"], version["phase"], version["name"], version["note"]) == (
        "completed", "ready", "first", "before the edits")
    assert version["stats"]["images"] == 3 and version["stats"]["splits"] == {"train": 2, "val": 1}
    assert version["stats"]["excluded"] == {"image with issues": 1}
    assert version["stats"]["boxes_per_class"] == {name: n for name, n in _class_counts(files).items()}
    assert version["storage"]["new_bytes"] == version["storage"]["referenced_bytes"] > 0

    drop(bucket, dataset, {"images/train/i0.jpg": synthetic_image(999, size=(96, 64))[0]})
    bucket.blob(f"datasets/{dataset}/images/val/i2.jpg").delete()
    stats_when(api, dataset, {"images": 3})

    assert api.get(f"/datasets/{dataset}/versions/{version['id']}") == version
    frozen = json.loads(storage.blob(layout.version_snapshot(dataset, version["id"])).download_as_bytes())
    for image in frozen["images"]:
        kept = storage.blob(image["content"]["path"], image["content"]["generation"]).download_as_bytes()
        assert hashlib.sha256(kept).hexdigest() == image["sha256"] == hashlib.sha256(files[image["name"]]).hexdigest()

    again = ready_version(api, dataset)
    assert again["id"] != version["id"] and again["stats"]["images"] == 2
    assert again["storage"]["new_bytes"] < again["storage"]["referenced_bytes"]  # i1 is stored already
    listed = api.get(f"/datasets/{dataset}/versions")["versions"]
    assert [v["id"] for v in listed] == [again["id"], version["id"]]


def _class_counts(files: dict[str, bytes]) -> dict[str, int]:
    counts = dict.fromkeys(["person", "bus", "tie"], 0)
    for name, data in files.items():
        if name.startswith("labels/"):
            for line in data.decode().splitlines():
                counts[["person", "bus", "tie"][int(line.split()[0])]] += 1
    return counts


def test_a_job_trains_on_the_version_it_names_even_one_an_older_deployment_stored_as_ready(api, bucket, dataset):
    small_dataset(api, bucket, dataset)
    version = ready_version(api, dataset)
    # as a deployment before the job kernel's words stored it: status "ready", no phase
    version_store.versions_of(dataset).document(version["id"]).update({"status": "ready", "phase": DELETE_FIELD})
    shown = api.get(f"/datasets/{dataset}/versions/{version['id']}")
    assert (shown["status"], shown["phase"]) == ("completed", "ready")
    request_id = f"v-{uuid.uuid4().hex[:8]}"
    job_id = post(api, "/training", {"dataset": dataset, "model": "yolov8n.yaml", "version": version["id"],
                                     "epochs": 1, "imgsz": 32, "request_id": request_id}, 202)["job_id"]
    job = wait_for(lambda: api.get(f"/training/{job_id}"), lambda j: j.get("manifest") or j["status"] == "failed",
                   DEADLINE, "the job's manifest")
    api.session.post(f"{api.url}/training/{job_id}/cancel", timeout=30)  # the data is what is checked here
    assert job["version"] == version["id"] and job["request"]["version"] == version["id"]
    manifest = json.loads(storage.blob_at(job["manifest"]).download_as_bytes())
    assert sorted(i["path"] for i in manifest["images"]) == sorted(
        layout.content_object(i["sha256"]) for i in manifest["images"])
    assert len(manifest["images"]) == 3


def test_version_errors(api, bucket, dataset):
    small_dataset(api, bucket, dataset)
    post(api, f"/datasets/{dataset}/versions", {"name": 5}, 400)
    post(api, f"/datasets/{dataset}/versions", ["x"], 400)
    assert api.session.get(f"{api.url}/datasets/{dataset}/versions/v999", timeout=30).status_code == 404
    assert api.session.get(f"{api.url}/datasets/{dataset}/versions/nope", timeout=30).status_code == 404
    job_id = post(api, "/training", {"dataset": dataset, "model": "yolov8n.yaml", "version": "v999"}, 202)["job_id"]
    job = wait_for(lambda: api.get(f"/training/{job_id}"), lambda j: j["status"] == "failed", DEADLINE, "failed")
    assert "no version 'v999'" in job["error"]


def test_a_version_request_retried_with_its_request_id_gets_the_first_version(api, bucket, dataset):
    """A client that lost the answer asks again with the same request_id: the same version, not a second one;
    another request_id (or none) makes a new one."""
    small_dataset(api, bucket, dataset)
    first = post(api, f"/datasets/{dataset}/versions", {"name": "nightly", "request_id": "nightly-42"}, 202)
    again = post(api, f"/datasets/{dataset}/versions", {"name": "nightly", "request_id": "nightly-42"}, 202)
    assert again["version"] == first["version"]
    other = post(api, f"/datasets/{dataset}/versions", {"request_id": "nightly-43"}, 202)
    assert other["version"] != first["version"]
    listed = api.all_pages(f"/datasets/{dataset}/versions", "versions")
    assert sorted(version["id"] for version in listed) == sorted({first["version"], other["version"]})
    post(api, f"/datasets/{dataset}/versions", {"request_id": "a/b"}, 400)


def test_the_command_line_freezes_a_version_with_a_request_id(stack, api, bucket, dataset):
    from click.testing import CliRunner
    from yolodrop_cli.commands import cli
    small_dataset(api, bucket, dataset)
    env = {"YOLODROP_API_URL": api.url, "YOLODROP_API_KEY": stack.token}
    result = CliRunner().invoke(cli, ["version", "create", dataset, "--name", "cli"], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and ": completed" in result.output, result.output
    [made] = api.all_pages(f"/datasets/{dataset}/versions", "versions")
    assert made["name"] == "cli" and made["status"] == "completed"
