"""An import's source URL: what it may be, what its name and first bytes say, where it may connect."""
from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from common.domain import source_urls
from common.domain.source_urls import InvalidSource, SourceUrl

# ---- addresses -------------------------------------------------------------------------

REFUSED_ALWAYS = [
    ("10.0.0.1", "a private address"),
    ("172.16.0.1", "a private address"),
    ("192.168.1.1", "a private address"),
    ("169.254.169.254", "a link-local address"),          # the metadata server
    ("::ffff:169.254.169.254", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("fe80::1%eth0", "a link-local address"),
    ("fc00::1", "a unique-local address"),
    ("fd12:3456::1", "a unique-local address"),
    ("100.64.0.1", "a shared (carrier-grade NAT) address"),
    ("0.0.0.0", "an unspecified address"),
    ("::", "an unspecified address"),
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("240.0.0.1", None),                                  # reserved; which word Python's lists give varies
    ("255.255.255.255", None),
    ("2002:a9fe:a9fe::1", "a link-local address"),        # 6to4 carrying 169.254.169.254
    ("::ffff:10.0.0.1", "a private address"),
    ("not-an-address", "not an IP address"),
    ("", "not an IP address"),
]
LOOPBACK = ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"]
PUBLIC = ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "142.250.74.46"]


@pytest.mark.parametrize("allow_loopback", [False, True])
@pytest.mark.parametrize("address,reason", REFUSED_ALWAYS)
def test_private_link_local_and_special_addresses_are_refused_even_with_loopback_allowed(address, reason,
                                                                                         allow_loopback):
    assert source_urls.is_allowed_address(address, allow_loopback) is False
    assert source_urls.refusal(address, allow_loopback) == reason or (reason is None and
                                                                      source_urls.refusal(address, allow_loopback))


@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_is_allowed_only_when_allowed(address):
    assert source_urls.is_allowed_address(address, allow_loopback=False) is False
    assert source_urls.refusal(address, allow_loopback=False) == "a loopback address"
    assert source_urls.is_allowed_address(address, allow_loopback=True) is True


@pytest.mark.parametrize("allow_loopback", [False, True])
@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address, allow_loopback):
    assert source_urls.is_allowed_address(address, allow_loopback) is True
    assert source_urls.refusal(address, allow_loopback) is None


# ---- parsing ---------------------------------------------------------------------------

@pytest.mark.parametrize("url,archive", [
    ("https://example.com/data/set.zip", "zip"),
    ("https://example.com/data/SET.ZIP?X-Goog-Signature=ab.tar", "zip"),
    ("http://example.com:8080/a.tar", "tar"),
    ("https://example.com/a.tar.gz", "tgz"),
    ("https://example.com/a.TGZ#part", "tgz"),
    ("https://example.com/download?id=12", None),
    ("https://example.com/a.gz", None),
    ("https://example.com/set%2Ezip", "zip"),
    ("https://[2001:db8::1]/a.zip", "zip"),
])
def test_an_http_url_announces_its_archive_by_the_path_extension(url, archive):
    assert source_urls.parse(url) == SourceUrl(url, url.split(":")[0], None, None, archive)


def test_a_gs_url_names_its_bucket_and_object():
    assert source_urls.parse("gs://my-bucket/imports/2024/set.tar.gz") == SourceUrl(
        "gs://my-bucket/imports/2024/set.tar.gz", "gs", "my-bucket", "imports/2024/set.tar.gz", "tgz")
    assert source_urls.parse("gs://my-bucket/imports/a.zip").bucket_object() == ("my-bucket", "imports/a.zip")
    assert source_urls.parse("https://example.com/a.zip").bucket_object() is None  # read over the network


def test_the_scheme_is_read_case_insensitively():
    assert source_urls.parse("HTTPS://example.com/a.zip").scheme == "https"


@pytest.mark.parametrize("given,archive", [("zip", "zip"), ("TAR", "tar"), ("tgz", "tgz"), ("tar.gz", "tgz"),
                                           (".zip", "zip")])
def test_an_archive_format_given_overrides_the_extension(given, archive):
    assert source_urls.parse("https://example.com/download.tar", archive_format=given).archive == archive


def test_an_unknown_archive_format_is_refused():
    with pytest.raises(InvalidSource, match="'rar' is not one of zip, tar, tgz"):
        source_urls.parse("https://example.com/a.zip", archive_format="rar")


@pytest.mark.parametrize("url,message", [
    ("ftp://example.com/a.zip", "must start with https://, http:// or gs:// \\(not ftp://\\)"),
    ("file:///etc/passwd", "must start with https://, http:// or gs:// \\(not file://\\)"),
    ("example.com/a.zip", "must start with https://, http:// or gs:// \\(not without a scheme\\)"),
    ("javascript:alert(1)", "not javascript://"),
    ("https://user:secret@example.com/a.zip", "user name or password"),
    ("https://token@example.com/a.zip", "user name or password"),
    ("gs://user@bucket/a.zip", "user name or password"),
    ("https:///a.zip", "names no host"),
    ("http://example.com:99999/a.zip", "port"),
    ("gs://bucket", "names a bucket and an object"),
    ("gs://bucket/", "names a bucket and an object"),
    ("gs:///a.zip", "names a bucket and an object"),
    ("gs://Bad_Bucket!/a.zip", "is not a bucket name"),
    ("https://example.com/a b.zip", "spaces or control characters"),
    ("https://example.com/a.zip\n", "spaces or control characters"),
    ("", "give the archive's URL"),
    ("https://example.com/" + "a" * 2030 + ".zip", "2054 characters long; at most 2048"),
])
def test_a_url_an_import_cannot_read_is_refused_with_what_to_change(url, message):
    with pytest.raises(InvalidSource, match=message):
        source_urls.parse(url)


def test_a_url_of_exactly_the_longest_length_is_accepted():
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/") - len(".zip")) + ".zip"
    assert len(url) == 2048
    assert source_urls.parse(url).archive == "zip"


def test_invalid_source_is_a_value_error():
    assert issubclass(InvalidSource, ValueError)


# ---- sniffing --------------------------------------------------------------------------

def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        info = tarfile.TarInfo("images/a.jpg")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    return buffer.getvalue()


@pytest.mark.parametrize("head,archive", [
    (_zip({"a.txt": b"x"})[:512], "zip"),
    (_zip({})[:512], "zip"),
    (_tar("w:gz")[:512], "tgz"),
    (_tar("w")[:512], "tar"),
    (_tar("w|")[:512], "tar"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "tgz"),
    (b"", None),
    (b"PK", None),
    (b"<!DOCTYPE html><html>" + b" " * 500, None),
    (b"Rar!\x1a\x07\x00" + b"\x00" * 505, None),
])
def test_the_first_bytes_say_what_archive_it_is(head, archive):
    assert source_urls.sniff(head) == archive


def test_a_gnu_tar_header_is_a_tar():
    head = bytearray(512)
    head[257:265] = b"ustar  \x00"
    assert source_urls.sniff(bytes(head)) == "tar"
