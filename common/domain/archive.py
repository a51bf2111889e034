"""Plan the unpacking of a dataset archive (imports/<dataset>.zip): which members
go where under datasets/<dataset>/, and which are refused and why.

Pure: works on the archive's ZipInfo list, so the rules are unit-tested
without a bucket. Accepted layouts, with or without one enclosing folder:
  data.yaml, images/[split/]..., labels/[split/]...        (this bucket's layout)
  <split>/images/..., <split>/labels/...                    (Roboflow-style exports;
                                                             "valid" means val)
Only dataset files are unpacked: images under images/, .txt labels under
labels/ and data.yaml (the files an upload may hold), and for a COCO import
its annotation JSON (read, never unpacked). Any other member (weights, scripts,
anything) is skipped and counted as an issue.

The same limits hold for every archive, checked before anything is read into
memory: a zip's directory size and entry count come from its end record
(read_directory_end), a tar stream's decompressed bytes are counted as they
are read (ExpansionGuard).
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, TypeVar
from collections.abc import Sequence

from common.domain import layout
from common.domain.issues import Issue
from common.domain.layout import DATA_YAML_NAMES, SPLIT_ALIASES

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer  # what io's readinto is given: typeshed's name, no runtime module

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 50 * 1024 ** 3
MAX_COMPRESSION_RATIO = 250  # beyond this a member is treated as a zip bomb
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db")
# A zip's central directory is read whole by zipfile (a ZipInfo of ~0.5 KB per entry): its end record must
# announce at most this many entries and bytes. 100,000 files with their folders and names of ~150 bytes fit.
MAX_DIRECTORY_ENTRIES = 2 * MAX_MEMBERS
MAX_DIRECTORY_BYTES = 32 * 1024 ** 2
# A tar stream's ratio is judged once this much is decompressed (small archives of text may compress well).
RATIO_FLOOR_BYTES = 32 * 1024 ** 2
NAMED_SKIPS = 20  # skipped members named one issue each; the rest are counted in one more
NOT_DATASET_FILE = "import_not_dataset_file"

M = TypeVar("M")


class ArchiveRefused(Exception):
    """The whole archive is refused (too many entries, a bomb): nothing more is read. str() says what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code

    def issue(self, archive: str) -> Issue:
        return Issue(self.code, str(self), archive)


@dataclass
class ImportPlan:
    members: list[tuple[zipfile.ZipInfo, str]] = field(default_factory=list)  # member, dataset-relative path
    issues: list[Issue] = field(default_factory=list)
    strip: str = ""  # the enclosing folder every member sits in, removed
    layout: str | None = None  # the export's layout, once recognised (common.domain.dataset_formats)

    def relative(self, info: zipfile.ZipInfo) -> str:
        """A member's path in the export, its enclosing folder removed."""
        return info.filename[len(self.strip):]


def plan_import(infos: list[zipfile.ZipInfo], archive: str) -> ImportPlan:
    """Which members go where; ArchiveRefused for an archive over the limits (nothing of it is unpacked: an
    import of it fails with the reason, a dropped one gets it as its issue)."""
    plan = ImportPlan()
    files = [info for info in infos if not info.is_dir() and not is_junk(info.filename)]
    if len(files) > MAX_MEMBERS:
        raise ArchiveRefused("import_too_many_files", f"the archive has {len(files)} files; the limit is "
                             f"{MAX_MEMBERS}: split it into several archives")
    total = sum(info.file_size for info in files)
    if total > MAX_TOTAL_BYTES:
        raise ArchiveRefused("import_too_large", f"the archive unpacks to {total} bytes; the limit is "
                             f"{MAX_TOTAL_BYTES}: upload the files directly or split the archive")
    strip = plan.strip = _enclosing_folder([info.filename for info in files])
    for info in files:
        problem = _refusal(info)
        if problem:
            plan.issues.append(Issue(problem[0], f"{info.filename}: {problem[1]}; not unpacked", archive))
            continue
        plan.members.append((info, target_of(info.filename[len(strip):])))
    return plan


def is_junk(name: str) -> bool:
    return any(part in JUNK or part.startswith("._") for part in PurePosixPath(name).parts)


def _enclosing_folder(names: list[str]) -> str:
    """'folder/' when every member sits in one folder that is not part of the layout."""
    firsts = {name.split("/", 1)[0] for name in names}
    if len(firsts) != 1 or all("/" not in name for name in names):
        return ""
    first = firsts.pop()
    if first in ("images", "labels") or first in SPLIT_ALIASES:
        return ""
    return first + "/"


def _refusal(info: zipfile.ZipInfo) -> tuple[str, str] | None:
    return member_refusal(info.filename, link=stat.S_ISLNK(info.external_attr >> 16),
                          encrypted=bool(info.flag_bits & 0x1), size=info.file_size, compressed=info.compress_size)


def member_refusal(name: str, link: bool = False, encrypted: bool = False, size: int = 0,
                   compressed: int = 0, special: bool = False) -> tuple[str, str] | None:
    """(code, reason) when a member of any archive (zip or tar) is not unpacked."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        return "import_unsafe_path", "the path leaves the dataset folder"
    if link:
        return "import_symlink", "symbolic links are not unpacked"
    if special:
        return "import_special_file", "devices, pipes and hard links are not unpacked"
    if encrypted:
        return "import_encrypted", "the member is encrypted"
    if compressed and size / compressed > MAX_COMPRESSION_RATIO:
        return "import_compression_ratio", (f"compressed {compressed} bytes expand to {size} "
                                            f"(more than {MAX_COMPRESSION_RATIO}x: a zip bomb?)")
    return None


def target_of(relative: str) -> str:
    """Where a member (its enclosing folder already removed) goes under datasets/<dataset>/."""
    parts = relative.split("/")
    if len(parts) > 2 and parts[0].lower() in SPLIT_ALIASES and parts[1] in ("images", "labels"):
        return "/".join([parts[1], SPLIT_ALIASES[parts[0].lower()], *parts[2:]])
    if len(parts) == 1 and parts[0] in DATA_YAML_NAMES:
        return "data.yaml"
    return relative


# ---- which members are dataset files ----------------------------------------------------

def is_dataset_file(target: str) -> bool:
    """Whether a dataset-relative path is a file a dataset holds: an image under images/, a .txt label under
    labels/ or data.yaml (what an upload may write too)."""
    return layout.classify(layout.dataset_object("dataset", target)).kind in layout.UPLOADABLE


class SkippedFiles:
    """Members that are not dataset files: the first NAMED_SKIPS named one issue each, the rest counted in one."""

    def __init__(self, archive: str):
        self.archive, self.count = archive, 0
        self.named: list[Issue] = []

    def add(self, name: str) -> None:
        self.count += 1
        if self.count <= NAMED_SKIPS:
            self.named.append(Issue(NOT_DATASET_FILE, f"{name}: not a dataset file (images under images/ with "
                                    f"an image extension, .txt labels under labels/, data.yaml); not unpacked",
                                    self.archive))

    def issues(self) -> list[Issue]:
        more = self.count - len(self.named)
        return self.named + ([Issue(NOT_DATASET_FILE, f"{more} more members that are not dataset files were "
                                    "not unpacked", self.archive)] if more else [])


def keep_dataset_files(members: Sequence[tuple[M, str]], names: Sequence[str],
                       archive: str) -> tuple[list[tuple[M, str]], list[Issue]]:
    """The (member, target) pairs whose target is a dataset file, and the issues of those skipped
    (`names`: each member's name in the archive, for the issue)."""
    skipped, kept = SkippedFiles(archive), []
    for (member, target), name in zip(members, names):
        if is_dataset_file(target):
            kept.append((member, target))
        else:
            skipped.add(name)
    return kept, skipped.issues()


# ---- a zip's end record ----------------------------------------------------------------

_END = struct.Struct("<4s4H2LH")             # end of central directory record
_LOCATOR = struct.Struct("<4sLQL")           # zip64 end of central directory locator
_END64 = struct.Struct("<4sQ2H2L4Q")         # zip64 end of central directory record
_END_SIGNATURE, _LOCATOR_SIGNATURE, _END64_SIGNATURE = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_TAIL_BYTES = _END.size + 0xFFFF + _LOCATOR.size + _END64.size  # the end record, its comment, zip64's records


@dataclass(frozen=True)
class DirectoryEnd:
    entries: int
    size: int     # bytes of the central directory
    offset: int


def read_directory_end(reader: BinaryIO) -> DirectoryEnd | None:
    """What a zip's end records (zip64's when present) say of its central directory, read from the last
    ~64 KiB of a seekable reader; None when there is no end record (zipfile says why it is not a zip)."""
    size = reader.seek(0, io.SEEK_END)
    start = max(0, size - _TAIL_BYTES)
    reader.seek(start)
    tail = reader.read(size - start)
    at = _end_record_at(tail)
    if at is None:
        return None
    _, _, _, _, entries, directory_size, offset, _ = _END.unpack_from(tail, at)
    locator_at = at - _LOCATOR.size
    if locator_at >= 0 and tail[locator_at:locator_at + 4] == _LOCATOR_SIGNATURE:
        _, _, end64_offset, _ = _LOCATOR.unpack_from(tail, locator_at)
        record = _read_at(reader, tail, start, end64_offset, _END64.size)
        if len(record) == _END64.size and record[:4] == _END64_SIGNATURE:
            fields = _END64.unpack(record)
            entries, directory_size, offset = fields[7], fields[8], fields[9]
    return DirectoryEnd(entries, directory_size, offset)


def _end_record_at(tail: bytes) -> int | None:
    """The position of the end record: the last signature whose comment length fits what follows it."""
    at = tail.rfind(_END_SIGNATURE)
    while at >= 0:
        if at + _END.size <= len(tail):
            comment = _END.unpack_from(tail, at)[-1]
            if at + _END.size + comment <= len(tail):
                return at
        at = tail.rfind(_END_SIGNATURE, 0, at)
    return None


def _read_at(reader: BinaryIO, tail: bytes, tail_start: int, offset: int, count: int) -> bytes:
    if tail_start <= offset and offset + count <= tail_start + len(tail):
        return tail[offset - tail_start:offset - tail_start + count]
    reader.seek(offset)
    return reader.read(count)


def check_directory(end: DirectoryEnd | None) -> None:
    """ArchiveRefused when the zip's directory is too large to read (before zipfile reads it whole)."""
    if end is None:
        return
    if end.entries > MAX_DIRECTORY_ENTRIES:
        raise ArchiveRefused("import_too_many_files", f"the zip's directory lists {end.entries} entries; the "
                             f"limit is {MAX_DIRECTORY_ENTRIES}: split it into several archives")
    if end.size > MAX_DIRECTORY_BYTES:
        raise ArchiveRefused("import_zip_directory_too_large", f"the zip's directory is {end.size} bytes; the "
                             f"limit is {MAX_DIRECTORY_BYTES}: split it into several archives")


# ---- a tar stream's limits -------------------------------------------------------------

class _Counting(io.RawIOBase):
    """A reader that counts the bytes it gives."""

    def __init__(self, source: BinaryIO):
        self.source, self.count = source, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        data = self.source.read(len(view))
        view[:len(data)] = data
        self.count += len(data)
        return len(data)


class ExpansionGuard(io.RawIOBase):
    """A tar archive's stream decompressed (gzip, bzip2, xz or none, as its first bytes say), stopped with
    ArchiveRefused as soon as it has expanded past MAX_TOTAL_BYTES, or more than MAX_COMPRESSION_RATIO times
    the compressed bytes read (judged past RATIO_FLOOR_BYTES). Every byte tarfile reads passes here, members
    it skips included, so a bomb stops after RATIO_FLOOR_BYTES whatever its members are.

    tarfile reads a member's extended header (pax, GNU long name) whole into memory: told of each member as
    it comes (member_seen), the guard lets no more than HEADER_BYTES pass beyond that member's data before
    the next one, so a header of a gigabyte is refused, not read."""

    READ_BYTES = 1024 * 1024  # the most decompressed at once between two checks
    HEADER_BYTES = 1024 * 1024  # a member's headers, extended ones included, and tarfile's read-ahead

    def __init__(self, source: BinaryIO, max_total: int = MAX_TOTAL_BYTES):
        self.compressed = _Counting(source)
        buffered = io.BufferedReader(self.compressed, 8192)  # little read ahead: the ratio counts what is used
        self.decompressed = _decompressing(buffered)
        self.expanded, self.max_total = 0, max_total
        self.until_next_member = self.HEADER_BYTES

    def member_seen(self, size: int) -> None:
        """The member tarfile just gave: its data (in 512-byte blocks) and the next member's headers may follow."""
        self.until_next_member = self.expanded + -(-size // 512) * 512 + self.HEADER_BYTES

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)[:self.READ_BYTES]
        count = self.decompressed.readinto(view)
        self.expanded += count
        self._check()
        return count

    def _check(self) -> None:
        if self.expanded > self.until_next_member:
            raise ArchiveRefused("import_tar_header_too_large", f"a member's tar headers (pax or long names) pass "
                                 f"{self.HEADER_BYTES} bytes: the import stopped there; pack the dataset with "
                                 "ordinary headers")
        if self.expanded > self.max_total:
            raise ArchiveRefused("import_too_large", f"the archive expands past {self.max_total} bytes; the limit "
                                 f"is {self.max_total}: upload the files directly or split the archive")
        ratio = self.expanded / max(self.compressed.count, 1)
        if self.expanded > RATIO_FLOOR_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise ArchiveRefused("import_compression_ratio", f"{self.compressed.count} compressed bytes expanded "
                                 f"to {self.expanded} (more than {MAX_COMPRESSION_RATIO}x: a decompression "
                                 "bomb?); the import stopped there: pack the dataset without such padding")


def _decompressing(buffered: io.BufferedReader[_Counting]) -> io.BufferedIOBase:
    head = buffered.peek(6)[:6]
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(buffered, mode="rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(buffered, mode="rb")
    return buffered


def check_counts(entries: int, files: int) -> None:
    """ArchiveRefused once a tar stream has had more files (or entries, folders included) than a zip may hold."""
    if files > MAX_MEMBERS:
        raise ArchiveRefused("import_too_many_files", f"the archive holds more than {MAX_MEMBERS} files: split it "
                             "into several archives")
    if entries > MAX_DIRECTORY_ENTRIES:
        raise ArchiveRefused("import_too_many_files", f"the archive holds more than {MAX_DIRECTORY_ENTRIES} "
                             "entries (files and folders): split it into several archives")
