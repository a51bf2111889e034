"""Attacks through archives and imports: code smuggled among images, a tar.gz bomb, a zip whose end
record claims a million entries, an import of another dataset's drop by name prefix, an import of
another bucket read with the importer's own account, and an export whose member names would escape
the folder of whoever unzips it.

People are real accounts of the Auth emulator calling the API in process (as tests/integration/
test_access.py does); archives are served by a loopback HTTP server (the local stack lets imports
reach it) or dropped in the bucket; the import job's tasks are the stack's subprocesses, run under
the importer's memory limit (infra/settings.json)."""
from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
import tarfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

import functions_framework
import pytest

from common.cloud import storage
from common.domain import imports, layout
from tests.archive_servers import folder, ranged, streamed  # noqa: F401 (fixtures)
from infra.local.client import sign_up, wait_for
from infra.local.sample import generated_dataset
from infra.local.stack import memory_limit
from tests.integration.helpers import drop, issues_by_file, stats_when

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
DEADLINE = 120
BOMB_BYTES = 2 * 1024 ** 3


class Payload:
    """Unpickling this calls open(marker, "w"): the file appears exactly when the pickle is executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture(scope="module")
def client(stack):
    return APP.test_client()


@pytest.fixture(scope="module")
def mallory(stack) -> str:
    """A signed-up person's ID token."""
    return sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], f"mallory-{uuid.uuid4().hex[:8]}@example.com",
                   "secret-123")[1]


@pytest.fixture(scope="module")
def alice(stack) -> str:
    return sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], f"alice-{uuid.uuid4().hex[:8]}@example.com",
                   "secret-123")[1]


def call(client, method: str, path: str, token: str, body=None):
    return client.open(path, method=method, headers={"Authorization": f"Bearer {token}"}, json=body)


def new_dataset(client, token: str, name: str | None = None) -> str:
    name = name or f"arc-{uuid.uuid4().hex[:8]}"
    response = call(client, "POST", "/datasets", token, {"id": name})
    assert response.status_code == 201, response.get_json()
    return name


def start_import(client, token: str, dataset: str, url: str) -> str:
    response = call(client, "POST", f"/datasets/{dataset}/imports", token, {"url": url})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["import_id"]


def ended(client, token: str, import_id: str, timeout: float = DEADLINE) -> dict:
    return wait_for(lambda: call(client, "GET", f"/imports/{import_id}", token).get_json(),
                    lambda view: view.get("status") in imports.FINAL, timeout, f"import {import_id} to end")


def objects_of(bucket, dataset: str) -> set[str]:
    return {layout.dataset_relative(blob.name, dataset)
            for blob in bucket.list_blobs(prefix=layout.dataset_prefix(dataset))}


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# ---- code among the images --------------------------------------------------------------

def smuggled(marker: Path) -> dict[str, bytes]:
    """Executable members an attacker hides among a real dataset's files."""
    return {"w/evil.pt": pickle.dumps(Payload(marker)), "run.sh": b"#!/bin/sh\ntouch /tmp/pwned\n",
            "images/train/hook.py": b"import os\nos.system('id')\n",
            "labels/train/last.pt": pickle.dumps(Payload(marker))}


@pytest.mark.parametrize("how", ["url", "drop"])
def test_a_zip_carrying_code_unpacks_only_its_images_labels_and_data_yaml(client, api, bucket, ranged, folder,
                                                                         mallory, tmp_path, how):
    marker = tmp_path / "unpickled"
    dataset_files = generated_dataset(3, 2, seed=71)
    archive = zip_of({**{f"set/{name}": data for name, data in dataset_files.items()},
                      **{f"set/{name}": data for name, data in smuggled(marker).items()}})
    dataset = new_dataset(client, mallory)
    if how == "url":
        (folder / f"{dataset}.zip").write_bytes(archive)
        view = ended(client, mallory, start_import(client, mallory, dataset, ranged.url(f"{dataset}.zip")))
        assert view["status"] == imports.COMPLETED, view
        skipped = [issue["message"].split(":")[0] for issue in view["issues"] if
                   issue["code"] == "import_not_dataset_file"]
    else:
        bucket.blob(f"imports/{dataset}.zip").upload_from_string(archive)
        stats_when(api, dataset, {"images": 5, "labeled": 5})
        skipped = [code for code, _ in issues_by_file(api, dataset)[f"imports/{dataset}.zip"]]
    assert objects_of(bucket, dataset) == set(dataset_files)
    assert sorted(skipped) == (sorted(f"set/{name}" for name in smuggled(marker)) if how == "url"
                               else ["import_not_dataset_file"] * 4)
    stats_when(api, dataset, {"images": 5, "labeled": 5})
    assert not marker.exists()


# ---- a tar.gz bomb while someone else's drop is indexed ---------------------------------------

def gzip_bomb_tar(path: Path, zeros: int) -> Path:
    """A tar.gz of one image of `zeros` zero bytes, in seconds: gzip members of 64 MiB of zeros (compressed
    once) follow each other, which a gzip reader reads as one stream. About 1000 times smaller than it expands."""
    header = tarfile.TarInfo("images/bomb.png")
    header.size = zeros
    piece = gzip.compress(bytes(64 * 1024 ** 2), compresslevel=9)
    with path.open("wb") as out:
        out.write(gzip.compress(header.tobuf()))
        for _ in range(zeros // (64 * 1024 ** 2)):
            out.write(piece)
        out.write(gzip.compress(bytes(2 * tarfile.BLOCKSIZE)))
    return path


def peak_rss(log_path: Path) -> int:
    """The import task's peak resident memory, from the line it logs as it ends (just after the import ends)."""
    def logged() -> list[int]:
        lines = log_path.read_text().splitlines() if log_path.exists() else []
        return [record["peak_rss_bytes"] for record in map(json.loads, (line for line in lines if line.startswith("{")))
                if "peak_rss_bytes" in record]
    return max(wait_for(logged, bool, 30, f"the peak memory in {log_path.name}"))


def test_a_tar_gz_bomb_is_refused_early_while_another_drop_is_indexed_exactly(stack, client, api, bucket, streamed,
                                                                             folder, mallory, alice):
    bomb = gzip_bomb_tar(folder / "bomb.tar.gz", BOMB_BYTES)
    assert bomb.stat().st_size < 3 * 1024 ** 2
    target, theirs = new_dataset(client, mallory), new_dataset(client, alice)
    their_files = generated_dataset(6, 0, seed=72)
    began = time.monotonic()
    import_id = start_import(client, mallory, target, streamed.url("bomb.tar.gz"))
    dropping = threading.Thread(target=drop, args=(bucket, theirs, their_files))
    dropping.start()
    view = ended(client, mallory, import_id)
    dropping.join()
    took = time.monotonic() - began
    assert view["status"] == imports.FAILED, view
    assert "(import_compression_ratio)" in view["error"] and "decompression bomb" in view["error"], view
    assert [issue["code"] for issue in view["issues"]] == ["import_compression_ratio"]
    assert objects_of(bucket, target) == set()
    stats_when(api, theirs, {"images": 6, "labeled": 6, "issues": 0})
    assert objects_of(bucket, theirs) == set(their_files)
    peak = peak_rss(stack.state_dir / f"import-{import_id}-unpack-0.log")
    print(f"tar.gz bomb of {bomb.stat().st_size} bytes ({BOMB_BYTES} expanded): refused in {took:.1f} s, "
          f"the task's peak resident memory {peak / 1024 ** 2:.0f} MiB")
    assert peak < memory_limit("imports") / 8  # a small part of the job's limit (about 80 MiB at rest)


def test_a_tar_header_of_64_mib_is_refused_before_it_is_read(stack, client, bucket, streamed, folder, mallory):
    """tarfile reads a pax header whole: a header of 64 MiB (any size) of incompressible text passes every
    ratio check, and would be read into memory."""
    path = folder / "header.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("images/a.jpg")
        info.pax_headers = {"comment": os.urandom(32 * 1024 ** 2).hex()}
        image = generated_dataset(1, 0)["images/g00000.jpg"]
        info.size = len(image)
        tar.addfile(info, io.BytesIO(image))
    dataset = new_dataset(client, mallory)
    import_id = start_import(client, mallory, dataset, streamed.url("header.tar"))
    view = ended(client, mallory, import_id)
    assert view["status"] == imports.FAILED and "(import_tar_header_too_large)" in view["error"], view
    assert objects_of(bucket, dataset) == set()
    assert peak_rss(stack.state_dir / f"import-{import_id}-unpack-0.log") < memory_limit("imports") / 8


# ---- a zip whose end record claims a million entries ----------------------------------------

def zip_claiming(entries: int) -> bytes:
    """A real one-image zip whose zip64 end record claims `entries` (zipfile alone would read its one entry)."""
    data = zip_of({"images/a.jpg": generated_dataset(1, 0)["images/g00000.jpg"]})
    end = data.rfind(b"PK\x05\x06")
    _, _, _, _, _, size, offset, _ = struct.unpack_from("<4s4H2LH", data, end)
    end64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    record = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:end] + end64 + locator + record


def test_a_zip_claiming_a_million_entries_is_refused_from_its_end_record(stack, client, api, bucket, ranged, folder,
                                                                        mallory):
    archive = zip_claiming(1_000_000)
    assert len(zipfile.ZipFile(io.BytesIO(archive)).infolist()) == 1
    by_url, dropped = new_dataset(client, mallory), new_dataset(client, mallory)
    (folder / f"{by_url}.zip").write_bytes(archive)
    import_id = start_import(client, mallory, by_url, ranged.url(f"{by_url}.zip"))
    view = ended(client, mallory, import_id)
    assert view["status"] == imports.FAILED and "lists 1000000 entries; the limit is" in view["error"], view
    assert peak_rss(stack.state_dir / f"import-{import_id}-unpack-0.log") < memory_limit("imports") / 8
    assert [issue["code"] for issue in view["issues"]] == ["import_too_many_files"]
    bucket.blob(f"imports/{dropped}.zip").upload_from_string(archive)
    stats_when(api, dropped, {"issues": 1})
    assert issues_by_file(api, dropped) == {f"imports/{dropped}.zip": [("import_too_many_files", None)]}
    assert objects_of(bucket, by_url) == objects_of(bucket, dropped) == set()


# ---- a 500 MiB COCO file ----------------------------------------------------------------

def coco_zip(path: Path, json_bytes: int) -> Path:
    """A zip of one image and a real COCO file of `json_bytes` (deflated ~10 times: no compression-ratio
    refusal), written in a few seconds from one MiB of varied annotations repeated."""
    records = ",".join(json.dumps({"id": n, "image_id": 0, "category_id": 1 + n % 3, "iscrowd": 0,
                                   "bbox": [n % 97 + 0.5, n % 89 + 0.25, n % 13 + 1.0, n % 7 + 1.0]})
                       for n in range(12_000))[:1024 * 1024 - 1]
    records = records[:records.rfind("},") + 1] + ","
    head = json.dumps({"categories": [{"id": k, "name": f"c{k}"} for k in (1, 2, 3)],
                       "images": [{"id": 0, "file_name": "a.jpg", "width": 128, "height": 96}]})[:-1]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("train/a.jpg", generated_dataset(1, 0)["images/g00000.jpg"])
        with archive.open("train/_annotations.coco.json", "w", force_zip64=True) as out:
            out.write(head.encode() + b', "annotations": [')
            piece, written = records.encode(), 0
            while written + len(piece) < json_bytes:
                out.write(piece)
                written += len(piece)
            out.write(b'{"id": 0, "image_id": 0, "category_id": 1, "bbox": [1, 1, 2, 2]}]}')
    return path


def test_a_500_mib_coco_file_is_refused_before_it_is_read(stack, client, bucket, ranged, folder, mallory):
    dataset = new_dataset(client, mallory)
    archive = coco_zip(folder / f"{dataset}.zip", 500 * 1024 ** 2)
    with zipfile.ZipFile(archive) as written:
        size = written.getinfo("train/_annotations.coco.json").file_size
    assert size > 500 * 1024 ** 2 - 1024 ** 2 and archive.stat().st_size < 100 * 1024 ** 2
    import_id = start_import(client, mallory, dataset, ranged.url(f"{dataset}.zip"))
    view = ended(client, mallory, import_id)
    assert view["status"] == imports.FAILED, view
    assert f"train/_annotations.coco.json is {size} bytes of COCO JSON; an import parses at most" in view["error"]
    assert [issue["code"] for issue in view["issues"]] == ["import_coco_too_large"]
    assert objects_of(bucket, dataset) == set()
    assert peak_rss(stack.state_dir / f"import-{import_id}-unpack-0.log") < memory_limit("imports") / 8


# ---- imports of what is not the dataset's ---------------------------------------------------

def test_a_dataset_cannot_import_another_datasets_drop_by_name_prefix(client, api, bucket, mallory, alice):
    mine = new_dataset(client, mallory)
    theirs = new_dataset(client, alice, f"{mine}.tar")
    bucket.blob(f"imports/{theirs}.zip").upload_from_string(zip_of(generated_dataset(2, 0, seed=73)))
    stats_when(api, theirs, {"images": 2})
    response = call(client, "POST", f"/datasets/{mine}/imports", mallory,
                    {"url": f"gs://{bucket.name}/imports/{theirs}.zip"})
    assert response.status_code == 400, response.get_json()
    assert f"reads only imports/{mine}.zip" in response.get_json()["error"]["message"]
    assert objects_of(bucket, mine) == set()


def test_another_bucket_is_not_read_with_the_importers_account(client, bucket, mallory):
    other = storage.client().create_bucket(f"other-{uuid.uuid4().hex[:8]}")
    other.blob("private/set.zip").upload_from_string(zip_of(generated_dataset(1, 0, seed=74)))
    mine = new_dataset(client, mallory)
    response = call(client, "POST", f"/datasets/{mine}/imports", mallory, {"url": f"gs://{other.name}/private/set.zip"})
    assert response.status_code == 400, response.get_json()
    message = response.get_json()["error"]["message"]
    assert f"gs://{other.name} is not a bucket imports may read" in message and "signed URL" in message
    assert f"gcloud storage sign-url gs://{other.name}/private/set.zip" in message
    listed = call(client, "GET", f"/imports?dataset={mine}", mallory).get_json()
    assert listed["imports"] == [] and objects_of(bucket, mine) == set()


# ---- an export whose names would escape -------------------------------------------------------

def test_an_export_of_odd_object_names_unzips_inside_its_folder(client, api, bucket, mallory, tmp_path):
    dataset = new_dataset(client, mallory)
    images = generated_dataset(3, 0, seed=75)
    odd = {"images/../../../escape.jpg": "g00000", "images/train/..\\..\\..\\win.jpg": "g00001",
           "images/train/C:\\boot.jpg": "g00002"}
    files = {"data.yaml": images["data.yaml"]}
    for name, generated in odd.items():
        files[name] = images[f"images/{generated}.jpg"]
        files[layout.relative_label_path(name)] = images[f"labels/{generated}.txt"]
    drop(bucket, dataset, files)  # an administrator's names: uploads through the API refuse them
    stats_when(api, dataset, {"images": 3, "labeled": 3})
    response = call(client, "POST", f"/datasets/{dataset}/exports", mallory, {"format": "yolo"})
    assert response.status_code == 202, response.get_json()
    export_id = response.get_json()["export_id"]
    export = wait_for(lambda: call(client, "GET", f"/exports/{export_id}", mallory).get_json(),
                      lambda view: view.get("status") in ("completed", "failed"), DEADLINE, f"export {export_id}")
    assert export["status"] == "completed", export
    with zipfile.ZipFile(io.BytesIO(storage.blob_at(export["uri"]).download_as_bytes())) as archive:
        names = archive.namelist()
        root = tmp_path / "unzipped"
        for name in names:  # as a naive unzip would: each name joined to the folder as it is
            path = Path(root, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(name))
    assert all(".." not in name.split("/") and not name.startswith("/") and "\\" not in name and ":" not in name
               for name in names), names
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(name.startswith("unzipped/") for name in written), written
    assert len([name for name in names if name.startswith("images/")]) == 3, names
