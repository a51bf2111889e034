"""A zip archive made of parts written one at a time: pure byte rules, no storage.

An archive is laid out as

    [part 0's entries][part 1's entries]...[part 0's directory][part 1's directory]...[end records]

Each part holds local entries only (header, data, data descriptor), written by
zipfile itself onto a stream that starts counting at the part's offset in the
archive, so every entry's header offset is already the archive's. A part's
directory records follow from its entries once it is written, and the end
records from the totals: nothing needs the archive whole, and the parts joined
in that order are byte for byte what one zipfile.ZipFile writes for the same
members on a stream (tests/unit/test_zip_parts.py), ZIP64 records included
(more than 65,535 entries, offsets or sizes past 2 GiB).

The directory and end records follow the ZIP specification (APPNOTE 4.3.12,
4.3.14-16) exactly as Python's zipfile writes them, so the bytes agree.
"""
from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO
from collections.abc import Iterable

ZIP64_LIMIT = (1 << 31) - 1          # zipfile's: past this, sizes and offsets go in a ZIP64 extra
FILE_COUNT_LIMIT = (1 << 16) - 1     # past this many entries, the ZIP64 end records are needed
ZIP64_VERSION = 45
DATE_TIME = (2020, 1, 1, 0, 0, 0)    # every member's time: the same members give the same bytes
UTF8_NAME = 0x800

_DIRECTORY = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_LOCATOR = struct.Struct("<4sLQL")


class _Counted:
    """A write-only stream that counts from `offset` (zipfile asks tell() for header offsets); once sealed it
    drops what is written, so closing the zipfile writes no directory into the part."""

    def __init__(self, raw: BinaryIO, offset: int):
        self.raw, self.position, self.sealed = raw, offset, False

    def write(self, data: bytes) -> int:
        if not self.sealed:
            self.raw.write(data)
            self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass  # zipfile never closes a stream it was given; `raw` is its owner's to close


class PartWriter:
    """The local entries of one part of an archive, starting `offset` bytes into it, written to `raw`."""

    def __init__(self, raw: BinaryIO, offset: int):
        self.offset = offset
        self._stream = _Counted(raw, offset)
        self._zip = zipfile.ZipFile(self._stream, "w", allowZip64=True)

    def add(self, name: str, data: bytes, compress: bool = True) -> None:
        self.add_pieces(name, [data], compress)

    def add_pieces(self, name: str, pieces: Iterable[bytes | str], compress: bool = True) -> None:
        info = zipfile.ZipInfo(name, date_time=DATE_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with self._zip.open(info, "w", force_zip64=True) as member:
            for piece in pieces:
                member.write(piece.encode() if isinstance(piece, str) else piece)

    @property
    def size(self) -> int:
        """Bytes of this part written so far."""
        return self._stream.position - self.offset

    @property
    def entries(self) -> int:
        return len(self._zip.infolist())

    def finish(self) -> list[zipfile.ZipInfo]:
        """The part's entries (header offsets in the archive); nothing more is written to `raw`."""
        infos = self._zip.infolist()
        self._stream.sealed = True
        self._zip.close()
        return infos


def directory_records(infos: Iterable[zipfile.ZipInfo]) -> bytes:
    """The central directory records of `infos`, as zipfile writes them when it closes an archive."""
    return b"".join(_directory_record(info) for info in infos)


def _directory_record(info: zipfile.ZipInfo) -> bytes:
    extra: list[int] = []
    file_size, compress_size, header_offset = info.file_size, info.compress_size, info.header_offset
    if file_size > ZIP64_LIMIT or compress_size > ZIP64_LIMIT:
        extra += [file_size, compress_size]
        file_size = compress_size = 0xFFFFFFFF
    if header_offset > ZIP64_LIMIT:
        extra.append(header_offset)
        header_offset = 0xFFFFFFFF
    extra_data, min_version = info.extra, 0
    if extra:  # the members here carry no extra field of their own, so no ZIP64 one to strip
        extra_data = struct.pack("<HH" + "Q" * len(extra), 1, 8 * len(extra), *extra) + extra_data
        min_version = ZIP64_VERSION
    name, flags = _encoded_name(info)
    year, month, day, hour, minute, second = info.date_time
    record = _DIRECTORY.pack(b"PK\x01\x02", max(min_version, info.create_version), info.create_system,
                             max(min_version, info.extract_version), info.reserved, flags, info.compress_type,
                             hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day,
                             info.CRC, compress_size, file_size, len(name), len(extra_data), len(info.comment),
                             0, info.internal_attr, info.external_attr, header_offset)
    return record + name + extra_data + info.comment


def _encoded_name(info: zipfile.ZipInfo) -> tuple[bytes, int]:
    try:
        return info.filename.encode("ascii"), info.flag_bits
    except UnicodeEncodeError:
        return info.filename.encode("utf-8"), info.flag_bits | UTF8_NAME


def end_records(entries: int, directory_size: int, directory_offset: int) -> bytes:
    """The records closing an archive whose directory of `entries` records (`directory_size` bytes) starts
    `directory_offset` bytes in: the ZIP64 end record and locator when needed, then the end record."""
    records = b""
    if entries > FILE_COUNT_LIMIT or directory_offset > ZIP64_LIMIT or directory_size > ZIP64_LIMIT:
        records = (_END64.pack(b"PK\x06\x06", 44, ZIP64_VERSION, ZIP64_VERSION, 0, 0, entries, entries,
                               directory_size, directory_offset)
                   + _END64_LOCATOR.pack(b"PK\x06\x07", 0, directory_offset + directory_size, 1))
        entries, directory_size = min(entries, 0xFFFF), min(directory_size, 0xFFFFFFFF)
        directory_offset = min(directory_offset, 0xFFFFFFFF)
    return records + _END.pack(b"PK\x05\x06", 0, 0, entries, entries, directory_size, directory_offset, 0)
