"""The content store: one immutable copy of each image a version references,
at derived/content/<sha256[:2]>/<sha256> (layout.content_object).

A copy is a server-side rewrite from the pinned generation, made only when the
content is not stored yet (looked up first; `if_generation_match=0` guards the
race with another freeze), so a version of content already kept costs one
metadata read and no bytes. Objects here are never overwritten.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from google.api_core.exceptions import NotFound, PreconditionFailed

from common.cloud import storage
from common.domain import layout
from common.domain.snapshot import SnapshotImage

COPY_THREADS = 16


@dataclass(frozen=True)
class Kept:
    generations: dict[str, int]  # sha256 -> generation of its stored copy (content gone: absent)
    new_bytes: int               # bytes copied by this call
    referenced_bytes: int        # bytes of every stored copy the images reference


def keep(images: tuple[SnapshotImage, ...]) -> Kept:
    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        results = list(pool.map(_keep_one, images))
    kept = [(image.sha256, result) for image, result in zip(images, results) if result is not None]
    return Kept({sha: generation for sha, (generation, _, _) in kept},
                sum(new for _, (_, _, new) in kept), sum(size for _, (_, size, _) in kept))


def _keep_one(image: SnapshotImage) -> tuple[int, int, int] | None:
    """(generation, size, bytes copied now) of the stored copy; None when the source is gone."""
    name = layout.content_object(image.sha256)
    stored = storage.bucket().get_blob(name)
    if stored is not None:
        return stored.generation, stored.size, 0
    target = storage.blob(name)
    try:
        _rewrite(target, storage.blob(image.path, image.generation))
    except PreconditionFailed:  # another freeze stored it meanwhile
        stored = storage.bucket().get_blob(name)
        return stored.generation, stored.size, 0
    except NotFound:
        return None
    return target.generation, target.size, target.size


def _rewrite(target, source) -> None:
    token, _, _ = target.rewrite(source, if_generation_match=0)
    while token is not None:  # large objects are copied in several calls
        token, _, _ = target.rewrite(source, token=token, if_generation_match=0)
