"""Training with the data bucket mounted (TRAINER_DATA_MOUNT): a version's images are read through the mount,
linked from the job's disk, never copied onto it.

The local stack has no FUSE: the mount is a directory mirror of the bucket's objects that this test makes, set
as the local trainer job's own variable (Terraform sets it on the Cloud Run job so); the trainer's code path,
from the manifest to the registered model, is the real one.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from common.cloud import local_runner, storage
from common.domain import layout
from tests.integration.test_training import TINY, finished, tiny  # noqa: F401 - fixture
from tests.integration.test_versions import post, ready_version


@pytest.fixture
def mounted_bucket(stack, tmp_path):
    """The trainer job with the mirror directory as its data mount; the job's settings as before afterwards."""
    mount = tmp_path / "bucket"
    before = local_runner.update_job_settings("trainer", env={"TRAINER_DATA_MOUNT": str(mount)})
    yield mount
    local_runner.write_job_settings("trainer", before)


def mirror(mount: Path, frozen: dict) -> None:
    """The version's content-store objects as a read-only mount of the bucket shows them."""
    for image in frozen["images"]:
        path = mount / image["content"]["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.blob(image["content"]["path"]).download_to_filename(str(path))


def test_a_version_trains_through_the_mount_from_links_and_registers_its_model(stack, api, tiny, mounted_bucket):
    version = ready_version(api, tiny)
    assert version["status"] == "completed", version
    frozen = json.loads(storage.blob(layout.version_snapshot(tiny, version["id"])).download_as_bytes())
    mirror(mounted_bucket, frozen)

    body = {"dataset": tiny, "version": version["id"], "epochs": 1, "request_id": f"m-{uuid.uuid4().hex[:8]}", **TINY}
    job_id = post(api, "/training", body, 202)["job_id"]
    job = finished(api, job_id)
    assert job["status"] == "completed", job
    assert job["images"] == {"train": 8, "val": 4, "test": 0}

    images = sorted((stack.state_dir / "trainer" / job_id / "data" / "images").rglob("*.*"))
    objects = {(mounted_bucket / image["content"]["path"]).resolve() for image in frozen["images"]}
    assert len(images) == 12 and len(objects) == 12
    for image in images:  # no image's bytes on the job's disk: each a link to its object in the mount
        assert image.is_symlink(), f"{image} was copied onto the job's disk"
        assert image.resolve() in objects
    model = api.get(f"/models/{job['model_id']}")
    assert (model["job_id"], model["dataset"]) == (job_id, tiny) and "mAP50" in model["metrics"]
