"""Exports through the stack: a YOLO zip Ultralytics checks and trains on, a COCO zip
pycocotools reads and Ultralytics' convert_coco turns back into the same labels,
and that COCO zip dropped at imports/ becoming a dataset again."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from common.cloud import storage
from common.domain.labels import parse_label
from infra.local.client import ApiClient, wait_for
from infra.local.sample import data_yaml, synthetic_image
from tests.integration.helpers import drop, stats_when
from tests.integration.test_versions import DEADLINE, post

# Run in a subprocess: importing Ultralytics registers Pillow plugins in the process.
ULTRALYTICS = """
import sys
from ultralytics import YOLO
from ultralytics.data.converter import convert_coco
from ultralytics.data.utils import check_det_dataset
yolo, coco, out = sys.argv[1:4]
data = check_det_dataset(yolo + "/data.yaml")
print("CHECKED", data["nc"], data["names"])
convert_coco(labels_dir=coco + "/annotations", save_dir=out, use_segments=False, cls91to80=False)
YOLO("yolov8n.yaml").train(data=yolo + "/data.yaml", epochs=1, imgsz=64, batch=3, workers=0, plots=False,
                           val=False, project=out + "/runs", name="t", device="cpu", verbose=False)
print("TRAINED")
"""


def export_of(api: ApiClient, dataset: str, body: dict) -> dict:
    export_id = post(api, f"/datasets/{dataset}/exports", body, 202)["export_id"]
    return wait_for(lambda: api.get(f"/exports/{export_id}"), lambda e: e["status"] in ("completed", "failed"),
                    DEADLINE, f"export {export_id}")


def unpacked(uri: str, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(storage.blob_at(uri).download_as_bytes())) as archive:
        archive.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def exported(stack, api, bucket, tmp_path_factory):
    """A dataset (4 labelled, 1 background, 1 broken, 1 duplicate), exported as YOLO, then its version as COCO."""
    dataset = f"export-{uuid.uuid4().hex[:8]}"
    files = {"data.yaml": data_yaml().encode()}
    for n, split in enumerate(("train", "train", "train", "val", "val")):
        image, label = synthetic_image(200 + n, size=(120 + 8 * n, 80))
        files[f"images/{split}/e{n}.jpg"] = image
        files[f"labels/{split}/e{n}.txt"] = label.encode() if n != 4 else b""
    files["images/train/z-copy.jpg"], files["labels/train/z-copy.txt"] = files["images/train/e0.jpg"], files["labels/train/e0.txt"]
    files["images/train/broken.jpg"] = b"\xff\xd8 not a jpeg"
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": 7, "background": 1})
    yolo = export_of(api, dataset, {"format": "yolo"})
    coco = export_of(api, dataset, {"format": "coco", "version": yolo["version"]})
    root = tmp_path_factory.mktemp("exports")
    return {"dataset": dataset, "files": files, "yolo": yolo, "coco": coco,
            "yolo_dir": unpacked(yolo["uri"], root / "yolo"), "coco_dir": unpacked(coco["uri"], root / "coco"),
            "root": root}


def test_an_export_reports_what_it_wrote_and_left_out(exported):
    yolo = exported["yolo"]
    assert yolo["status"] == "completed" and yolo["version"] == "v1"
    assert (yolo["files_total"], yolo["files_done"]) == (5, 5)
    assert yolo["excluded"] == {"image with issues": 1, "duplicate content": 1}
    assert yolo["uri"].startswith("gs://") and "/derived/exports/" in yolo["uri"] and yolo["bytes"] > 0
    assert storage.blob_at(yolo["uri"]).reload() is None and storage.blob_at(yolo["uri"]).exists()


def test_a_dataset_lists_its_exports_newest_first(api, exported):
    listed = api.get("/exports", dataset=exported["dataset"])["exports"]
    assert [e["id"] for e in listed] == [exported["coco"]["id"], exported["yolo"]["id"]]
    assert listed[1] == exported["yolo"]
    assert api.get("/exports", dataset=exported["dataset"], page_size=1)["next_page_token"]


def test_the_yolo_export_holds_the_original_bytes_and_labels(exported):
    folder, files = exported["yolo_dir"], exported["files"]
    for n, split in enumerate(("train", "train", "train", "val", "val")):
        assert (folder / f"images/{split}/e{n}.jpg").read_bytes() == files[f"images/{split}/e{n}.jpg"]
        assert parse_label((folder / f"labels/{split}/e{n}.txt").read_bytes(), "x").boxes == \
            parse_label(files[f"labels/{split}/e{n}.txt"], "x").boxes
    assert not (folder / "images/train/z-copy.jpg").exists()  # the second copy of e0


def test_pycocotools_loads_the_coco_export(exported):
    folder = exported["coco_dir"]
    loaded = {split: COCO(str(folder / f"annotations/instances_{split}.json")) for split in ("train", "val")}
    assert {s: len(c.getImgIds()) for s, c in loaded.items()} == {"train": 3, "val": 2}
    annotation_ids = [a for c in loaded.values() for a in c.getAnnIds()]
    assert len(annotation_ids) == len(set(annotation_ids))
    for split, found in loaded.items():
        assert [c["id"] for c in found.loadCats(found.getCatIds())] == [1, 2, 3]
        for image in found.loadImgs(found.getImgIds()):
            assert (folder / "images" / split / image["file_name"]).is_file()


def test_ultralytics_checks_trains_on_and_converts_back_the_exports(exported):
    out = exported["root"] / "converted"
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(exported["root"] / "cfg")}
    done = subprocess.run([sys.executable, "-c", ULTRALYTICS, str(exported["yolo_dir"]), str(exported["coco_dir"]),
                           str(out)], capture_output=True, text=True, timeout=300, env=env,
                          cwd=exported["root"])
    assert done.returncode == 0 and "TRAINED" in done.stdout, done.stderr[-3000:]
    assert "CHECKED 3" in done.stdout
    compared = 0
    for converted in (out / "labels").rglob("*.txt"):
        split = converted.parent.name
        original = parse_label((exported["yolo_dir"] / f"labels/{split}/{converted.name}").read_bytes(), "x").boxes
        back = parse_label(converted.read_bytes(), "x").boxes
        assert len(back) == len(original)
        for got, want in zip(sorted(b.row() for b in back), sorted(b.row() for b in original)):
            assert got[0] == want[0] and got[1:] == pytest.approx(want[1:], abs=1e-4)
        compared += 1
    assert compared == 4  # every labelled image; convert_coco writes no file for a background image


def test_the_coco_export_imports_back_into_a_yolo_dataset(exported, api, bucket, dataset):
    archive = storage.blob_at(exported["coco"]["uri"]).download_as_bytes()
    bucket.blob(f"imports/{dataset}.zip").upload_from_string(archive)
    stats = stats_when(api, dataset, {"images": 5, "labeled": 4, "background": 1, "issues": 0})
    assert stats["splits"] == {"train": 3, "val": 2, "test": 0}
    assert api.get(f"/datasets/{dataset}")["classes"] == ["person", "bus", "tie"]
    for n, split in enumerate(("train", "train", "train", "val")):
        image = api.get(f"/datasets/{dataset}/images/labels/{split}/e{n}")
        original = parse_label(exported["files"][f"labels/{split}/e{n}.txt"], "x").boxes
        got = sorted((b["class_id"], b["cx"], b["cy"], b["w"], b["h"]) for b in image["labels"])
        for row, want in zip(got, sorted(b.row() for b in original)):
            assert row[0] == want[0] and row[1:] == pytest.approx(want[1:], abs=1e-4)


def test_export_errors(api, exported):
    dataset = exported["dataset"]
    post(api, f"/datasets/{dataset}/exports", {"format": "voc"}, 400)
    post(api, f"/datasets/{dataset}/exports", ["yolo"], 400)
    post(api, f"/datasets/{dataset}/exports", {"format": "coco", "version": "v99"}, 404)
    assert api.session.get(f"{api.url}/exports/export-none", timeout=30).status_code == 404
    left_out = export_of(api, dataset, {"format": "yolo", "version": "v1", "background": False})
    assert left_out["files_total"] == 4 and left_out["excluded"]["background image (left out by request)"] == 1
