"""The command line's pure parts: what a folder pushes, settings, arguments, and how things are shown."""
from __future__ import annotations

import stat

import click
import pytest

import yaml

from common.domain import dataset_formats, layout
from yolodrop_cli import files, follow, push, settings, show
from yolodrop_cli.commands import parse_args, parse_gpus


def write(root, names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_image_extensions_are_the_apis():
    assert files.IMAGE_EXTENSIONS == layout.IMAGE_EXTENSIONS


def test_a_roboflow_folder_pushes_its_images_and_labels_into_split_folders_as_its_import_does(tmp_path):
    write(tmp_path, ["data.yaml", "README.roboflow.txt", "train/images/a.jpg", "train/labels/a.txt",
                     "valid/images/b.png", ".DS_Store", "__MACOSX/x.jpg"])
    plan = files.plan(tmp_path)
    assert sorted(item.path for item in plan.items) == ["data.yaml", "images/train/a.jpg", "images/val/b.png",
                                                        "labels/train/a.txt"]
    assert (plan.skipped, plan.layout) == (["README.roboflow.txt"], dataset_formats.ROBOFLOW_YOLO)


def test_a_cvat_yolo_export_becomes_the_layout_with_a_data_yaml(tmp_path):
    write(tmp_path, ["obj.data", "train.txt", "obj_train_data/a.jpg", "obj_train_data/a.txt"])
    (tmp_path / "obj.names").write_text("cat\ndog\n")
    plan = files.plan(tmp_path)
    made = {item.path: item for item in plan.items}
    assert sorted(made) == ["data.yaml", "images/train/a.jpg", "labels/train/a.txt"]
    assert yaml.safe_load(made["data.yaml"].data)["names"] == {0: "cat", 1: "dog"}
    assert (plan.skipped, plan.layout) == ([], dataset_formats.CVAT_YOLO)


def test_a_zip_is_one_archive_item_and_other_files_are_refused(tmp_path):
    import zipfile
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as archive:
        archive.writestr("images/a.jpg", b"x")
    (item,) = files.plan(tmp_path / "d.zip").items
    assert item.archive and item.path == "d.zip" and files.zip_image_count(tmp_path / "d.zip") == 1
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError):
        files.plan(tmp_path / "f.txt")


def test_md5_is_base64_as_cloud_storage_reports_it(tmp_path):
    (tmp_path / "a").write_bytes(b"hello")
    assert files.Item("a", 5, source=tmp_path / "a").md5() == "XUFAKrxLKna5cZ2REBfFkg=="
    assert files.Item("a", 5, data=b"hello").md5() == "XUFAKrxLKna5cZ2REBfFkg=="


def test_settings_come_from_options_then_environment_then_the_stack_then_the_login(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    settings.store("http://stored", "yd_stored", None)
    assert stat.S_IMODE(settings.config_path().stat().st_mode) == 0o600
    assert settings.resolve(None, None, None, {}, tmp_path).api_key == "yd_stored"
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "stack.env").write_text("API_URL=http://stack\nAPI_TOKEN=t\nPREDICT_URL=http://p\n")
    found = settings.resolve(None, None, None, {}, tmp_path / ".local")
    assert (found.api_url, found.api_key, found.predict_url) == ("http://stack", "t", "http://p")
    environment = {"YOLODROP_API_URL": "http://env", "YOLODROP_API_KEY": "yd_env"}
    assert settings.resolve(None, None, None, environment, tmp_path).api_url == "http://env"
    assert settings.resolve("http://flag/", None, None, environment, tmp_path).api_url == "http://flag"


def test_no_settings_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(settings.NotConfigured):
        settings.resolve(None, None, None, {}, tmp_path)


def test_training_arguments_are_json_values_or_strings():
    assert parse_args(("lr0=0.01", "cos_lr=true", "optimizer=SGD", "freeze=[0, 1]")) == \
        {"lr0": 0.01, "cos_lr": True, "optimizer": "SGD", "freeze": [0, 1]}
    with pytest.raises(click.BadParameter):
        parse_args(("lr0",))


def test_gpus_are_a_type_and_a_count():
    assert parse_gpus("nvidia-l4:4") == {"accelerator": {"type": "nvidia-l4", "count": 4}}
    assert parse_gpus(None) == {}
    for wrong in ("nvidia-l4", "nvidia-l4:four", ":4", "nvidia-l4:-1"):
        with pytest.raises(click.BadParameter):
            parse_gpus(wrong)


def test_what_a_person_reads():
    assert show.bar(5, 10, width=4) == "██··"
    assert show.epoch_line({"epoch": 2, "box_loss": 1.23456, "mAP50": 0.5, "seconds": 3.21}, 5) == \
        "epoch 2/5  box 1.235  mAP50 0.5  3.2s"
    assert show.epoch_line({"epoch": 2}, None) == "epoch 2  "  # a view without its planned epochs
    assert show.table([{"a": 1, "b": None}], ("a", "b")) == ["a  b", "1  -"]


def test_a_job_that_did_not_complete_says_who_cancelled_it_or_what_went_wrong():
    assert show.how_it_ended({"status": "cancelled", "cancelled_by": "erin"}) == "cancelled by erin"
    assert show.how_it_ended({"status": "failed", "error": "no ONNX weights"}) == "failed: no ONNX weights"


def test_any_job_reads_as_its_ref_status_phase_progress_and_age():
    job = {"ref": "import/import-1", "dataset": "d", "status": "running", "phase": "staged", "created_at": 100.0,
           "progress": {"done": 1200, "total": None, "unit": "members"}, "error": None}
    assert show.job_row(job, now=100.0 + 7_200) == {"ref": "import/import-1", "dataset": "d", "status": "running",
                                                   "phase": "staged", "progress": "1,200 members", "age": "2h"}
    assert show.job_lines({**job, "progress": {"done": 3, "total": 10, "unit": "epochs"}, "error": "x"}) == \
        ["import/import-1 (d): running (staged), 3/10 epochs", "  error: x"]
    assert [show.age(s) for s in (None, 59.9, 60, 86_400 * 3)] == ["-", "59s", "1m", "3d"]


def test_a_bare_job_id_is_a_training_jobs_ref_and_each_ref_has_where_it_is_cancelled():
    assert follow.job_ref("job-1") == "training/job-1" and follow.job_ref("version/d:v2") == "version/d:v2"
    assert follow.cancel_path("training/job-1") == follow.cancel_path("job-1") == "/jobs/training/job-1/cancel"
    assert follow.cancel_path("export/export-1") == "/jobs/export/export-1/cancel"


def test_counts_read_as_english():
    assert [show.count(n, "issue") for n in (0, 1, 2, 1500)] == ["0 issues", "1 issue", "2 issues", "1,500 issues"]
    assert [show.count(n, "box") for n in (1, 3)] == ["1 box", "3 boxes"]


def test_a_push_asks_for_upload_sessions_in_growing_batches_within_the_apis_per_request_limits(tmp_path):
    def items(*sizes):
        return [files.Item(f"images/{i}.jpg", size, source=tmp_path / f"{i}.jpg") for i, size in enumerate(sizes)]
    half = push.BATCH_BYTES // 2
    assert [len(batch) for batch in push._batches(items(*[1] * 2001))] == [32, 64, 128, 256, 500, 500, 500, 21]
    assert [len(batch) for batch in push._batches(items(half, half, 1, push.BATCH_BYTES + 5, 3))] == [2, 1, 1, 1]
    assert list(push._batches([])) == []


def test_an_ultralytics_folder_with_darknets_obj_names_stays_ultralytics_with_data_yamls_names(tmp_path):
    write(tmp_path, ["data.yaml", "images/train/a.jpg", "labels/train/a.txt", "images/val/b.jpg"])
    (tmp_path / "obj.names").write_text("cat\ndog\n")
    plan = files.plan(tmp_path)
    assert sorted(item.path for item in plan.items) == ["data.yaml", "images/train/a.jpg", "images/val/b.jpg",
                                                        "labels/train/a.txt"]
    assert next(i for i in plan.items if i.is_data_yaml).source == tmp_path / "data.yaml"
    assert (plan.layout, plan.skipped, plan.images) == (dataset_formats.ULTRALYTICS, [], 2)


def test_obj_names_gives_the_names_of_an_ultralytics_folder_without_data_yaml(tmp_path):
    write(tmp_path, ["images/train/a.jpg", "labels/train/a.txt"])
    (tmp_path / "obj.names").write_text("cat\ndog\n")
    made = {item.path: item for item in files.plan(tmp_path).items}
    assert sorted(made) == ["data.yaml", "images/train/a.jpg", "labels/train/a.txt"]
    assert yaml.safe_load(made["data.yaml"].data)["names"] == {0: "cat", 1: "dog"}


def test_a_push_of_a_folder_of_images_in_no_layout_read_exits_1_naming_the_layouts(tmp_path):
    from click.testing import CliRunner
    from yolodrop_cli.commands import cli
    write(tmp_path, ["photos/a.jpg", "photos/b.jpg", "notes.txt"])
    result = CliRunner().invoke(cli, ["push", str(tmp_path), "d"],
                                env={"YOLODROP_API_URL": "http://127.0.0.1:9", "YOLODROP_API_KEY": "k",
                                     "XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert result.exit_code == 1, result.output
    assert "2 images" in result.output and "CVAT YOLO 1.1" in result.output and "nothing was pushed" in result.output


def test_a_coco_zip_counts_the_images_its_import_indexes_not_its_panoptic_masks(tmp_path):
    import json
    import zipfile
    instances = {"categories": [{"id": 1, "name": "person", "supercategory": "person"},
                                {"id": 2, "name": "bicycle", "supercategory": "vehicle"}],
                 "images": [{"id": 9, "file_name": "000000000009.jpg", "width": 640, "height": 480},
                            {"id": 25, "file_name": "000000000025.jpg", "width": 640, "height": 426}],
                 "annotations": [{"id": 1, "image_id": 9, "category_id": 2, "bbox": [10, 20, 30, 40],
                                  "area": 1200, "iscrowd": 0}]}
    with zipfile.ZipFile(tmp_path / "coco.zip", "w") as archive:
        archive.writestr("coco/annotations/instances_val2017.json", json.dumps(instances))
        for image in ("000000000009", "000000000025"):
            archive.writestr(f"coco/val2017/{image}.jpg", b"jpeg")
            archive.writestr(f"coco/annotations/panoptic_val2017/{image}.png", b"png mask")
        archive.writestr("coco/annotations/panoptic_val2017.json", b"{}")
    assert files.zip_image_count(tmp_path / "coco.zip") == 2
