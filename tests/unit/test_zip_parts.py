"""An archive written in parts, wherever it is cut, is byte for byte the archive one zipfile.ZipFile writes for
the same members on a stream (what the export wrote before it was cut into parts), ZIP64 records included."""
from __future__ import annotations

import io
import itertools
import zipfile

import pytest

from common.domain import zip_parts

MEMBERS = [("images/train/a.jpg", b"\xff\xd8" + bytes(range(256)) * 40, False),
           ("labels/train/a.txt", b"0 0.5 0.5 0.2 0.2\n", True),
           ("images/train/ünï cödé.jpg", b"\xff\xd8 jpeg bytes" * 7, False),
           ("labels/train/ünï cödé.txt", b"", True),
           ("images/val/b.png", b"\x89PNG" + b"x" * 5000, False),
           ("labels/val/b.txt", b"1 0.1 0.1 0.1 0.1\n" * 30, True),
           ("data.yaml", b"train: images/train\nval: images/val\nnc: 2\nnames:\n  0: \"a\"\n  1: \"b\"\n", True)]


class _Stream:
    """Not seekable, as the bucket upload the export writes to; tell() from `start`."""

    def __init__(self, start: int = 0):
        self.buffer, self.start = io.BytesIO(), start

    def write(self, data) -> int:
        return self.buffer.write(data)

    def tell(self) -> int:
        return self.start + self.buffer.tell()

    def flush(self) -> None:
        pass


def one_zipfile(members, start: int = 0) -> bytes:
    """The archive as written before parts: one ZipFile on one stream."""
    stream = _Stream(start)
    with zipfile.ZipFile(stream, "w", allowZip64=True) as archive:
        for name, data, compress in members:
            info = zipfile.ZipInfo(name, date_time=zip_parts.DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            with archive.open(info, "w", force_zip64=True) as member:
                member.write(data)
    return stream.buffer.getvalue()


def in_parts(members, cuts: list[int], start: int = 0) -> bytes:
    """The same members cut into parts at `cuts`, each part written on its own, joined as the export composes them."""
    bounds = [0, *cuts, len(members)]
    data, directories, offset, entries = [], [], start, 0
    for first, end in itertools.pairwise(bounds):
        raw = io.BytesIO()
        part = zip_parts.PartWriter(raw, offset)
        for name, content, compress in members[first:end]:
            part.add(name, content, compress)
        infos = part.finish()
        assert raw.getvalue() and len(raw.getvalue()) == part.size
        data.append(raw.getvalue())
        directories.append(zip_parts.directory_records(infos))
        offset, entries = offset + part.size, entries + len(infos)
    directory = b"".join(directories)
    return b"".join(data) + directory + zip_parts.end_records(entries, len(directory), offset)


@pytest.mark.parametrize("cuts", [[], [1], [2, 4], [1, 2, 3, 4, 5, 6]])
def test_parts_joined_are_the_one_archive_byte_for_byte(cuts):
    whole = in_parts(MEMBERS, cuts)
    assert whole == one_zipfile(MEMBERS)
    with zipfile.ZipFile(io.BytesIO(whole)) as archive:
        assert archive.testzip() is None
        assert [(i.filename, archive.read(i)) for i in archive.infolist()] == [(n, d) for n, d, _ in MEMBERS]


def test_more_than_65535_entries_take_the_zip64_end_records():
    members = [(f"labels/train/{n}.txt", b"%d\n" % n, True) for n in range(zip_parts.FILE_COUNT_LIMIT + 10)]
    whole = in_parts(members, [30000, 60000])
    assert whole == one_zipfile(members)
    assert b"PK\x06\x06" in whole[-200:]
    with zipfile.ZipFile(io.BytesIO(whole)) as archive:
        assert len(archive.infolist()) == len(members) and archive.read("labels/train/65540.txt") == b"65540\n"


class _Placed(io.RawIOBase):
    """A seekable file of `prefix` zero bytes and then `tail`: an archive larger than 4 GiB without the memory."""

    def __init__(self, prefix: int, tail: bytes):
        self.prefix, self.tail, self.position = prefix, tail, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: 0, 1: self.position, 2: self.prefix + len(self.tail)}[whence] + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        start = self.position - self.prefix
        assert start >= 0, "only the tail is read"
        chunk = self.tail[start:start + len(buffer)]
        buffer[:len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


def test_parts_past_4_gib_record_their_offsets_in_zip64_extras():
    start = 5 * 1024 ** 3  # the parts below begin 5 GiB into the archive
    tail = in_parts(MEMBERS, [3], start)
    assert tail == one_zipfile(MEMBERS, start)
    with zipfile.ZipFile(_Placed(start, tail)) as archive:
        assert all(info.header_offset >= start for info in archive.infolist())
        assert [archive.read(n) for n, _, _ in MEMBERS] == [d for _, d, _ in MEMBERS]
