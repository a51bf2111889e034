"""`yolodrop push` as a pipeline, against the local stack: upload sessions asked for in growing batches while
the first PUTs run, data.yaml sent after every other file, a second push sending only what changed; and the
API's MD5 check (one listing of a request's names) exact when those names are far apart."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from infra.local.sample import generated_dataset
from yolodrop_cli import files, push
from yolodrop_cli.api import Api

FILES = generated_dataset(150, 0, size=(32, 24))  # 150 images, 150 labels, data.yaml


class RecordingApi(Api):
    """The command line's own client, noting how many files each upload request asked sessions for."""
    def __init__(self, url: str, key: str, log: list):
        super().__init__(url, key)
        self.log = log

    def post(self, path: str, body: dict | None = None, **kwargs) -> dict:
        answer = super().post(path, body, **kwargs)
        if path.endswith("/uploads"):
            self.log.append(("sessions", len(body["files"])))
        return answer


class RecordedProgress(push.Progress):
    def __init__(self, log: list):
        self.log = log

    def finished(self, item: files.Item) -> None:
        self.log.append(("finished", item.path))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pipeline")
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def pushed_with_log(stack, folder: Path, dataset: str) -> tuple[push.Pushed, list]:
    log: list = []
    api = RecordingApi(stack.env()["API_URL"], stack.token, log)
    push.ensure_dataset(api, dataset)
    return push.push(api, dataset, files.plan(folder).items, RecordedProgress(log), workers=8), log


def test_sessions_come_in_growing_batches_while_the_first_files_upload_and_data_yaml_goes_last(stack, folder):
    dataset = f"pipe-{uuid.uuid4().hex[:8]}"
    pushed, log = pushed_with_log(stack, folder, dataset)
    assert sorted(pushed.uploaded) == sorted(FILES) and pushed.unchanged == []
    requests = [size for what, size in log if what == "sessions"]
    assert requests == [32, 64, 128, 76, 1]  # 300 files from FIRST_BATCH up, then data.yaml alone
    third_request = log.index(("sessions", 128))
    assert len([entry for entry in log[:third_request] if entry[0] == "finished"]) >= 32  # uploading meanwhile
    finished = [path for what, path in log if what == "finished"]
    assert finished[-1] == "data.yaml" and log.index(("sessions", 1)) > log.index(("finished", finished[-2]))


def test_a_second_push_sends_only_the_file_that_changed(stack, folder):
    dataset = f"pipe-{uuid.uuid4().hex[:8]}"
    pushed_with_log(stack, folder, dataset)
    changed = sorted(path for path in FILES if path.startswith("labels/"))[7]
    (folder / changed).write_text("0 0.5 0.5 0.25 0.25\n")
    try:
        again, _ = pushed_with_log(stack, folder, dataset)
    finally:
        (folder / changed).write_bytes(FILES[changed])
    assert again.uploaded == [changed] and len(again.unchanged) == len(FILES) - 1


def test_the_md5_check_is_exact_for_names_far_apart_in_a_full_dataset(stack, folder):
    dataset = f"pipe-{uuid.uuid4().hex[:8]}"
    pushed_with_log(stack, folder, dataset)  # 301 objects between the names asked about below
    items = {item.path: item for item in files.plan(folder).items}
    images = sorted(path for path in items if path.startswith("images/"))
    labels = sorted(path for path in items if path.startswith("labels/"))
    declared = [(images[0], items[images[0]].md5()), (images[90], items[images[90]].md5()),
                (labels[140], "AAAAAAAAAAAAAAAAAAAAAA=="),  # there, other content
                ("images/zzz-not-there.jpg", items[images[1]].md5()), (labels[3], None)]
    api = Api(stack.env()["API_URL"], stack.token)
    answer = api.post(f"/datasets/{dataset}/uploads", {"files": [
        {"path": path, "size": 10, "content_type": push.content_type(path), **({"md5": md5} if md5 else {})}
        for path, md5 in declared]})
    assert [(session["path"], session["exists"]) for session in answer["uploads"]] == \
        [(images[0], True), (images[90], True), (labels[140], False), ("images/zzz-not-there.jpg", False),
         (labels[3], False)]
    assert all(session.get("upload_url") for session in answer["uploads"][2:])
