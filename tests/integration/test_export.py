"""Exports through the stack: a YOLO zip Ultralytics checks and trains on, a COCO zip
pycocotools reads and Ultralytics' convert_coco turns back into the same labels,
that COCO zip dropped at imports/ becoming a dataset again, a Pascal VOC zip
supervision reads back with the same boxes and names, and the counts each states."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
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
    files["images/train/z-copy.jpg"] = files["images/train/e0.jpg"]
    files["labels/train/z-copy.txt"] = files["labels/train/e0.txt"]
    files["images/train/broken.jpg"] = b"\xff\xd8 not a jpeg"
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": 7, "background": 1})
    yolo = export_of(api, dataset, {"format": "yolo"})
    coco = export_of(api, dataset, {"format": "coco", "version": yolo["version"]})
    voc = export_of(api, dataset, {"format": "voc", "version": yolo["version"]})
    root = tmp_path_factory.mktemp("exports")
    return {"dataset": dataset, "files": files, "yolo": yolo, "coco": coco, "voc": voc,
            "yolo_dir": unpacked(yolo["uri"], root / "yolo"), "coco_dir": unpacked(coco["uri"], root / "coco"),
            "voc_dir": unpacked(voc["uri"], root / "voc"), "root": root}


EXPORTED = {"e0": "train", "e1": "train", "e2": "train", "e3": "val", "e4": "val"}  # z-copy: a duplicate of e0


def test_an_export_reports_what_it_wrote_and_left_out(exported):
    yolo = exported["yolo"]
    assert yolo["status"] == "completed" and yolo["version"] == "v1"
    assert (yolo["files_total"], yolo["files_done"]) == (5, 5)
    assert yolo["excluded"] == {"image with issues": 1, "duplicate content": 1}
    assert yolo["uri"].startswith("gs://") and "/derived/exports/" in yolo["uri"] and yolo["bytes"] > 0
    assert storage.blob_at(yolo["uri"]).reload() is None and storage.blob_at(yolo["uri"]).exists()


def test_a_dataset_lists_its_exports_newest_first(api, exported):
    listed = api.get("/exports", dataset=exported["dataset"])["exports"]
    assert [e["id"] for e in listed] == [exported["voc"]["id"], exported["coco"]["id"], exported["yolo"]["id"]]
    assert listed[2] == exported["yolo"]
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


def boxes_of(label: bytes) -> list[tuple]:
    return [box.row() for box in parse_label(label, "x").boxes]


def test_every_export_states_its_boxes_per_class_in_each_split(exported):
    classes = ["person", "bus", "tie"]
    per_split = {split: Counter() for split in ("train", "val")}
    for stem, split in EXPORTED.items():
        per_split[split].update(classes[row[0]] for row in boxes_of(exported["files"][f"labels/{split}/{stem}.txt"]))
    expected = {split: {name: counted[name] for name in classes} for split, counted in per_split.items()}
    assert sum(sum(counts.values()) for counts in expected.values()) > 0
    for export_format in ("yolo", "coco", "voc"):
        assert exported[export_format]["splits"] == {"train": 3, "val": 2}
        assert exported[export_format]["boxes_per_class"] == expected, export_format


def test_supervision_reads_the_voc_export_with_the_same_boxes_and_names(exported):
    folder, classes = exported["voc_dir"], ["person", "bus", "tie"]
    read = sv.DetectionDataset.from_pascal_voc(str(folder / "JPEGImages"), str(folder / "Annotations"))
    assert sorted(Path(path).stem for path in read.image_paths) == sorted(EXPORTED)
    for image_path, image, detections in read:
        stem, (height, width) = Path(image_path).stem, image.shape[:2]
        want = sorted((classes[c], (cx - w / 2), (cy - h / 2), (cx + w / 2), (cy + h / 2)) for c, cx, cy, w, h in
                      boxes_of(exported["files"][f"labels/{EXPORTED[stem]}/{stem}.txt"]))
        got = sorted((read.classes[c], *(xyxy / [width, height, width, height]))
                     for c, xyxy in zip(detections.class_id, detections.xyxy))
        assert [g[0] for g in got] == [w[0] for w in want], stem
        if want:
            np.testing.assert_allclose([g[1:] for g in got], [w[1:] for w in want], atol=1e-4, err_msg=stem)
    lists = {split: (folder / f"ImageSets/Main/{split}.txt").read_text().split() for split in ("train", "val")}
    assert lists == {"train": ["e0", "e1", "e2"], "val": ["e3", "e4"]}
    assert (folder / "labelmap.txt").read_text().splitlines()[1:] == ["person:::", "bus:::", "tie:::"]


def test_export_errors(api, exported):
    dataset = exported["dataset"]
    post(api, f"/datasets/{dataset}/exports", {"format": "pascal"}, 400)
    post(api, f"/datasets/{dataset}/exports", ["yolo"], 400)
    post(api, f"/datasets/{dataset}/exports", {"format": "coco", "version": "v99"}, 404)
    assert api.session.get(f"{api.url}/exports/export-none", timeout=30).status_code == 404
    left_out = export_of(api, dataset, {"format": "yolo", "version": "v1", "background": False})
    assert left_out["files_total"] == 4 and left_out["excluded"]["background image (left out by request)"] == 1
