"""Reading an archive from a URL, against real loopback servers (infra/local/archive_server.py).

Needs loopback networking only, not the emulator stack. The refusals are the
point: loopback unless allowed, the metadata server always, schemes other
than http(s) in a redirect, and a server that lies about a length.
"""
from __future__ import annotations

import io
import random
import re
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

from common.cloud import remote_source
from common.cloud.remote_source import SourceError, SourceRefused
from infra.local.archive_server import ArchiveServer


@pytest.fixture
def loopback_allowed(monkeypatch):
    monkeypatch.setenv("IMPORT_ALLOW_LOOPBACK", "1")


@pytest.fixture
def loopback_refused(monkeypatch):
    monkeypatch.delenv("IMPORT_ALLOW_LOOPBACK", raising=False)


def _bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _write_zip(path: Path, members: dict[str, bytes], zip64: bool = False) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            with archive.open(name, "w", force_zip64=zip64) as member:
                member.write(data)


@pytest.fixture
def folder(tmp_path) -> Path:
    members = {f"images/{index:03}.jpg": _bytes(3000 + index * 37, index) for index in range(150)}
    members["labels/all.txt"] = b"0 0.5 0.5 0.1 0.1\n" * 2000
    _write_zip(tmp_path / "set.zip", members)
    _write_zip(tmp_path / "set64.zip", members, zip64=True)
    (tmp_path / "small.bin").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    with tarfile.open(tmp_path / "set.tar.gz", "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return tmp_path


def _members(folder: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(folder / "set.zip") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# ---- probing ---------------------------------------------------------------------------

def test_a_probe_of_a_server_with_ranges_says_its_size_and_first_bytes(folder, loopback_allowed):
    data = (folder / "set.zip").read_bytes()
    with ArchiveServer(folder) as server:
        found = remote_source.probe(server.url("set.zip"))
        assert server.requests == 1
    assert found == remote_source.Probe(server.url("set.zip"), len(data), True, data[:512])


def test_a_probe_of_a_server_without_ranges_reads_only_the_first_bytes(folder, loopback_allowed):
    data = (folder / "set.tar.gz").read_bytes()
    with ArchiveServer(folder, ranges=False) as server:
        found = remote_source.probe(server.url("set.tar.gz"))
    assert found == remote_source.Probe(server.url("set.tar.gz"), len(data), False, data[:512])


@pytest.mark.parametrize("ranges", [True, False])
def test_a_probe_of_a_file_shorter_than_the_head_gets_all_of_it(folder, loopback_allowed, ranges):
    with ArchiveServer(folder, ranges=ranges) as server:
        found = remote_source.probe(server.url("small.bin"))
    assert (found.size, found.ranges, found.head) == (22, ranges, b"PK\x05\x06" + b"\x00" * 18)


def test_a_probe_follows_redirects_and_reports_the_final_url(folder, loopback_allowed):
    with ArchiveServer(folder, redirects={"old.zip": "/set.zip"}) as server:
        found = remote_source.probe(server.url("old.zip"))
        assert server.requests == 2
    assert found.url == server.url("set.zip")
    assert found.size == (folder / "set.zip").stat().st_size


def test_a_probe_of_a_missing_file_says_the_status(folder, loopback_allowed):
    with ArchiveServer(folder) as server, pytest.raises(SourceError, match="answered 404 Not Found"):
        remote_source.probe(server.url("nothing.zip"))


# ---- reading a zip by ranges -----------------------------------------------------------

@pytest.mark.parametrize("name", ["set.zip", "set64.zip"])
def test_zipfile_reads_every_member_through_range_requests(folder, loopback_allowed, name):
    expected = _members(folder)
    with ArchiveServer(folder) as server:
        found = remote_source.probe(server.url(name))
        with remote_source.open_ranges(found.url, found.size, buffer_bytes=64 * 1024) as file, \
                zipfile.ZipFile(file) as archive:
            read = {info.filename: archive.read(info) for info in archive.infolist()}
        assert server.requests > found.size // (64 * 1024)  # it read in pieces, not in one
    assert read == expected


def test_zipfile_reads_a_zip64_archive_of_more_than_65535_members(tmp_path, loopback_allowed):
    count = 70_000
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as archive:
        for index in range(count):
            archive.writestr(f"{index}.txt", str(index))
    with ArchiveServer(tmp_path) as server:
        size = (tmp_path / "many.zip").stat().st_size
        with remote_source.open_ranges(server.url("many.zip"), size) as file, zipfile.ZipFile(file) as archive:
            names = archive.namelist()
            sample = {name: archive.read(name) for name in names[::997] + names[-3:]}
    assert len(names) == count
    assert sample == {name: name.removesuffix(".txt").encode() for name in sample}


def test_a_range_file_seeks_and_reads_exact_bytes(folder, loopback_allowed):
    data = (folder / "set.zip").read_bytes()
    with ArchiveServer(folder) as server, \
            remote_source.open_ranges(server.url("set.zip"), len(data), buffer_bytes=4096) as file:
        assert file.seek(-100, io.SEEK_END) == len(data) - 100
        assert file.read() == data[-100:]
        assert file.read(10) == b""
        file.seek(12345)
        assert file.read(50_000) == data[12345:62345]
        assert file.tell() == 62345


def test_a_server_announcing_more_than_it_has_fails_the_zip_read(folder, loopback_allowed):
    size = (folder / "set.zip").stat().st_size
    with ArchiveServer(folder, announced_size={"set.zip": size + 1000}) as server:
        found = remote_source.probe(server.url("set.zip"))
        assert (found.size, found.ranges) == (size + 1000, True)
        with pytest.raises(SourceError, match="announced 22 bytes and sent 0: its announced length or range"), \
                remote_source.open_ranges(found.url, found.size) as file:
            zipfile.ZipFile(file)


def test_a_content_range_total_other_than_the_size_given_fails_the_read(folder, loopback_allowed):
    size = (folder / "set.zip").stat().st_size
    with ArchiveServer(folder, announced_size=lambda name: size + 1) as server, \
            remote_source.open_ranges(server.url("set.zip"), size) as file:
        with pytest.raises(SourceError, match=f"answered bytes 0-{size - 1}/{size + 1} to a request for "
                                              f"bytes 0-{size - 1} of {size}: the server's announced length"):
            file.read()


def test_a_size_beyond_the_file_gets_416_and_fails_the_read(folder, loopback_allowed):
    size = (folder / "set.zip").stat().st_size
    with ArchiveServer(folder) as server, \
            remote_source.open_ranges(server.url("set.zip"), size + 10_000, buffer_bytes=4096) as file:
        file.seek(size + 100)
        with pytest.raises(SourceError, match="answered 416"):
            file.read(10)


def test_a_server_ignoring_ranges_fails_the_range_read(folder, loopback_allowed):
    size = (folder / "set.zip").stat().st_size
    with ArchiveServer(folder, ranges=False) as server, \
            remote_source.open_ranges(server.url("set.zip"), size) as file:
        with pytest.raises(SourceError, match="answered 200 instead of 206"):
            file.read(100)


def test_transient_failures_are_retried(folder, loopback_allowed):
    data = (folder / "set.zip").read_bytes()
    with ArchiveServer(folder, transient_failures=2) as server:
        with remote_source.open_ranges(server.url("set.zip"), len(data)) as file:
            assert file.read() == data
        assert server.requests == 3


def test_a_failure_that_lasts_ends_in_a_source_error(folder, loopback_allowed):
    with ArchiveServer(folder, transient_failures=3) as server:
        with pytest.raises(SourceError, match="failed 3 times, last: .* answered 503 Service Unavailable"):
            remote_source.probe(server.url("set.zip"))
        assert server.requests == 3


# ---- reading a stream ------------------------------------------------------------------

@pytest.mark.parametrize("ranges", [True, False])
def test_a_stream_reads_a_whole_tar_gz(folder, loopback_allowed, ranges):
    expected = _members(folder)
    with ArchiveServer(folder, ranges=ranges) as server, \
            remote_source.open_stream(server.url("set.tar.gz"), max_seconds=60) as stream, \
            tarfile.open(fileobj=stream, mode="r|gz") as archive:
        read = {member.name: archive.extractfile(member).read() for member in archive}
    assert read == expected


def test_a_stream_gives_the_exact_bytes(folder, loopback_allowed):
    data = (folder / "set.tar.gz").read_bytes()
    with ArchiveServer(folder, ranges=False) as server, \
            remote_source.open_stream(server.url("set.tar.gz"), max_seconds=60) as stream:
        assert stream.read() == data
        assert stream.read(1) == b""


def test_a_stream_from_a_server_announcing_more_than_it_sends_fails(folder, loopback_allowed):
    size = (folder / "set.tar.gz").stat().st_size
    with ArchiveServer(folder, ranges=False, announced_size={"set.tar.gz": size + 5}) as server, \
            remote_source.open_stream(server.url("set.tar.gz"), max_seconds=60) as stream:
        with pytest.raises(SourceError, match=f"the server announced {size + 5} bytes and sent {size}:"):
            while stream.read(65536):
                pass


def test_a_stream_through_tarfile_from_a_lying_server_fails_rather_than_ending_short(folder, loopback_allowed):
    size = (folder / "set.tar.gz").stat().st_size
    with ArchiveServer(folder, ranges=False, announced_size={"set.tar.gz": size * 2}) as server, \
            remote_source.open_stream(server.url("set.tar.gz"), max_seconds=60) as stream:
        with pytest.raises(SourceError, match=f"announced {size * 2} bytes and sent {size}"):
            with tarfile.open(fileobj=stream, mode="r|gz") as archive:
                for member in archive:
                    archive.extractfile(member).read()
                stream.read()  # what follows the tar's end: the rest the server announced


def test_a_stream_past_its_time_fails(folder, loopback_allowed):
    with ArchiveServer(folder) as server, \
            remote_source.open_stream(server.url("set.tar.gz"), max_seconds=0) as stream:
        with pytest.raises(SourceError, match="took more than 0 s"):
            stream.read()


def test_a_source_larger_than_the_import_limit_is_refused(folder, loopback_allowed, monkeypatch):
    size = (folder / "set.zip").stat().st_size
    monkeypatch.setenv("IMPORT_MAX_BYTES", str(size - 1))
    with ArchiveServer(folder) as server:
        url = server.url("set.zip")
        message = f"is {size} bytes; an import reads at most {size - 1} bytes"
        with pytest.raises(SourceError, match=message):
            remote_source.probe(url)
        with pytest.raises(SourceError, match=message):
            remote_source.open_ranges(url, size)
        with pytest.raises(SourceError, match=message):
            remote_source.open_stream(url, max_seconds=60)


# ---- where a request may go ------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_unless_allowed(folder, loopback_refused, host):
    with ArchiveServer(folder) as server:
        url = f"http://{host}:{server.port}/set.zip"
        with pytest.raises(SourceRefused, match=rf"^{url} resolves to (127\.0\.0\.1|::1), a loopback address: "
                                                "imports read only public addresses$"):
            remote_source.probe(url)
        with pytest.raises(SourceRefused, match="a loopback address"):
            remote_source.open_stream(url, max_seconds=60)
        with pytest.raises(SourceRefused, match="a loopback address"), remote_source.open_ranges(url, 100) as file:
            file.read(10)
        assert server.requests == 0


def test_the_connection_itself_is_checked_after_connecting(folder, loopback_refused):
    """What stops DNS rebinding: the session refuses a peer even when no check ran before."""
    with ArchiveServer(folder) as server:
        with remote_source.checked_session() as session, \
                pytest.raises(SourceRefused, match="connected to 127.0.0.1, a loopback address"):
            session.get(server.url("set.zip"), timeout=10)
        assert server.requests == 0


def test_a_redirect_to_the_metadata_server_is_refused_even_with_loopback_allowed(folder, loopback_allowed):
    target = "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"
    with ArchiveServer(folder, redirects={"set.zip": target}) as server:
        url = server.url("set.zip")
        with pytest.raises(SourceRefused, match=f"^{url} redirects to {target}, which resolves to 169.254.169.254, "
                                                "a link-local address: imports read only public addresses$"):
            remote_source.probe(url)
        with pytest.raises(SourceRefused, match="169.254.169.254, a link-local address"):
            remote_source.open_stream(url, max_seconds=60)
        assert server.requests == 2  # the two redirects, and nothing else anywhere


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/set.zip", "gs://bucket/set.zip",
                                    "http://user:pass@127.0.0.1/set.zip", "http://10.1.2.3/set.zip",
                                    "http://[::ffff:169.254.169.254]/", "http://[fe80::1]/"])
def test_a_redirect_anywhere_but_a_public_http_url_is_refused(folder, loopback_allowed, target):
    with ArchiveServer(folder, redirects={"set.zip": target}) as server:
        with pytest.raises(SourceRefused, match=f"redirects to {re.escape(target)}"):
            remote_source.probe(server.url("set.zip"))


def test_five_redirects_are_followed_and_a_sixth_is_not(folder, loopback_allowed):
    chain = {f"hop{index}": f"/hop{index + 1}" for index in range(1, 6)} | {"hop6": "/set.zip"}
    with ArchiveServer(folder, redirects=chain) as server:
        assert remote_source.probe(server.url("hop2")).url == server.url("set.zip")
        with pytest.raises(SourceError, match="redirects more than 5 times"):
            remote_source.probe(server.url("hop1"))


def test_gs_urls_are_not_read_over_the_network(loopback_allowed):
    with pytest.raises(SourceRefused, match="gs:// archives are read from the bucket"):
        remote_source.probe("gs://bucket/set.zip")


# ---- the server itself -----------------------------------------------------------------

def test_the_archive_server_answers_head_and_ranges_as_announced(folder):
    size = (folder / "set.zip").stat().st_size
    with ArchiveServer(folder) as server:
        with urllib.request.urlopen(urllib.request.Request(server.url("set.zip"), method="HEAD")) as answer:
            assert (answer.status, answer.headers["Content-Length"], answer.read()) == (200, str(size), b"")
            assert answer.headers["Accept-Ranges"] == "bytes"
        request = urllib.request.Request(server.url("set.zip"), headers={"Range": "bytes=-10"})
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 206
            assert answer.headers["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"
            assert answer.read() == (folder / "set.zip").read_bytes()[-10:]
        assert server.requests == 2
