"""An export cut into parts that are each written once: what a part holds, how it records what it was made
from, and where a resumed export starts. Pure rules; common/cloud/export_parts.py keeps them in the bucket.

Part k holds the plan's images [first, end) with their annotation files, in plan order; the last part, the
tail, holds what is written once per archive (data.yaml, the VOC lists, the COCO JSON). A part is cut while it
is written (enough images, enough bytes, or the call's time is up), so its bounds are known only once it is
done: its record says them. The record is the part's directory object, created only if absent, and its
metadata names the plan it was cut from (a digest of every image's pinned content and name in the archive),
so a part is done exactly when its record exists, whoever wrote it and whatever crashed since.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import cast

from common.domain.exports import Member

# Cloud Storage composes an object of at most 1,024 components: a data and a directory object per part, plus
# the end records, so at most 511 parts (1,000 images a part: 511,000 images).
MAX_PARTS = 511
COMPOSE_SOURCES = 32  # objects one compose request joins


class PartsMismatch(ValueError):
    """The parts in the bucket were cut from another plan than this export's: the export cannot go on."""


@dataclass(frozen=True)
class PartRecord:
    index: int
    first: int               # the plan's images [first, end) (the tail: end == first == every image)
    end: int
    tail: bool
    plan: str                # plan_pin() of the plan the part was cut from
    data: str                # the object holding the part's entries
    data_generation: int
    data_bytes: int
    entries: int
    directory: str = ""      # the record itself: the part's directory records (set once stored)
    directory_generation: int = 0
    directory_bytes: int = 0


def plan_pin(version: str, export_format: str, background: bool, placed: list[tuple[Member, str]]) -> str:
    """A digest of what the archive holds: every image's pinned content (its content store object and
    generation) and its name in the archive, in order."""
    digest = hashlib.sha256(f"{version}\n{export_format}\n{background}\n".encode())
    for member, image_name in placed:
        digest.update(f"{member.source_path}#{member.source_generation}#{image_name}\n".encode())
    return digest.hexdigest()


def directory_name(prefix: str, index: int) -> str:
    return f"{prefix}{index:05d}.dir"


def data_name(prefix: str, index: int, attempt: str) -> str:
    """One name per attempt: a writer that lost its claim never overwrites a part another one committed."""
    return f"{prefix}{index:05d}-{attempt}.zip"


def end_name(prefix: str) -> str:
    return f"{prefix}end"


def index_of(directory: str) -> int | None:
    """The part index a directory object's name holds; None for any other object."""
    stem = directory.rsplit("/", 1)[-1]
    if not stem.endswith(".dir") or not stem[:-4].isdigit():
        return None
    return int(stem[:-4])


def metadata(record: PartRecord) -> dict[str, str]:
    return {"first": str(record.first), "end": str(record.end), "tail": "1" if record.tail else "0",
            "plan": record.plan, "data": record.data, "data_generation": str(record.data_generation),
            "data_bytes": str(record.data_bytes), "entries": str(record.entries)}


def record_of(directory: str, generation: int, size: int, fields: dict[str, str]) -> PartRecord:
    return PartRecord(cast(int, index_of(directory)), int(fields["first"]), int(fields["end"]), fields["tail"] == "1",
                      fields["plan"], fields["data"], int(fields["data_generation"]), int(fields["data_bytes"]),
                      int(fields["entries"]), directory, generation, size)


def resumed(found: list[PartRecord], plan: str) -> list[PartRecord]:
    """The parts already done, in order, each following the one before; PartsMismatch when one was cut from
    another plan or one is missing in between (nothing this export wrote can be trusted then)."""
    done = sorted(found, key=lambda record: record.index)
    for index, record in enumerate(done):
        if record.plan != plan:
            raise PartsMismatch(f"part {index} of this export was written from another plan of the archive")
        if record.index != index or record.first != (done[index - 1].end if index else 0):
            raise PartsMismatch(f"the parts of this export do not follow each other at part {index}")
    return done


def next_image(done: list[PartRecord]) -> int:
    """The first image no part holds yet."""
    return done[-1].end if done else 0


def is_complete(done: list[PartRecord]) -> bool:
    return bool(done) and done[-1].tail


def offset(done: list[PartRecord]) -> int:
    """Where the next part starts in the archive: every part's entries come first, in order."""
    return sum(record.data_bytes for record in done)


def end_fields(done: list[PartRecord]) -> tuple[int, int, int]:
    """(entries, directory size, directory offset) of the whole archive, for zip_parts.end_records."""
    return (sum(record.entries for record in done), sum(record.directory_bytes for record in done),
            offset(done))


def sources(done: list[PartRecord], end: tuple[str, int]) -> list[tuple[str, int]]:
    """The objects the archive is composed of, in order, each pinned by its generation."""
    return ([(record.data, record.data_generation) for record in done]
            + [(record.directory, record.directory_generation) for record in done] + [end])
