"""The content store: one immutable copy of each image a version references,
at derived/content/<sha256[:2]>/<sha256> (layout.content_object).

A copy is a server-side rewrite from the pinned generation, made only when the
content is not stored yet (looked up first; `if_generation_match=0` guards the
race with another freeze), so a version of content already kept costs one
metadata read and no bytes. Objects here are never overwritten.

Each copy names, in its metadata (WRITTEN_BY), the version whose freeze wrote
it, set in the same request that creates it: with the generation precondition
only one writer can create it, so it names exactly one. A version's new bytes
are the sizes of the copies that name it, however many times its freeze ran:
a freeze killed mid-copy and run again counts what it copied before as new.
"""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from google.api_core.exceptions import NotFound, PreconditionFailed

from common.cloud import storage
from common.domain import layout
from common.domain.snapshot import SnapshotImage

COPY_THREADS = 16
WRITTEN_BY = "yolodrop-version"  # object metadata: the version ('{dataset}:{version}') that wrote the copy


@dataclass(frozen=True)
class Kept:
    generations: dict[str, int]  # sha256 -> generation of its stored copy (content gone: absent)
    new_bytes: int               # bytes of the copies this version wrote (whichever run of its freeze)
    referenced_bytes: int        # bytes of every stored copy the images reference


@dataclass(frozen=True)
class _Copy:
    generation: int
    size: int
    written_by: str | None


def keep(images: tuple[SnapshotImage, ...], writer: str) -> Kept:
    """Every image's content stored (copied unless it is already), `writer` naming the copies made."""
    return _kept(_each(lambda image: _keep_one(image, writer), images, [image.sha256 for image in images]), writer)


def measure(sha256s: list[str], writer: str) -> Kept:
    """The stored copies of this content as `keep` counts them (a version whose image list was written before)."""
    return _kept(_each(lambda sha256: _copy(storage.bucket().get_blob(layout.content_object(sha256))),
                       sha256s, sha256s), writer)


def _each(work, items: Sequence, keys: list[str]) -> dict[str, _Copy]:
    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        return {key: copy for key, copy in zip(keys, pool.map(work, items)) if copy is not None}


def _kept(copies: dict[str, _Copy], writer: str) -> Kept:
    return Kept({sha256: copy.generation for sha256, copy in copies.items()},
                sum(copy.size for copy in copies.values() if copy.written_by == writer),
                sum(copy.size for copy in copies.values()))


def _keep_one(image: SnapshotImage, writer: str) -> _Copy | None:
    """The stored copy; None when the source is gone."""
    name = layout.content_object(image.sha256)
    stored = storage.bucket().get_blob(name)
    if stored is not None:
        return _copy(stored)
    target = storage.blob(name)
    target.metadata = {WRITTEN_BY: writer}  # sent with the rewrite: the copy is created naming its writer
    try:
        _rewrite(target, storage.blob(image.path, image.generation))
    except PreconditionFailed:  # another freeze stored it meanwhile
        return _copy(storage.bucket().get_blob(name))
    except NotFound:
        return None
    return _Copy(target.generation, target.size, writer)


def _copy(blob) -> _Copy | None:
    return None if blob is None else _Copy(blob.generation, blob.size, (blob.metadata or {}).get(WRITTEN_BY))


def _rewrite(target, source) -> None:
    token, _, _ = target.rewrite(source, if_generation_match=0)
    while token is not None:  # large objects are copied in several calls
        token, _, _ = target.rewrite(source, token=token, if_generation_match=0)
