"""A zip archive written straight into a bucket object as it is made.

The archive goes through `blob.open("wb")` (a resumable upload sent in
CHUNK_BYTES pieces), and each member is written in pieces too, so memory
stays flat however large the archive grows. The stream is not seekable, so
zipfile writes each member's sizes after its data (data descriptors); ZIP64
records appear when the archive needs them.
"""
from __future__ import annotations

import zipfile
from typing import Iterable

from common.cloud import storage

CHUNK_BYTES = 8 * 1024 * 1024


class _Counted:
    """The upload stream, counting what passes (zipfile asks tell() for offsets)."""

    def __init__(self, writer):
        self.writer, self.written = writer, 0

    def write(self, data) -> int:
        self.writer.write(data)
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass


class ZipUpload:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> "ZipUpload":
        self._writer = storage.blob(self.name).open("wb", chunk_size=CHUNK_BYTES, content_type="application/zip",
                                                    ignore_flush=True)
        self._stream = _Counted(self._writer)
        self._zip = zipfile.ZipFile(self._stream, "w", allowZip64=True)
        return self

    def add(self, name: str, data: bytes, compress: bool = True) -> None:
        self.add_pieces(name, [data], compress)

    def add_pieces(self, name: str, pieces: Iterable[bytes | str], compress: bool = True) -> None:
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with self._zip.open(info, "w", force_zip64=True) as member:
            for piece in pieces:
                member.write(piece.encode() if isinstance(piece, str) else piece)

    @property
    def bytes_written(self) -> int:
        return self._stream.written

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            return  # a failed export names no uri; its retry writes the object again
        self._zip.close()
        self._writer.close()
