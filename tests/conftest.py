"""The local stack for integration tests: started once per session on free
ports (so it runs beside a `make up` stack), torn down at the end."""
from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

from infra.local import stack as local_stack
from infra.local.client import ApiClient
from infra.local.sample import ultralytics_photo


STACK_SUITES = ("tests/integration", "tests/security", "tests/formats")  # the suites that need the local stack


def pytest_collection_modifyitems(items):
    for item in items:
        if any(suite in str(item.fspath) for suite in STACK_SUITES):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack():
    running = local_stack.Stack(state_dir=Path(tempfile.mkdtemp(prefix="yolodrop-test-")),
                                ports=local_stack.free_ports())
    saved = dict(os.environ)
    os.environ["DATASET_JOB_CHUNK_SIZE"] = "20"  # small chunks, so that small test datasets fan out as large ones do
    os.environ["EXPORT_PART_FILES"] = "3"  # and small export parts, so that every export is composed of several
    os.environ["IMPORT_INLINE_MAX_BYTES"] = str(8 * 1024 ** 2)  # a dropped archive above 8 MiB starts the import job
    local_stack.start(running)
    os.environ.update(running.env())
    try:
        yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)
        local_stack.discard(running)


@pytest.fixture(scope="session")
def api(stack) -> ApiClient:
    return ApiClient(stack.env()["API_URL"], stack.token)


@pytest.fixture(scope="session")
def bucket(stack):
    from common.cloud import storage
    return storage.bucket()


@pytest.fixture(scope="session")
def bus_photo() -> bytes:
    """Ultralytics' bus.jpg (810x1080), read at first use: it may download the Ultralytics wheel, which
    collection must never do (`make unit` collects every module with the network cut)."""
    return ultralytics_photo("bus.jpg")


@pytest.fixture
def dataset() -> str:
    """A dataset name no other test uses."""
    return f"t-{uuid.uuid4().hex[:10]}"
