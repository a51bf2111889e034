"""Materializing with the data bucket mounted: content-store images linked, never copied; others not linked."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
import yaml
from PIL import Image

from common.domain import layout
from jobs.trainer import main as trainer
from jobs.trainer.materialize import MaterializeError, linkable, materialize


def picture(seed: int, format: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (seed, 0, 0)).save(out, format)
    return out.getvalue()


def content(data: bytes) -> dict:
    sha256 = hashlib.sha256(data).hexdigest()
    return {"path": layout.content_object(sha256), "generation": 7, "sha256": sha256}


def manifest(*images: dict) -> dict:
    return {"bucket": "data", "classes": ["a", "b"], "images": list(images)}


def image(data: bytes, split: str, boxes=((0, 0.5, 0.5, 0.2, 0.2),)) -> dict:
    return {**content(data), "split": split, "width": 8, "height": 8, "boxes": [list(row) for row in boxes]}


def mirror(mount: Path, *images: tuple[dict, bytes]) -> None:
    """The bucket's objects as the mount shows them."""
    for entry, data in images:
        path = mount / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_content_store_images_are_links_to_the_mount_and_labels_and_data_yaml_are_written(tmp_path):
    mount, root = tmp_path / "mount", tmp_path / "job"
    pixels = {"train": picture(1, "JPEG"), "val": picture(2)}
    train, val = image(pixels["train"], "train"), image(pixels["val"], "val", boxes=((1, 0.1, 0.2, 0.3, 0.4),))
    mirror(mount, (train, pixels["train"]), (val, pixels["val"]))
    done = materialize(manifest(train, val), root, workers=2, mount=mount)
    assert (done.counts, done.skipped, done.downloaded_bytes, done.linked) == (
        {"train": 1, "val": 1, "test": 0}, [], 0, 2)
    for entry, extension in ((train, ".jpg"), (val, ".png")):  # the format's: Ultralytics picks files by it
        linked = root / "images" / entry["split"] / f"{entry['sha256']}{extension}"
        assert linked.is_symlink() and linked.resolve() == (mount / entry["path"]).resolve()
        assert linked.read_bytes() == pixels[entry["split"]]
    assert (root / "labels" / "val" / f"{val['sha256']}.txt").read_text().startswith("1 0.1")
    assert sorted(path.name for path in (root / "images").rglob("*")) == sorted([  # no temporary link left
        "train", "val", *(f"{entry['sha256']}{extension}" for entry, extension in ((train, ".jpg"), (val, ".png")))])
    assert yaml.safe_load(done.data_yaml.read_text())["train"] == "images/train"


def test_a_resumed_task_links_again_in_place(tmp_path):
    mount, root = tmp_path / "mount", tmp_path / "job"
    pixels = [picture(1), picture(2)]
    entries = [image(pixels[0], "train"), image(pixels[1], "val")]
    mirror(mount, *zip(entries, pixels))
    materialize(manifest(*entries), root, workers=1, mount=mount)
    again = materialize(manifest(*entries), root, workers=1, mount=mount)
    files = list((root / "images").rglob("*.*"))
    assert again.linked == 2 and len(files) == 2 and all(path.is_symlink() for path in files)


def test_an_image_gone_from_the_content_store_is_skipped_like_a_gone_object(tmp_path):
    mount, root = tmp_path / "mount", tmp_path / "job"
    pixels = [picture(1), picture(2), picture(3)]
    kept, gone, val = image(pixels[0], "train"), image(pixels[1], "train"), image(pixels[2], "val")
    mirror(mount, (kept, pixels[0]), (val, pixels[2]))
    done = materialize(manifest(kept, gone, val), root, workers=1, mount=mount)
    assert done.skipped == [gone["path"]] and done.counts["train"] == 1 and done.linked == 2


def test_content_that_is_no_image_format_is_refused_not_linked(tmp_path):
    mount, root = tmp_path / "mount", tmp_path / "job"
    entry = image(b"not an image", "train")
    mirror(mount, (entry, b"not an image"))
    with pytest.raises(MaterializeError, match="not an image format"):
        materialize(manifest(entry, image(picture(2), "val")), root, workers=1, mount=mount)


def test_nothing_left_to_train_on_is_refused(tmp_path):
    with pytest.raises(MaterializeError, match="no train or val images"):
        materialize(manifest(image(b"x", "train"), image(b"y", "val")), tmp_path / "job", 1, tmp_path / "empty")


def test_only_an_objects_own_content_store_copy_is_linkable():
    data = content(b"pixels")
    assert linkable(data)
    # a dataset object may be overwritten after the manifest pinned it: the mount would read other bytes
    assert not linkable({**data, "path": "datasets/d/images/train/a.jpg"})
    assert not linkable({**data, "path": layout.content_object(hashlib.sha256(b"other").hexdigest())})
    assert not linkable({**data, "path": "derived/content/../../datasets/d/a.jpg"})
    assert not linkable({"path": layout.content_object("../x" * 16), "sha256": "../x" * 16})


def test_the_mount_comes_from_the_environment(tmp_path):
    env = {"JOB_ID": "j", "MANIFEST_URI": "gs://b/m.json", "GOOGLE_CLOUD_PROJECT": "p"}
    assert trainer.Config.from_env(env).data_mount is None
    assert trainer.Config.from_env({**env, "TRAINER_DATA_MOUNT": ""}).data_mount is None
    assert trainer.Config.from_env({**env, "TRAINER_DATA_MOUNT": "/mnt/data"}).data_mount == Path("/mnt/data")
