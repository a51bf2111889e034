"""The `yolodrop` commands, run in process (Click's runner) against the local
stack: push with a bad file and its issue, a second push that sends nothing,
train --follow on a tiny dataset, predict, export and unpack, and the exit codes."""
from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from common.cloud import storage
from infra.local.archive_server import ArchiveServer
from infra.local.sample import generated_dataset
from yolodrop_cli.commands import cli

FILES = generated_dataset(8, 4, size=(96, 72))
# The command line needs the API's URL and key, nothing of Google Cloud: none of this is set while it runs.
NO_CLOUD_CREDENTIALS = dict.fromkeys(("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT",
                                      "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"))
BAD = {"images/train/not_an_image.jpg": b"this is text, not a JPEG"}


@pytest.fixture(scope="module")
def run(stack, tmp_path_factory):
    env = stack.env()
    config_home = tmp_path_factory.mktemp("config")

    def run(*args: str):
        runner = CliRunner()
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False,
                             env={"YOLODROP_API_URL": env["API_URL"], "YOLODROP_API_KEY": stack.token,
                                  "YOLODROP_PREDICT_URL": env["PREDICT_URL"], "XDG_CONFIG_HOME": str(config_home),
                                  **NO_CLOUD_CREDENTIALS})
    return run


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def pushed(run, tmp_path_factory) -> tuple[str, Path, dict]:
    folder = write(tmp_path_factory.mktemp("dataset"), {**FILES, **BAD, "README.roboflow.txt": b"exported"})
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = run("push", folder, name, "--json")
    assert result.exit_code == 0, result.output + result.stderr
    return name, folder, json.loads(result.stdout)


def test_push_uploads_every_file_waits_for_the_index_and_names_the_bad_file(pushed):
    name, _, report = pushed
    assert report["uploaded"] == len(FILES) + len(BAD) and report["unchanged"] == 0
    assert report["not_pushed"] == ["README.roboflow.txt"]
    assert report["dataset_view"]["stats"]["labeled"] == 12 and report["dataset_view"]["stats"]["images"] == 13
    assert [(i["code"], i["file"]) for i in report["issues"]] == \
        [("image_unreadable", f"datasets/{name}/images/train/not_an_image.jpg")]


def test_a_second_push_sends_nothing(run, pushed):
    name, folder, _ = pushed
    result = run("push", folder, name, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["uploaded"], report["unchanged"], report["bytes_sent"]) == (0, len(FILES) + len(BAD), 0)


def test_issues_and_status_read_the_index(run, pushed):
    name = pushed[0]
    issues = json.loads(run("issues", name, "--code", "image_unreadable", "--json").stdout)
    assert [issue["file"] for issue in issues] == [f"datasets/{name}/images/train/not_an_image.jpg"]
    status = run("status", name)
    assert status.exit_code == 0 and "boxes per class:" in status.stdout and "labeled               12" in status.stdout


def test_train_follow_shows_every_epoch_and_the_model_then_predict_and_export(run, pushed, api, tmp_path):
    name = pushed[0]
    result = run("train", name, "--model", "yolov8n.yaml", "--epochs", 2, "--imgsz", 64, "--batch", 4,
                 "--arg", "workers=0", "--follow")
    assert result.exit_code == 0, result.output + result.stderr
    assert "epoch 1/2" in result.stdout and "epoch 2/2" in result.stdout, result.stdout
    model_id = next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("model "))

    image = write(tmp_path, {"g.jpg": FILES["images/train/g00000.jpg"]}) / "g.jpg"
    predicted = run("predict", model_id, image, "--conf", 0.001, "--save", tmp_path / "drawn", "--json")
    assert predicted.exit_code == 0, predicted.stderr
    (prediction,) = json.loads(predicted.stdout)["predictions"]
    assert prediction["width"] == 96 and (tmp_path / "drawn" / "g.jpg").is_file()

    exported = run("export", name, "--format", "yolo", "-o", tmp_path / "export.zip")
    assert exported.exit_code == 0, exported.stderr
    counts = {line.split()[0]: line.split()[1:] for line in exported.stdout.splitlines()[1:] if line.strip()}
    assert counts["class"][-1] == "total" and counts["(images)"][-1] == "12", exported.stdout
    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        archive.extractall(tmp_path / "unpacked")
    assert len(list((tmp_path / "unpacked").rglob("*.jpg"))) == 12  # the unreadable image is left out

    weights = run("weights", model_id, "--kind", "onnx", "-o", tmp_path, "--json")  # to a folder: its own name
    assert weights.exit_code == 0, weights.output + weights.stderr
    saved = Path(json.loads(weights.stdout)["file"])
    assert saved == tmp_path / f"{model_id}-best.onnx"
    assert saved.read_bytes() == storage.blob_at(api.get(f"/models/{model_id}")["weights"]["onnx"]).download_as_bytes()


def test_a_zip_is_unpacked_by_the_stack(run, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in FILES.items():
            archive.writestr(f"export/{name}", data)
    (tmp_path / "d.zip").write_bytes(buffer.getvalue())
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = run("push", tmp_path / "d.zip", name, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["dataset_view"]["stats"]["images"] == 12


def test_import_follows_the_import_job_and_names_what_it_refused(run, tmp_path):
    with zipfile.ZipFile(tmp_path / "remote.zip", "w") as archive:
        for name, data in FILES.items():
            archive.writestr(name, data)
        archive.writestr("../outside.txt", b"x")
    name = f"cli-{uuid.uuid4().hex[:8]}"
    with ArchiveServer(tmp_path) as server:
        result = run("import", name, server.url("remote.zip"), "--tasks", "2")
    assert result.exit_code == 0, result.output + result.stderr
    first, layout_line, issue = result.stdout.splitlines()
    assert layout_line == "layout: Ultralytics YOLO"
    size = f"{sum(map(len, FILES.values())) / 2**20:,.1f} MiB"
    assert first.startswith("import import-")
    assert first.endswith(f": completed, {len(FILES)} of {len(FILES)} files, {size}, 1 issue")
    assert issue == "  import_unsafe_path: ../outside.txt: the path leaves the dataset folder; not unpacked"
    listed = run("imports", "--dataset", name, "--json")
    assert [row["status"] for row in json.loads(listed.stdout)] == ["completed"]
    refused = run("import", name, "http://10.0.0.1/a.zip")
    assert refused.exit_code == 1 and "a private address" in refused.stderr


def test_jobs_lists_every_kind_and_job_follows_any_to_its_end(run, pushed):
    name = pushed[0]
    version = json.loads(run("version", "create", name, "--no-wait", "--json").stdout)["version"]
    ref = f"version/{name}:{version}"
    followed = run("job", ref, "--follow")
    assert followed.exit_code == 0, followed.output + followed.stderr
    assert followed.stdout.splitlines()[-1].startswith(f"{ref} ({name}): completed"), followed.stdout
    assert followed.stdout.splitlines()[-1].endswith(" 12/12 images"), followed.stdout
    doomed = json.loads(run("import", name, "http://169.254.169.254/computeMetadata/v1/a.zip", "--no-wait",
                            "--json").stdout)["import_id"]
    failed = run("job", f"import/{doomed}", "--follow")
    assert failed.exit_code == 1, failed.stderr
    assert failed.stderr.splitlines()[-1].startswith(f"error: job import/{doomed} failed: "), failed.stderr

    listed = run("jobs", "--dataset", name, "--json")
    assert {f"import/{doomed}", ref} <= {job["ref"] for job in json.loads(listed.stdout)}
    table = run("jobs", "--dataset", name, "--kind", "version").stdout.splitlines()
    assert table[0].split() == ["ref", "dataset", "status", "phase", "progress", "age"]
    refs = [line.split()[0] for line in table[1:]]
    assert ref in refs and all(listed.startswith(f"version/{name}:") for listed in refs), table

    refused = run("cancel", ref)  # a version cannot stop; an ended job has nothing to cancel: the reason says which
    assert refused.exit_code == 1 and "409" in refused.stderr and "cannot be cancelled" in refused.stderr, \
        refused.stderr


def test_exit_codes_and_one_line_errors(run):
    missing = run("status", "no-such-dataset")
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1 and "404" in missing.stderr
    assert run("train", "x").exit_code == 2  # --model is required


def test_a_changed_data_yaml_pushed_again_shows_the_new_names_once_the_index_applied_them(run, api, tmp_path):
    folder = write(tmp_path, generated_dataset(3, 1, size=(96, 72)))
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert run("push", folder, name, "--json").exit_code == 0
    (folder / "data.yaml").write_text("names:\n  0: pedestrian\n  1: coach\n  2: necktie\nnc: 3\n")
    result = run("push", folder, name, "--json")
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads(result.stdout)
    assert report["layout"].startswith("Ultralytics")
    assert report["dataset_view"]["classes"] == ["pedestrian", "coach", "necktie"]
    classes = api.get(f"/datasets/{name}/classes")
    assert classes["indexed_generation"] == classes["generation"] > 0
    assert api.get(f"/datasets/{name}")["classes"] == ["pedestrian", "coach", "necktie"]


def test_a_coco_zip_with_panoptic_masks_is_pushed_without_waiting_for_the_masks(run, tmp_path):
    images = {f"{index:012d}.jpg": FILES[path] for index, path in
              enumerate(p for p in FILES if p.startswith("images/"))}
    instances = {"info": {"description": "COCO 2017 Dataset"},
                 "categories": [{"id": 1, "name": "person", "supercategory": "person"},
                                {"id": 2, "name": "bicycle", "supercategory": "vehicle"}],
                 "images": [{"id": i, "file_name": f, "width": 96, "height": 72} for i, f in enumerate(images)],
                 "annotations": [{"id": i, "image_id": i, "category_id": 2, "bbox": [10, 10, 20, 30], "area": 600,
                                  "iscrowd": 0} for i in range(len(images))]}
    with zipfile.ZipFile(tmp_path / "coco.zip", "w") as archive:
        archive.writestr("annotations/instances_val2017.json", json.dumps(instances))
        archive.writestr("annotations/panoptic_val2017.json", json.dumps({"annotations": []}))
        for file_name, data in images.items():
            archive.writestr(f"val2017/{file_name}", data)
            archive.writestr(f"annotations/panoptic_val2017/{file_name[:-4]}.png", b"\x89PNG mask")
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = run("push", tmp_path / "coco.zip", name, "--json", "--timeout", 120)
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads(result.stdout)["dataset_view"]["stats"]["images"] == len(images)


def test_an_ultralytics_folder_with_darknets_obj_names_pushes_every_image_by_data_yamls_names(run, tmp_path):
    dataset = generated_dataset(3, 1, size=(96, 72))
    folder = write(tmp_path, {**dataset, "obj.names": b"person\nbus\ntie\n"})
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = run("push", folder, name, "--json")
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads(result.stdout)
    assert (report["layout"], report["uploaded"], report["not_pushed"]) == ("Ultralytics YOLO", len(dataset), [])
    assert report["dataset_view"]["stats"]["images"] == 4
    assert report["dataset_view"]["classes"] == ["person", "bus", "tie"]
