"""Every layout another tool exports, brought in every way (the `yolodrop push` of its folder, its zip dropped at
imports/<d>.zip, its files dropped into datasets/<d>/ for the YOLO family, POST imports for three), gives the
canonical dataset's index, and every summary names the layout; exported again as YOLO, COCO and Pascal VOC, the
other tools' own readers (supervision, pycocotools, Ultralytics' check_det_dataset) read the canonical dataset
back; supervision's writers make fixtures we bring in too.

All datasets are brought in at once by one module fixture (uploads in parallel, pushes one after another) and
polled together, each until it is exact or quiet, so a layout read wrong costs one wait, not one each."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from common.cloud import storage
from infra.local.client import wait_for
from tests.formats import layouts
from tests.formats.layouts import CLASSES, LAYOUTS, PICTURES, Layout
from tests.integration.test_export import export_of, unpacked
from tests.integration.test_versions import post
from yolodrop_cli.commands import cli

TOLERANCE = 1e-4
SETTLE_SECONDS = 75  # every dataset of the module is brought in at once and must be exact by then
QUIET_SECONDS = 20  # an index of every image unchanged this long is what the layout gave

SUPERVISION_LAYOUTS = (
    Layout("supervision-yolo", None, ("Ultralytics",), True, True),
    Layout("supervision-coco", None, ("COCO",), True, False),
    Layout("supervision-voc", None, ("VOC",), False, False, keeps_class_order=False),
)
ALL_LAYOUTS = {layout.key: layout for layout in (*LAYOUTS, *SUPERVISION_LAYOUTS)}
WAYS = ("push", "import", "drop", "import-job")
# POST /datasets/{d}/imports runs the import job (a process per task locally): a COCO, a VOC and a YOLO export
IMPORT_JOB_LAYOUTS = ("roboflow-coco", "cvat-voc", "label-studio-yolo")
CASES = [(key, way) for key, layout in ALL_LAYOUTS.items() for way in WAYS
         if (way != "drop" or layout.yolo_family) and (way != "import-job" or key in IMPORT_JOB_LAYOUTS)]

# (layout, way) pairs whose support has not landed yet: strict, so the suite says when one starts to pass.
NOT_YET: dict[tuple[str, str], str] = {}


def case_params():
    return [pytest.param(key, way, id=f"{key}-{way}",
                         marks=[pytest.mark.xfail(strict=True, reason=NOT_YET[key, way])] if (key, way) in NOT_YET
                         else []) for key, way in CASES]


# --- bringing the layouts in -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fixtures_written(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """{layout key: files}: the tools' layouts, and the canonical dataset written by supervision's writers."""
    written = {key: layout.write() for key, layout in ALL_LAYOUTS.items() if layout.write}
    written.update(layouts.written_by_supervision(tmp_path_factory.mktemp("supervision")))
    return written


@pytest.fixture(scope="module")
def cli_runner(stack, tmp_path_factory):
    env = stack.env()
    config_home = tmp_path_factory.mktemp("config")

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False,
                                  env={"YOLODROP_API_URL": env["API_URL"], "YOLODROP_API_KEY": stack.token,
                                       "XDG_CONFIG_HOME": str(config_home)})
    return run


@pytest.fixture(scope="module")
def brought_in(api, bucket, cli_runner, fixtures_written, tmp_path_factory) -> dict:
    """{(layout, way): {"dataset", "report"}}, every case started; "deadline" is when all must be exact."""
    run_id = uuid.uuid4().hex[:6]
    cases = {(key, way): {"dataset": f"rt-{run_id}-{key}-{way}"} for key, way in CASES}
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: bucket.blob(item[0]).upload_from_string(item[1]),
                      _uploads(cases, fixtures_written).items()))
    for (key, way), case in cases.items():
        if way == "import-job":
            post(api, "/datasets", {"id": case["dataset"]}, 201)
            case["import_id"] = post(api, f"/datasets/{case['dataset']}/imports", {
                "url": f"gs://{bucket.name}/imports/{case['dataset']}/{key}.zip", "tasks": 1}, 202)["import_id"]
        if way == "push":
            case["report"] = _push(cli_runner, _written_out(fixtures_written[key], tmp_path_factory.mktemp(key)),
                                   case["dataset"])
    return {"cases": cases, "deadline": time.monotonic() + SETTLE_SECONDS}


def _uploads(cases: dict, fixtures_written: dict) -> dict[str, bytes]:
    """{object name: bytes} of the zips to import and the files to drop."""
    uploads = {}
    for (key, way), case in cases.items():
        files, folder = fixtures_written[key], ALL_LAYOUTS[key].zip_folder
        if way == "import":
            uploads[f"imports/{case['dataset']}.zip"] = layouts.zipped(files, folder)
        elif way == "import-job":  # a folder under imports/<d>/ is no drop: the import job reads it
            uploads[f"imports/{case['dataset']}/{key}.zip"] = layouts.zipped(files, folder)
        elif way == "drop":
            uploads.update({f"datasets/{case['dataset']}/{name}": data for name, data in files.items()})
    return uploads


def _written_out(files: dict[str, bytes], folder: Path) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _push(run, folder: Path, dataset: str) -> dict:
    """`yolodrop push --no-wait`: the index is polled for by the test, as for the other ways."""
    result = run("push", folder, dataset, "--json", "--no-wait")
    if result.exit_code != 0:
        return {"exit_code": result.exit_code, "error": result.output + (result.stderr or "")}
    return {"exit_code": 0, **json.loads(result.stdout)}


# --- what the index must say -----------------------------------------------------------------------------------

def canonical() -> dict:
    """The canonical dataset as the index shows it: classes, and per image size its split and boxes."""
    return {"classes": list(CLASSES),
            "images": {(p.width, p.height): {"split": p.split, "boxes": sorted(
                (b.name, *b.normalized(p.width, p.height)) for b in p.boxes)} for p in PICTURES}}


def index_of(api, dataset: str) -> dict | None:
    view = api.get_or_none(f"/datasets/{dataset}")
    if view is None or view.get("pending_jobs", 0):
        return None
    images = api.all_pages(f"/datasets/{dataset}/images", "images", page_size=100)
    return {"classes": view["classes"], "count": len(images),
            "images": {(i["width"], i["height"]): {"split": i["split"], "boxes": sorted(
                (box["class_name"], box["cx"], box["cy"], box["w"], box["h"]) for box in i["labels"])}
                for i in images}}


def differences(observed: dict | None, expected: dict, layout: Layout) -> list[str]:
    """What keeps `observed` from being the canonical dataset, in words; [] when it is."""
    if observed is None:
        return ["no index yet (or a job of the dataset still running)"]
    found = []
    classes_equal = (observed["classes"] == expected["classes"] if layout.keeps_class_order
                     else sorted(observed["classes"]) == sorted(expected["classes"]))
    if not classes_equal:
        found.append(f"classes {observed['classes']} instead of {expected['classes']}")
    if observed.get("count", len(observed["images"])) != len(expected["images"]) \
            or observed["images"].keys() != expected["images"].keys():
        found.append(f"{observed.get('count')} images of sizes {sorted(observed['images'])}, "
                     f"not {sorted(expected['images'])}")
    for size, want in expected["images"].items():
        got = observed["images"].get(size)
        if got is not None and not boxes_equal(got["boxes"], want["boxes"]):
            found.append(f"image {size}: boxes {got['boxes']} instead of {want['boxes']}")
    splits = {size: image["split"] for size, image in observed["images"].items()}
    if layout.keeps_splits and splits != {size: image["split"] for size, image in expected["images"].items()}:
        found.append(f"splits {splits}")
    if not layout.keeps_splits and len(set(splits.values())) > 1:
        found.append(f"a layout without splits indexed in several: {splits}")
    return found


def boxes_equal(got: list[tuple], want: list[tuple]) -> bool:
    return len(got) == len(want) and all(
        g[0] == w[0] and all(abs(a - b) <= TOLERANCE for a, b in zip(g[1:], w[1:])) for g, w in zip(got, want))


def settled(api, dataset: str, layout: Layout, deadline: float) -> list[str]:
    return settled_all(api, {dataset: (dataset, layout)}, deadline)[dataset]


def settled_all(api, datasets: dict, deadline: float) -> dict:
    """{key: what still differs} for datasets {key: (dataset, layout)}, polled together until each is the
    canonical dataset, or every image of it is indexed and nothing changed for QUIET_SECONDS (a layout read
    wrong stays wrong), or the deadline passed."""
    expected, found = canonical(), {}
    watched = {key: (None, time.monotonic()) for key in datasets}  # key: (last index seen, unchanged since)
    with ThreadPoolExecutor(8) as pool:
        while watched:
            seen = dict(zip(watched, pool.map(lambda key: index_of(api, datasets[key][0]), watched)))
            now = time.monotonic()
            for key, index in seen.items():
                found[key] = differences(index, expected, datasets[key][1])
                last, since = watched[key] if index == watched[key][0] else (index, now)
                watched[key] = (last, since)
                quiet = index is not None and index["count"] == len(expected["images"]) and now - since > QUIET_SECONDS
                if not found[key] or quiet or now > deadline:
                    del watched[key]
            time.sleep(0.5 if watched else 0)
    return found


@pytest.fixture(scope="module")
def outcomes(api, brought_in) -> dict:
    """{(layout, way): what keeps its dataset from being the canonical one}, every dataset polled at once."""
    return settled_all(api, {case: (c["dataset"], ALL_LAYOUTS[case[0]]) for case, c in brought_in["cases"].items()},
                       brought_in["deadline"])


@pytest.mark.parametrize("key, way", case_params())
def test_every_layout_brought_in_every_way_is_the_canonical_dataset(brought_in, outcomes, key, way):
    case = brought_in["cases"][key, way]
    if way == "push":
        assert case["report"]["exit_code"] == 0, case["report"]["error"]
    assert outcomes[key, way] == []


@pytest.mark.parametrize("key", ALL_LAYOUTS)
def test_the_push_summary_names_the_layout_and_nothing_else(brought_in, key):
    report = brought_in["cases"][key, "push"]["report"]
    assert report["exit_code"] == 0, report["error"]
    layout = ALL_LAYOUTS[key]
    assert all(word.lower() in report["layout"].lower() for word in layout.named), report["layout"]
    # a clean export: nothing to say about its layout, and every file sent or read but the tool's READMEs
    assert report["layout_issues"] == []
    assert set(report["not_pushed"]) <= {"README.dataset.txt", "README.roboflow.txt"}, report["not_pushed"]


@pytest.mark.parametrize("key", ["darknet", "cvat-voc", "coco-2017"])
def test_a_push_that_waits_returns_once_the_index_is_the_canonical_dataset(api, cli_runner, fixtures_written,
                                                                         tmp_path, key):
    """Without --no-wait: labels and data.yaml made from VOC XML or COCO JSON, images moved out of obj/, are
    what push waits for; when it returns, the index is exact (no poll of ours)."""
    dataset = f"rt-wait-{uuid.uuid4().hex[:6]}-{key}"
    result = cli_runner("push", _written_out(fixtures_written[key], tmp_path), dataset, "--json", "--timeout", 120)
    assert result.exit_code == 0, result.output + (result.stderr or "")
    assert json.loads(result.stdout)["dataset_view"]["stats"]["images"] == len(PICTURES)
    assert differences(index_of(api, dataset), canonical(), ALL_LAYOUTS[key]) == []

README = [("import_not_dataset_file", "README.dataset.txt"), ("import_not_dataset_file", "README.roboflow.txt")]
# The issues a clean export brought in may raise: files that are no part of a dataset.
EXPECTED_ISSUES = {
    ("roboflow-yolo", "import"): README, ("roboflow-coco", "import"): README,
    ("roboflow-yolo", "drop"): [("unrecognized_file", "README.dataset.txt"),
                                ("unrecognized_file", "README.roboflow.txt")],
}


@pytest.mark.parametrize("key, way", [pytest.param(key, way, id=f"{key}-{way}") for key, way in CASES])
def test_a_clean_export_brought_in_raises_only_the_issues_it_should(api, brought_in, outcomes, key, way):
    dataset = brought_in["cases"][key, way]["dataset"]
    issues = api.all_pages(f"/datasets/{dataset}/issues", "issues")
    found = [(i["code"], i["message"].split(":")[0] if i["file"].endswith(".zip") else i["file"].rsplit("/", 1)[-1])
             for i in issues]
    assert sorted(found) == sorted(EXPECTED_ISSUES.get((key, way), [])), issues


# The drop summary (GET /datasets/{d}/files): the inline import's layout, and a dropped class file's.
CLASS_FILE_OF = {"cvat-yolo": "obj.names", "darknet": "obj.names", "label-studio-yolo": "classes.txt",
                 "fiftyone-yolov5": "dataset.yaml"}


def file_summary(api, dataset: str, object_name: str) -> str:
    """The dataset's file row of `object_name` (its layout and summary), as GET /datasets/{d}/files lists it."""
    def rows():
        return [row for row in api.all_pages(f"/datasets/{dataset}/files", "files")
                if row["path"] == object_name or row["path"].endswith(f"/{object_name}")]
    (row,) = wait_for(rows, lambda found: len(found) == 1, 30, f"{dataset}: the file row of {object_name}")
    return f"{row.get('layout') or ''} {row.get('summary') or ''}"


@pytest.mark.parametrize("key", [key for key, way in CASES if way == "import"])
def test_the_inline_import_names_the_layout(api, brought_in, outcomes, key):
    dataset = brought_in["cases"][key, "import"]["dataset"]
    summary = file_summary(api, dataset, f"imports/{dataset}.zip")
    assert all(word.lower() in summary.lower() for word in ALL_LAYOUTS[key].named), summary


@pytest.mark.parametrize("key", CLASS_FILE_OF)
def test_a_drop_names_the_layout_its_class_file_means(api, brought_in, outcomes, key):
    dataset = brought_in["cases"][key, "drop"]["dataset"]
    summary = file_summary(api, dataset, f"datasets/{dataset}/{CLASS_FILE_OF[key]}")
    assert all(word.lower() in summary.lower() for word in ALL_LAYOUTS[key].named), summary


# A drop of a layout that keeps its splits in lists (image lists, lists of folders) records each list file as
# what it is, with no issue, whichever came first: the list or the data.yaml naming it. {layout: a list file}
LIST_FILE_OF = {"darknet": "train.txt", "ultralytics-txt-lists": "autosplit_train.txt"}


@pytest.mark.parametrize("key", LIST_FILE_OF)
def test_a_drop_records_the_list_that_gave_the_splits(api, brought_in, outcomes, key):
    dataset = brought_in["cases"][key, "drop"]["dataset"]
    summary = file_summary(api, dataset, f"datasets/{dataset}/{LIST_FILE_OF[key]}")
    assert "image list" in summary and "train split" in summary, summary


def test_the_import_jobs_summary_names_the_layout(api, brought_in):
    for key in IMPORT_JOB_LAYOUTS:
        import_id = brought_in["cases"][key, "import-job"]["import_id"]
        done = wait_for(lambda: api.get(f"/imports/{import_id}"), lambda i: i["status"] in ("completed", "failed"),
                        max(brought_in["deadline"] - time.monotonic(), 1), f"import {import_id}")
        assert done["status"] == "completed", done
        assert all(word.lower() in (done["layout"] or "").lower() for word in ALL_LAYOUTS[key].named), done


# --- exported again and read by the other tools' readers -------------------------------------------------------

EXPORTED_FROM = ("ultralytics-names-list", "drop")  # a dataset the test above proves to be the canonical one
FORMATS = ("yolo", "coco", "voc")
SPLITS = ("train", "val")
EXACT = Layout("export", None, (), True, False)


@pytest.fixture(scope="module")
def exported(api, brought_in, outcomes, tmp_path_factory) -> dict:
    """The canonical dataset exported as YOLO, COCO and VOC (one version), each unpacked: {format: folder}."""
    case = brought_in["cases"][EXPORTED_FROM]
    assert outcomes[EXPORTED_FROM] == []
    first = export_of(api, case["dataset"], {"format": FORMATS[0]})
    documents = {FORMATS[0]: first, **{f: export_of(api, case["dataset"], {"format": f, "version": first["version"]})
                                       for f in FORMATS[1:]}}
    root = tmp_path_factory.mktemp("exported")
    assert all(d["status"] == "completed" for d in documents.values()), documents
    return {f: unpacked(d["uri"], root / f) for f, d in documents.items()} | {"documents": documents}


def read_as_index(classes: list[str], images) -> dict:
    """What a reader gave, in the index's shape: `images` yields (split, width, height, [(name, x1, y1, x2, y2)])
    in pixels."""
    found = {}
    for split, width, height, boxes in images:
        found[width, height] = {"split": split, "boxes": sorted(
            (name, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)
            for name, x1, y1, x2, y2 in boxes)}
    return {"classes": classes, "images": found}


def in_pixels(classes: list[str], image, detections) -> tuple[int, int, list[tuple]]:
    """A supervision item as (width, height, [(name, x1, y1, x2, y2)])."""
    height, width = image.shape[:2]
    return width, height, [(classes[int(c)], *map(float, xyxy)) for xyxy, c in zip(detections.xyxy,
                                                                                   detections.class_id)]


def supervision_images(dataset, split):
    return [(split, *in_pixels(dataset.classes, image, detections)) for _, image, detections in dataset]


def test_supervision_reads_the_yolo_export(exported):
    import supervision as sv
    folder, images, classes = exported["yolo"], [], None
    for split in SPLITS:
        read = sv.DetectionDataset.from_yolo(str(folder / "images" / split), str(folder / "labels" / split),
                                             str(folder / "data.yaml"))
        classes = read.classes
        images += supervision_images(read, split)
    assert differences(read_as_index(classes, images), canonical(), EXACT) == []


def test_supervision_reads_the_coco_export(exported):
    import supervision as sv
    folder, images, classes = exported["coco"], [], set()
    for split in SPLITS:
        read = sv.DetectionDataset.from_coco(str(folder / "images" / split),
                                             str(folder / "annotations" / f"instances_{split}.json"))
        classes.add(tuple(read.classes))
        images += supervision_images(read, split)
    (classes,) = classes  # every split's file lists the same categories
    assert differences(read_as_index(list(classes), images), canonical(), EXACT) == []


def test_pycocotools_reads_the_coco_export(exported):
    from pycocotools.coco import COCO
    images, classes = [], set()
    for split in SPLITS:
        coco = COCO(str(exported["coco"] / "annotations" / f"instances_{split}.json"))
        names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        classes.add(tuple(names[i] for i in sorted(names)))
        for image in coco.loadImgs(coco.getImgIds()):
            assert (exported["coco"] / "images" / split / image["file_name"]).is_file()
            boxes = [(names[a["category_id"]], a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                      a["bbox"][1] + a["bbox"][3]) for a in coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))]
            images.append((split, image["width"], image["height"], boxes))
    (classes,) = classes
    assert differences(read_as_index(list(classes), images), canonical(), EXACT) == []


def test_supervision_reads_the_voc_export_and_its_image_sets_give_the_splits(exported):
    import supervision as sv
    folder = exported["voc"]
    read = sv.DetectionDataset.from_pascal_voc(str(folder / "JPEGImages"), str(folder / "Annotations"))
    split_of = {stem: split for split in SPLITS
                for stem in (folder / "ImageSets" / "Main" / f"{split}.txt").read_text().split()}
    images = [(split_of[Path(path).stem], *in_pixels(read.classes, image, detections))
              for path, image, detections in read]
    # VOC XML has no class ids: supervision numbers names as it meets them; labelmap.txt keeps our order
    labelmap = [line.split(":")[0] for line in (folder / "labelmap.txt").read_text().splitlines()
                if line and not line.startswith("#")]
    assert sorted(read.classes) == sorted(CLASSES)
    assert differences(read_as_index(labelmap, images), canonical(), EXACT) == []


# Ultralytics runs in a subprocess: importing it registers Pillow plugins in the process.
ULTRALYTICS_READS = """
import json, sys
from pathlib import Path
from ultralytics.data.utils import check_det_dataset, img2label_paths, verify_image_label, IMG_FORMATS
data = check_det_dataset(sys.argv[1])

def image_files(paths):  # as Ultralytics' BaseDataset.get_img_files: folders, or .txt lists of ./ paths
    for path in map(Path, paths if isinstance(paths, list) else [paths]):
        if path.is_dir():
            yield from (str(p) for p in path.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS)
        else:
            yield from (str(path.parent / line[2:]) if line.startswith("./") else line
                        for line in path.read_text().split())

images = []
for split in ("train", "val"):
    files = sorted(image_files(data[split]))
    for image, label in zip(files, img2label_paths(files)):
        _, rows, (height, width), *_ , message = verify_image_label((image, label, "", False, data["nc"], 0, 0, False))
        images.append([split, width, height, [[int(r[0]), *map(float, r[1:])] for r in rows]])
print(json.dumps({"names": [data["names"][i] for i in range(data["nc"])], "images": images}))
"""


def test_ultralytics_check_det_dataset_reads_the_yolo_export(exported):
    result = subprocess.run([sys.executable, "-c", ULTRALYTICS_READS, str(exported["yolo"] / "data.yaml")],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "YOLO_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    read = json.loads(result.stdout.strip().splitlines()[-1])
    names = read["names"]
    observed = {"classes": names, "images": {(w, h): {"split": split, "boxes": sorted(
        (names[c], cx, cy, bw, bh) for c, cx, cy, bw, bh in rows)} for split, w, h, rows in read["images"]},
        "count": len(read["images"])}
    assert differences(observed, canonical(), EXACT) == []


@pytest.mark.parametrize("export_format", FORMATS)
def test_each_export_states_its_counts(exported, export_format):
    document = exported["documents"][export_format]
    assert document["splits"] == {split: sum(p.split == split for p in PICTURES) for split in SPLITS}
    assert document["boxes_per_class"] == {split: {name: sum(b.name == name for p in PICTURES if p.split == split
                                                             for b in p.boxes) for name in CLASSES}
                                           for split in SPLITS}


@pytest.fixture(scope="module")
def exports_brought_back(api, bucket, exported) -> dict:
    """Each export's zip dropped at imports/<d>.zip of a new dataset: {format: dataset}."""
    datasets = {}
    for export_format, document in exported["documents"].items():
        datasets[export_format] = f"rt-back-{uuid.uuid4().hex[:6]}-{export_format}"
        bucket.blob(f"imports/{datasets[export_format]}.zip").upload_from_string(
            storage.blob_at(document["uri"]).download_as_bytes())
    return {"datasets": datasets, "deadline": time.monotonic() + SETTLE_SECONDS}


@pytest.mark.parametrize("export_format", FORMATS)
def test_each_export_imported_back_is_the_canonical_dataset(api, exports_brought_back, export_format):
    dataset = exports_brought_back["datasets"][export_format]
    assert settled(api, dataset, EXACT, exports_brought_back["deadline"]) == []
