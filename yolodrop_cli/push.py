"""`yolodrop push`: upload a plan's files through the API's upload sessions,
in parallel, skipping what is already there, data.yaml last; then wait until
the index has every file it was sent.

A pipeline: MD5s are computed on threads of their own, sessions are asked for
in batches that grow from FIRST_BATCH to BATCH (the first PUTs start after a
short request), each batch's PUTs go to the upload threads as soon as its
sessions are there, and the next batch is asked for while they run, at most
one batch ahead of the PUTs still waiting."""
from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterator

import requests
from requests.adapters import HTTPAdapter

from yolodrop_cli import files
from yolodrop_cli.api import Api, ApiFailure, poll

BATCH = 500          # files per POST /uploads (the API's MAX_UPLOAD_FILES; the admin is not rate-limited, people are)
FIRST_BATCH = 32     # files of the first POST /uploads; each next one twice the last, up to BATCH
HASH_THREADS = 4     # MD5s computed ahead of the session requests, beside the upload threads
BATCH_BYTES = 8 * 1024 ** 3  # declared bytes per POST /uploads, under the API's MAX_UPLOAD_REQUEST_BYTES (10 GiB)
PUT_ATTEMPTS = 3
PUT_TIMEOUT_SECONDS = 600
CONTENT_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
                 "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff", "txt": "text/plain",
                 "yaml": "application/yaml", "zip": "application/zip"}


@dataclass
class Pushed:
    """What a push did: sent, skipped (already there), and the generations the index must reach."""
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    generations: dict[str, int] = field(default_factory=dict)  # gs object name -> generation written
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, item: files.Item, session: dict, generation: int | None) -> None:
        with self.lock:
            if generation is None:
                self.unchanged.append(item.path)
                return
            self.uploaded.append(item.path)
            self.bytes_sent += item.size
            if not item.archive:  # an archive is awaited by its images, not by its own generation
                self.generations[session["object"].split("/", 3)[3]] = generation


class Progress:
    """What push reports as it goes; the command line draws it (a no-op here)."""
    def sent(self, item: files.Item, size: int) -> None: ...  # bytes of the item sent (negative: sent again)

    def finished(self, item: files.Item) -> None: ...        # uploaded, or already there


def ensure_dataset(api: Api, dataset: str) -> None:
    try:
        api.get(f"/datasets/{dataset}")
    except ApiFailure as failure:
        if failure.status != 404:
            raise
        api.post("/datasets", {"id": dataset})


def push(api: Api, dataset: str, items: list[files.Item], progress: Progress, workers: int = 16) -> Pushed:
    pushed = Pushed()
    uploads = upload_session(workers)
    first = [item for item in items if not item.is_data_yaml]
    last = [item for item in items if item.is_data_yaml]  # classes last: every label is then checked once
    with ThreadPoolExecutor(max_workers=workers) as pool, ThreadPoolExecutor(max_workers=HASH_THREADS) as hashing:
        try:
            for group in (first, last):
                _push_group(api, dataset, group, pool, hashing, lambda item, session: _send(
                    uploads, item, session, pushed, progress))
        except BaseException:
            for executor in (pool, hashing):  # what was not begun is not begun
                executor.shutdown(wait=False, cancel_futures=True)
            raise
    return pushed


def _push_group(api: Api, dataset: str, group: list[files.Item], pool: ThreadPoolExecutor,
                hashing: ThreadPoolExecutor, send: Callable[[files.Item, dict], None]) -> None:
    """Sessions batch after batch, each batch's PUTs queued as soon as they are there; the next batch is asked
    for once the one before has been sent, so at most two batches of sessions wait for the upload threads."""
    hashes = hashing.map(lambda item: item.md5(), group)  # in order, computed ahead
    previous: list[Future] = []
    for batch in _batches(group):
        sessions = _sessions(api, dataset, batch, [next(hashes) for _ in batch])
        current = [pool.submit(send, item, session) for item, session in zip(batch, sessions)]
        _wait_for(previous)
        previous = current
    _wait_for(previous)


def upload_session(workers: int) -> requests.Session:
    """The session the PUTs go through: a kept connection per upload thread (requests keeps 10 by default,
    closing the others after each request), and the environment read once when it names no proxy or .netrc
    (requests otherwise reads it again for every request). No API key: the upload URLs carry their own
    authority."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=workers)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if not _environment_routes_http():
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.trust_env = False
    return session


def _environment_routes_http() -> bool:
    """Proxies (which depend on each URL) or .netrc credentials: left to requests, read per request."""
    return (any(name.lower().endswith("_proxy") for name in os.environ) or bool(os.environ.get("NETRC"))
            or (Path.home() / ".netrc").exists())


def _wait_for(futures: list[Future]) -> None:
    """Until every one is done; the first failure raised as soon as it happens."""
    done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    for future in futures:
        error = future.exception() if future in done else None
        if error is not None:
            raise error


def _batches(group: list[files.Item]) -> Iterator[list[files.Item]]:
    """Each request's files: FIRST_BATCH, then twice as many each time up to BATCH, and at most BATCH_BYTES
    declared (one file larger goes alone)."""
    start, size, limit = 0, 0, FIRST_BATCH
    for index, item in enumerate(group):
        if index > start and (index - start == limit or size + item.size > BATCH_BYTES):
            yield group[start:index]
            start, size, limit = index, 0, min(2 * limit, BATCH)
        size += item.size
    if start < len(group):
        yield group[start:]


def _sessions(api: Api, dataset: str, batch: list[files.Item], md5s: list[str]) -> list[dict]:
    body = {"files": [{"path": item.path, "size": item.size, "md5": md5, "content_type": content_type(item.path),
                       **({"archive": True} if item.archive else {})} for item, md5 in zip(batch, md5s)]}
    return api.post(f"/datasets/{dataset}/uploads", body)["uploads"]


def content_type(path: str) -> str:
    return CONTENT_TYPES.get(path.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def _send(uploads: requests.Session, item: files.Item, session: dict, pushed: Pushed, progress: Progress) -> None:
    if session.get("exists"):
        pushed.record(item, session, None)
        progress.sent(item, item.size)
    else:
        pushed.record(item, session, _put(uploads, item, session["upload_url"], progress))
    progress.finished(item)


def _put(uploads: requests.Session, item: files.Item, url: str, progress: Progress) -> int:
    """PUT the bytes to the session URL (again from the start after a broken connection); the generation written."""
    for attempt in range(1, PUT_ATTEMPTS + 1):
        body = _Counted(item, progress)
        try:
            response = uploads.put(url, data=body, headers={"Content-Length": str(item.size)},
                                   timeout=PUT_TIMEOUT_SECONDS)
        except requests.ConnectionError:
            progress.sent(item, -body.sent)
            if attempt == PUT_ATTEMPTS:
                raise
            continue
        if response.status_code not in (200, 201):
            raise ApiFailure(response.status_code, f"the upload of {item.path} was refused: {response.text[:200]}")
        return int(response.json()["generation"])
    raise AssertionError("unreachable")


class _Counted:
    """A file (or bytes) read by requests in blocks, each block counted as sent."""
    def __init__(self, item: files.Item, progress: Progress):
        self.item, self.progress, self.sent = item, progress, 0
        self.reader = item.open()

    def __len__(self) -> int:
        return self.item.size

    def read(self, size: int = -1) -> bytes:
        block = self.reader.read(size)
        if not block:
            self.reader.close()
        self.sent += len(block)
        self.progress.sent(self.item, len(block))
        return block


def wait_for_index(api: Api, dataset: str, pushed: Pushed, archive_images: int, timeout: float,
                   on_poll: Callable[[int, int], None] = lambda seen, total: None) -> dict:
    """Poll until the index holds every generation written (images, labels, data.yaml), an archive's
    images are all there, and no revalidation job is pending. The dataset view, then."""
    pending = dict(pushed.generations)
    total = len(pending)

    def probe() -> dict | None:
        _drop_indexed(api, dataset, pending)
        on_poll(total - len(pending), total)
        if pending:
            return None
        view = api.get(f"/datasets/{dataset}")
        return view if view.get("pending_jobs", 0) == 0 and view["stats"]["images"] >= archive_images else None

    view = poll(probe, lambda view: view is not None, timeout, f"the index of {dataset}")
    assert view is not None  # poll returns only what is done
    return view


def _drop_indexed(api: Api, dataset: str, pending: dict[str, int]) -> None:
    """Remove from `pending` every object whose generation (or a newer one) the index shows: for data.yaml,
    the generation ingest applied (indexed_generation), not the bucket object's."""
    yaml = [name for name in pending if files.kind_of(name.split("/", 2)[2]) == "data_yaml"]
    if yaml and api.get(f"/datasets/{dataset}/classes").get("indexed_generation", 0) >= pending[yaml[0]]:
        del pending[yaml[0]]
    if not pending or list(pending) == yaml:
        return
    for status in (None, "label_only"):
        for view in api.pages(f"/datasets/{dataset}/images", "images", page_size=1000, status=status):
            for name, generation in ((view["path"], view.get("image_generation")),
                                     (view.get("label_path"), view.get("label_generation"))):
                if name in pending and (generation or 0) >= pending[name]:
                    del pending[name]
