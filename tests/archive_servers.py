"""Archive servers on loopback for the import tests, one folder each per test module: `ranged` answers range
requests, `streamed` only whole bodies. Imported by a module as fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.archive_server import ArchiveServer


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("archives")


@pytest.fixture(scope="module")
def ranged(folder):
    with ArchiveServer(folder) as server:
        yield server


@pytest.fixture(scope="module")
def streamed(folder):
    with ArchiveServer(folder, ranges=False) as server:
        yield server
