"""Versions and exports: the frozen image list, its summary, and what goes where in an export. Pure."""
import hashlib

import pytest

from common.domain import exports, layout, snapshot, versions
from common.domain.training_request import InvalidRequest, validate
from tests.unit.test_training_set import CLASSES, entry, sha


def frozen(all_entries, stored=None) -> dict:
    taken = snapshot.take("d", CLASSES, all_entries)
    stored = {image.sha256: 100 + n for n, image in enumerate(taken.images)} if stored is None else stored
    return versions.frozen_document(taken, "v1", stored)


def test_a_version_keeps_each_image_pinned_with_its_stored_copy():
    document = frozen([entry("a", "train", sha(1)), entry("b", "val", sha(2), boxes=()),
                       entry("c", "train", sha(3), image_issues=("image_corrupt",))])
    first = document["images"][0]
    assert (first["name"], first["path"], first["generation"]) == (
        "images/train/a.jpg", "datasets/d/images/train/a.jpg", 7)
    assert first["content"] == {"path": layout.content_object(sha(1)), "generation": 100}
    assert document["excluded"] == {"image with issues": 1}
    assert versions.summary(document) == {
        "images": 2, "labeled": 1, "background": 1, "boxes": 1, "boxes_per_class": {"person": 1, "bus": 0},
        "splits": {"train": 1, "val": 1}, "excluded": {"image with issues": 1}}


def test_content_gone_before_it_was_stored_is_counted_not_kept():
    document = frozen([entry("a", "train", sha(1)), entry("b", "val", sha(2))], stored={sha(2): 5})
    assert [i["name"] for i in document["images"]] == ["images/val/b.jpg"]
    assert document["excluded"] == {versions.GONE: 1}


def test_the_stored_snapshot_reads_the_content_store():
    stored = versions.stored_snapshot(frozen([entry("a", "train", sha(1))]))
    assert (stored.images[0].path, stored.images[0].generation) == (layout.content_object(sha(1)), 100)
    assert stored.images[0].boxes == ((0, 0.5, 0.5, 0.2, 0.2),) and stored.classes == tuple(CLASSES)


def test_a_training_request_may_name_a_version():
    assert validate({"dataset": "d", "model": "yolov8n.yaml", "version": "v3"}, "m").version == "v3"
    assert validate({"dataset": "d", "model": "yolov8n.yaml"}, "m").version is None
    for bad in ("3", "v0", 3, "v1/../x"):
        with pytest.raises(InvalidRequest, match="version"):
            validate({"dataset": "d", "model": "yolov8n.yaml", "version": bad}, "m")


def test_export_members_keep_splits_and_names_and_never_collide():
    document = frozen([entry("a", "train", sha(1)), entry("a", "val", sha(2)), entry("b", None, sha(3)),
                       entry("sub/c", "val", sha(4), boxes=())])
    plan = exports.plan(document, background=True)
    assert sorted(m.image_name for m in plan.members) == [
        "images/train/a.jpg", "images/train/b.jpg", "images/val/a.jpg", "images/val/sub/c.jpg"]
    assert plan.splits == {"train": 2, "val": 2}
    assert {m.label_name for m in plan.members} >= {"labels/val/sub/c.txt"}
    duplicate_names = exports.plan(frozen([entry("a", None, sha(1)), entry("a", "train", sha(2)),
                                           entry("v", "val", sha(3))]), True)
    assert sorted(m.image_name for m in duplicate_names.members) == sorted([
        "images/train/a.jpg", f"images/train/a-{sha(2)[:8]}.jpg", "images/val/v.jpg"])


def test_an_export_may_leave_background_images_out():
    plan = exports.plan(frozen([entry("a", "train", sha(1)), entry("b", "val", sha(2), boxes=())]), background=False)
    assert [m.image_name for m in plan.members] == ["images/train/a.jpg"]
    assert plan.excluded == {exports.BACKGROUND_LEFT_OUT: 1}


def test_without_val_images_the_export_splits_as_training_does():
    document = frozen([entry(f"i{n}", None, hashlib.sha256(bytes([n])).hexdigest()) for n in range(20)])
    plan = exports.plan(document, True)
    assert set(plan.splits) == {"train", "val"}
    assert b"val: images/val" in exports.yolo_data_yaml(plan)


def test_the_yolo_data_yaml_names_splits_and_classes():
    plan = exports.plan(frozen([entry("a", "train", sha(1)), entry("b", "val", sha(2))]), True)
    assert exports.yolo_data_yaml(plan).decode() == (
        'train: images/train\nval: images/val\nnc: 2\nnames:\n  0: "person"\n  1: "bus"\n')


def test_a_version_says_the_kernels_status_and_an_older_deployments_word_reads_alike():
    document = versions.new_document("d", 1, {"name": None, "note": None}, "me", 1.0)
    assert versions.view(document)["status"] == versions.QUEUED and versions.view(document)["phase"] is None
    completed = {**document, "status": versions.COMPLETED, "phase": versions.READY}
    legacy_ready, legacy_freezing = {**document, "status": "ready"}, {**document, "status": "freezing"}
    assert versions.state(completed) == versions.state(legacy_ready) == (versions.COMPLETED, versions.READY)
    assert versions.state(legacy_freezing) == (versions.RUNNING, versions.FREEZING)
    assert versions.is_frozen(completed) and versions.is_frozen(legacy_ready)
    assert not versions.is_frozen(legacy_freezing) and not versions.is_frozen({**document, "status": "failed"})
    assert versions.has_ended(legacy_ready) and not versions.has_ended(legacy_freezing)
    assert (versions.view(legacy_ready)["status"], versions.view(legacy_ready)["phase"]) == ("completed", "ready")
    assert set(versions.STATUSES) == {"queued", "running", "completed", "failed"}
