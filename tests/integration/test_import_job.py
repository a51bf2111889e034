"""Imports through the stack: archives served by a loopback HTTP server (with and
without range support, lying about their length), unpacked by the import job's
tasks (local subprocesses, retried as Cloud Run retries them), cancelled,
killed half-way, refused."""
from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import uuid
import time
import zipfile
from pathlib import Path

import pytest

from common.cloud import import_launcher, import_store, local_runner
from common.domain import imports, layout
from common.platform.events import PubSubMessage
from common.services import archive_import, start_import, watch_imports
from infra.local.archive_server import ArchiveServer
from infra.local.client import wait_for
from infra.local.sample import generated_dataset
from tests.archive_servers import folder, ranged, streamed  # noqa: F401 (fixtures)
from tests.integration import import_drill
from tests.integration.helpers import stats_when

DEADLINE = 120
INLINE_MAX_BYTES = int(os.environ.get("IMPORT_INLINE_MAX_BYTES", 8 * 1024 ** 2))  # conftest sets it


def write_zip(path: Path, files: dict[str, bytes], prefix: str = "", junk: int = 0) -> Path:
    """A zip of `files` (ZIP64 local records); `junk` empty __MACOSX members more
    (skipped by the import) push the member count past 65,535, so the archive ends with ZIP64 records."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            with archive.open(zipfile.ZipInfo(prefix + name, (2020, 1, 1, 0, 0, 0)), "w", force_zip64=True) as out:
                out.write(data)
        for i in range(junk):
            archive.writestr(f"__MACOSX/._{i}", b"")
    return path


def start(api, dataset: str, url: str, **fields) -> str:
    response = api.session.post(f"{api.url}/datasets/{dataset}/imports", json={"url": url, **fields}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["import_id"]


def ended(api, import_id: str, timeout: float = DEADLINE) -> dict:
    return wait_for(lambda: api.get(f"/imports/{import_id}"), lambda view: view["status"] in imports.FINAL,
                    timeout, f"import {import_id} to end")


def create_dataset(api, dataset: str) -> None:
    assert api.session.post(f"{api.url}/datasets", json={"id": dataset}, timeout=30).status_code == 201


def marked_objects(bucket, dataset: str, import_id: str) -> dict[str, int]:
    """Object name -> generation of what the import wrote."""
    return {blob.name: blob.generation for blob in bucket.list_blobs(prefix=layout.dataset_prefix(dataset))
            if (blob.metadata or {}).get(archive_import.IMPORT_MARK) == import_id}


def expected_objects(dataset: str, files: dict[str, bytes]) -> set[str]:
    return {layout.dataset_object(dataset, name) for name in files}


def test_a_zip_read_by_ranges_is_unpacked_by_parallel_tasks(api, bucket, folder, ranged, dataset):
    files = generated_dataset(12, 4, seed=41)
    write_zip(folder / f"{dataset}.zip", files, prefix="my-export/")
    create_dataset(api, dataset)
    import_id = start(api, dataset, ranged.url(f"{dataset}.zip"), tasks=2)
    view = ended(api, import_id)
    assert view["status"] == imports.COMPLETED, view
    assert (view["tasks"], view["members_total"], view["members_done"]) == (2, len(files), len(files))
    assert view["bytes_done"] == view["bytes_total"] == sum(map(len, files.values()))
    assert set(marked_objects(bucket, dataset, import_id)) == expected_objects(dataset, files)
    assert bucket.blob(layout.dataset_object(dataset, "images/val/g00012.jpg")).download_as_bytes() == \
        files["images/val/g00012.jpg"]
    stats_when(api, dataset, {"images": 16, "labeled": 16})
    listed = api.get("/imports", dataset=dataset)["imports"]
    assert [item["id"] for item in listed] == [import_id]


def test_a_zip64_archive_of_more_than_65535_members_is_read_by_ranges(api, bucket, folder, ranged, dataset):
    files = generated_dataset(3, 0, seed=42)
    path = write_zip(folder / f"{dataset}.zip", files, junk=65_600)
    assert b"PK\x06\x06" in path.read_bytes()[-200:]  # the ZIP64 end of central directory record
    create_dataset(api, dataset)
    view = ended(api, start(api, dataset, ranged.url(f"{dataset}.zip")))
    assert (view["status"], view["members_done"], view["members_total"]) == (imports.COMPLETED, len(files), len(files))
    stats_when(api, dataset, {"images": 3})


def test_a_coco_zip_becomes_the_yolo_layout_when_split_among_tasks(api, bucket, folder, ranged, dataset):
    images = {f"train/p{i}.jpg": generated_dataset(1, 0, seed=60 + i)["images/g00000.jpg"] for i in range(6)}
    document = {"images": [{"id": i, "file_name": f"p{i}.jpg", "width": 128, "height": 96} for i in range(6)],
                "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [10, 20, 40, 30], "iscrowd": 0}
                                for i in range(6)],
                "categories": [{"id": 1, "name": "cat"}]}
    write_zip(folder / f"{dataset}.zip", {**images, "train/_annotations.coco.json": json.dumps(document).encode()})
    create_dataset(api, dataset)
    view = ended(api, start(api, dataset, ranged.url(f"{dataset}.zip"), tasks=2, format="coco"))
    assert (view["status"], view["issues"]) == (imports.COMPLETED, []), view
    # images and their labels: data.yaml is written when the plan matches the classes, before them
    assert view["members_done"] == view["members_total"] == 6 + 6
    assert view["layout"] == "Roboflow COCO"
    label = bucket.blob(layout.dataset_object(dataset, "labels/train/p3.txt")).download_as_text()
    assert label.split() == ["0", "0.234375", "0.364583", "0.3125", "0.3125"]
    stats_when(api, dataset, {"images": 6, "labeled": 6, "boxes": 6})
    as_files = ended(api, start(api, dataset, ranged.url(f"{dataset}.zip"), format="yolo"))
    # taken as YOLO, neither the JSON nor images outside images/ are dataset files: nothing is unpacked
    assert (as_files["members_done"], as_files["issues_total"]) == (0, 7), as_files
    assert {issue["code"] for issue in as_files["issues"]} == {"import_not_dataset_file"}
    assert not bucket.blob(layout.dataset_object(dataset, "train/_annotations.coco.json")).exists()


def test_a_zip_from_a_server_without_ranges_is_staged_in_the_bucket_first(api, bucket, folder, streamed, dataset):
    files = generated_dataset(5, 0, seed=43)
    write_zip(folder / f"{dataset}.zip", files)
    create_dataset(api, dataset)
    import_id = start(api, dataset, streamed.url(f"{dataset}.zip"), tasks=2)
    view = ended(api, import_id)
    assert (view["status"], view["members_done"], view["tasks"]) == (imports.COMPLETED, len(files), 2)
    document = import_store.read(import_id)
    assert (document["status"], document["phase"]) == (imports.COMPLETED, imports.UNPACKING)  # the kernel's words
    assert document["read_from"] == f"gs://{bucket.name}/{layout.import_staging(import_id, 'zip')}"
    assert document["size"] == (folder / f"{dataset}.zip").stat().st_size  # what was staged
    # removed by the task that ended the import, just after it recorded the end
    wait_for(lambda: bucket.get_blob(layout.import_staging(import_id, "zip")), lambda blob: blob is None, 30,
             "the staged copy to be removed")
    assert set(marked_objects(bucket, dataset, import_id)) == expected_objects(dataset, files)


def test_an_import_an_older_deployment_left_staged_is_asked_again_by_the_watch_and_unpacked(
        api, bucket, folder, streamed, dataset):
    """Before imports used the kernel's words a staged import's status said "staged": it reads as running at
    phase staged, the watch finds it waiting on its request, and its unpack phase reads the staged copy."""
    files = generated_dataset(4, 2, seed=47)
    archive = write_zip(folder / f"{dataset}.zip", files)
    create_dataset(api, dataset)
    import_id, now = f"import-staged-{dataset}", time.time()
    staged = layout.import_staging(import_id, "zip")
    bucket.blob(staged).upload_from_filename(str(archive))
    older = {key: value for key, value in imports.new_import(import_id, dataset, streamed.url(f"{dataset}.zip"), "zip",
                                                             None, None, now).items() if key != "phase"}
    import_store.create({**older, "status": "staged", "tasks": 1, "size": archive.stat().st_size, "ranges": False,
                         "read_from": f"gs://{bucket.name}/{staged}", "started_at": now, "phase_started_at": now,
                         "tasks_finished": [], "execution": None})
    shown = api.get(f"/imports/{import_id}")
    assert (shown["status"], shown["phase"]) == (imports.RUNNING, imports.STAGED)
    assert watch_imports.resend_waiting(time.time() + 10 ** 6)[import_id] == "sent again"
    view = ended(api, import_id)
    assert (view["status"], view["phase"], view["members_done"]) == (imports.COMPLETED, imports.UNPACKING, len(files))
    assert set(marked_objects(bucket, dataset, import_id)) == expected_objects(dataset, files)


def test_a_tar_gz_is_streamed_by_one_task(api, bucket, folder, streamed, dataset):
    files = generated_dataset(4, 2, seed=44)
    with tarfile.open(folder / f"{dataset}.tar.gz", "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"export/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    create_dataset(api, dataset)
    import_id = start(api, dataset, streamed.url(f"{dataset}.tar.gz"))
    view = ended(api, import_id)
    assert (view["status"], view["tasks"], view["members_done"]) == (imports.COMPLETED, 1, len(files))
    assert set(marked_objects(bucket, dataset, import_id)) == expected_objects(dataset, files)
    stats_when(api, dataset, {"images": 6, "labeled": 6})


def begin_with(launcher, dataset: str, url: str, tasks: int) -> str:
    """An import started by the imports function's code in this process, with a drilled launcher."""
    import_id = f"import-{uuid.uuid4().hex[:16]}"
    # recorded now: the watch sends again only the request of an import quiet for JOB_STALL_SECONDS
    document = imports.new_import(import_id, dataset, url, "zip", None, None, time.time())
    import_store.create({**document, "tasks_wanted": tasks})
    start_import.handle(PubSubMessage("m", json.dumps({"import_id": import_id}).encode(), "e", {}), launcher)
    return import_id


def test_a_task_killed_half_way_is_retried_and_writes_no_member_twice(api, bucket, folder, ranged, dataset,
                                                                      stack, tmp_path):
    files = generated_dataset(40, 0, seed=45)
    write_zip(folder / f"{dataset}.zip", files)
    create_dataset(api, dataset)
    record = tmp_path / "written-before-the-kill.txt"
    launcher = import_drill.drill_launcher(stack.state_dir, "kill", "15", str(record))
    import_id = begin_with(launcher, dataset, ranged.url(f"{dataset}.zip"), tasks=2)
    view = ended(api, import_id)
    assert (view["status"], view["members_done"]) == (imports.COMPLETED, len(files)), view
    written_first = dict(line.split() for line in record.read_text().splitlines())
    assert len(written_first) == 15
    now = marked_objects(bucket, dataset, import_id)
    assert set(now) == expected_objects(dataset, files)  # none missing
    assert {name: str(now[name]) for name in written_first} == written_first  # none written twice
    assert view["skipped"] >= 15  # the retried task resumed


def test_a_cancelled_import_stops_where_it_is(api, bucket, folder, ranged, dataset, stack):
    files = generated_dataset(30, 0, seed=46)
    write_zip(folder / f"{dataset}.zip", files)
    create_dataset(api, dataset)
    launcher = import_drill.drill_launcher(stack.state_dir, "pause", "5")
    import_id = begin_with(launcher, dataset, ranged.url(f"{dataset}.zip"), tasks=1)
    wait_for(lambda: api.get(f"/imports/{import_id}"), lambda view: view["members_done"] >= 5, DEADLINE,
             "five members unpacked")
    response = api.session.post(f"{api.url}/imports/{import_id}/cancel", timeout=30)
    assert response.status_code == 200 and response.json()["status"] == imports.CANCELLED
    execution = import_launcher.execution_name(import_id, imports.UNPACK)
    wait_for(lambda: local_runner.read_record(execution), lambda record: record["completion_time"] is not None,
             DEADLINE, "the task to stop")
    view = api.get(f"/imports/{import_id}")
    assert view["status"] == imports.CANCELLED and 5 <= view["members_done"] < len(files)
    assert len(marked_objects(bucket, dataset, import_id)) < len(files)
    again = api.session.post(f"{api.url}/imports/{import_id}/cancel", timeout=30)
    assert again.status_code == 200 and again.json()["status"] == imports.CANCELLED


def test_an_import_whose_tasks_run_out_of_retries_is_failed_by_the_watch(api, folder, ranged, dataset, stack):
    write_zip(folder / f"{dataset}.zip", generated_dataset(10, 0, seed=49))
    create_dataset(api, dataset)
    launcher = import_launcher.local(stack.state_dir, import_drill.MODULE, ("die", "3"), retries=1)
    import_id = begin_with(launcher, dataset, ranged.url(f"{dataset}.zip"), tasks=1)
    view = ended(api, import_id)
    assert view["status"] == imports.FAILED, view
    assert "ended with 0 of 1 tasks done" in view["error"] and f"yolodrop import {dataset} " in view["error"]
    assert (stack.state_dir / f"import-{import_id}-unpack-0.log").exists()


def unsafe_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images/ok.jpg", generated_dataset(1, 0)["images/g00000.jpg"])
        archive.writestr("../escape.txt", b"x")
        archive.writestr("/etc/absolute.txt", b"x")
        link = zipfile.ZipInfo("images/link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("images/secret.jpg", b"not really encrypted")
        archive.writestr("images/bomb.txt", b"\0" * (4 * 1024 * 1024))
    return mark_encrypted(path, "images/secret.jpg")


def mark_encrypted(path: Path, name: str) -> Path:
    """Set the encryption flag of a member's central directory entry (zipfile cannot write encrypted members)."""
    data = bytearray(path.read_bytes())
    start = 0
    while (entry := data.find(b"PK\x01\x02", start)) != -1:
        name_length = int.from_bytes(data[entry + 28:entry + 30], "little")
        if data[entry + 46:entry + 46 + name_length] == name.encode():
            data[entry + 8] |= 0x1
        start = entry + 4
    path.write_bytes(bytes(data))
    return path


UNSAFE_CODES = {"import_unsafe_path", "import_symlink", "import_encrypted", "import_compression_ratio"}


def test_every_unsafe_member_is_named_and_not_unpacked(api, bucket, folder, ranged, streamed, dataset):
    unsafe_zip(folder / f"{dataset}.zip")
    with tarfile.open(folder / f"{dataset}.tar", "w") as archive:
        for name, kind in (("../escape.txt", tarfile.REGTYPE), ("images/link.jpg", tarfile.SYMTYPE),
                           ("images/device", tarfile.CHRTYPE), ("images/ok.jpg", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            data = generated_dataset(1, 0)["images/g00000.jpg"] if name == "images/ok.jpg" else b""
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    create_dataset(api, dataset)
    zipped = ended(api, start(api, dataset, ranged.url(f"{dataset}.zip")))
    tarred = ended(api, start(api, dataset, streamed.url(f"{dataset}.tar")))
    assert zipped["status"] == tarred["status"] == imports.COMPLETED
    assert {issue["code"] for issue in zipped["issues"]} == UNSAFE_CODES
    assert {issue["code"] for issue in tarred["issues"]} == {"import_unsafe_path", "import_symlink",
                                                            "import_special_file"}
    assert zipped["members_done"] == tarred["members_done"] == 1
    names = {blob.name for blob in bucket.list_blobs(prefix=layout.dataset_prefix(dataset))}
    assert names == {layout.dataset_object(dataset, "images/ok.jpg")}


@pytest.mark.parametrize("url, named", [
    ("http://169.254.169.254/computeMetadata/v1/a.zip", "169.254.169.254"),
    ("http://10.1.2.3/a.zip", "10.1.2.3"),
    ("http://[::ffff:192.168.0.1]/a.zip", "192.168.0.1"),
])
def test_a_url_to_a_refused_address_fails_the_import_at_once(api, dataset, url, named):
    create_dataset(api, dataset)
    view = ended(api, start(api, dataset, url), timeout=30)
    assert view["status"] == imports.FAILED and named in view["error"], view
    assert view["tasks"] is None  # nothing was launched


def test_a_server_lying_about_the_length_fails_the_import_with_the_reason(api, folder, dataset):
    write_zip(folder / f"{dataset}.zip", generated_dataset(2, 0, seed=47))
    real = (folder / f"{dataset}.zip").stat().st_size
    create_dataset(api, dataset)
    for ranges in (True, False):
        with ArchiveServer(folder, ranges=ranges, announced_size={f"{dataset}.zip": real + 5000}) as liar:
            view = ended(api, start(api, dataset, liar.url(f"{dataset}.zip")))
        assert view["status"] == imports.FAILED and str(real + 5000) in view["error"], view


def test_requests_that_cannot_be_imported_are_refused_with_the_reason(api, dataset):
    create_dataset(api, dataset)
    for body, words in (({"url": "ftp://example.com/a.zip"}, "http"), ({"url": "https://example.com/a.zip",
                                                                         "tasks": 0}, "tasks"),
                        ({"url": "gs://yolodrop-data/datasets/other/images/a.jpg"}, "imports/")):
        response = api.session.post(f"{api.url}/datasets/{dataset}/imports", json=body, timeout=30)
        assert response.status_code == 400 and words in response.json()["error"]["message"], response.text


def test_a_dropped_archive_above_the_inline_size_is_unpacked_by_the_import_job(api, bucket, dataset):
    files = {**generated_dataset(6, 0, seed=48), "extras/noise.bin": os.urandom(INLINE_MAX_BYTES + 1024)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored: the archive is larger than the inline limit
        for name, data in files.items():
            archive.writestr(name, data)
    blob = bucket.blob(layout.import_archive(dataset))
    blob.upload_from_string(buffer.getvalue())
    import_id = imports.drop_import_id(blob.name, blob.generation)
    view = wait_for(lambda: api.get_or_none(f"/imports/{import_id}"),
                    lambda view: view is not None and view["status"] in imports.FINAL, DEADLINE,
                    "the dropped archive's import to end")
    assert (view["status"], view["members_done"]) == (imports.COMPLETED, len(files) - 1), view  # not noise.bin
    assert [issue["code"] for issue in view["issues"]] == ["import_not_dataset_file"]
    assert view["source"] == f"gs://{bucket.name}/{blob.name}"
    stats_when(api, dataset, {"images": 6})


def test_an_import_whose_request_was_never_published_is_started_by_the_watch(api, bucket, folder, ranged, dataset):
    """The import is recorded but its request message is lost (a failed publish, a function that died before
    it launched the job): the watch sends the request again and the import runs to its end."""
    files = generated_dataset(6, 2, seed=43)
    write_zip(folder / f"{dataset}.zip", files)
    create_dataset(api, dataset)
    import_id = f"import-lost-{dataset}"
    import_store.create(imports.new_import(import_id, dataset, ranged.url(f"{dataset}.zip"), "zip", None, None,
                                           time.time()))
    assert watch_imports.resend_waiting(time.time() + 10 ** 6)[import_id] == "sent again"
    view = ended(api, import_id)
    assert view["status"] == imports.COMPLETED and view["members_done"] == len(files), view
    stats_when(api, dataset, {"images": 8, "labeled": 8})
