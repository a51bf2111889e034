"""Versions: a dataset frozen for good. Pure rules over a pinned snapshot.

A version is the generic snapshot (common.domain.snapshot) of the dataset when
it was frozen, plus where each image's bytes are kept: a copy in the content
store (layout.content_object, named by sha256, written once and never
overwritten), so overwriting or deleting a dataset file later changes nothing a
version trains on or exports. Its image list is a JSON object in the bucket
(layout.version_snapshot); its Firestore document holds the summary.

Its status is the job kernel's (common.domain.jobs): queued -> running (phase
freezing) -> completed (phase ready) | failed. Documents written before
versions used the kernel's words hold `freezing` or `ready` as their status:
`state` reads them as running and completed.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from common.domain import jobs, layout
from common.domain.jobs import COMPLETED, FAILED, QUEUED, RUNNING
from common.domain.snapshot import Snapshot, SnapshotImage
from common.domain.training_request import VERSION_ID  # one rule for ids

FORMAT = 1
STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED)  # a version is one short call: never cancelled
FREEZING, READY = "freezing", "ready"  # its phases while running and once completed
PHASES = (FREEZING, READY)
GONE = "gone before it was stored"  # the pinned generation vanished between the snapshot and the copy
MAX_NAME, MAX_NOTE = 100, 2000


class InvalidVersionRequest(ValueError):
    """A version request that can never succeed; the message says why."""


def version_id(number: int) -> str:
    return f"v{number}"


def qualified_id(dataset: str, version: str) -> str:
    """The version named across datasets, '{dataset}:{version}' (':' is never in a dataset name): its job id,
    and the writer a content store copy names."""
    return f"{dataset}:{version}"


def is_version_id(text: object) -> bool:
    return isinstance(text, str) and bool(VERSION_ID.match(text))


def new_document(dataset: str, number: int, fields: dict[str, Any], requested_by: str | None,
                 now: float) -> dict[str, Any]:
    return {"id": version_id(number), "dataset": dataset, "number": number, **fields, "status": QUEUED,
            "phase": None, "requested_by": requested_by, "created_at": now, "frozen_at": None, "error": None}


def frozen_document(snapshot: Snapshot, version: str, stored: dict[str, int]) -> dict[str, Any]:
    """The version's image list: each image of the snapshot whose content is
    stored ({sha256: content store generation}), with its dataset-relative name."""
    images = [_frozen_image(image, snapshot.dataset, stored[image.sha256])
              for image in snapshot.images if image.sha256 in stored]
    excluded = dict(snapshot.excluded)
    gone = len(snapshot.images) - len(images)
    if gone:
        excluded[GONE] = gone
    return {"format": FORMAT, "dataset": snapshot.dataset, "version": version,
            "classes": list(snapshot.classes or []), "excluded": excluded, "images": images}


def _frozen_image(image: SnapshotImage, dataset: str, content_generation: int) -> dict[str, Any]:
    return {"name": layout.dataset_relative(image.path, dataset), "path": image.path,
            "generation": image.generation, "sha256": image.sha256, "width": image.width, "height": image.height,
            "split": image.split, "boxes": [list(row) for row in image.boxes],
            "content": {"path": layout.content_object(image.sha256), "generation": content_generation}}


def stored_snapshot(frozen: dict[str, Any]) -> Snapshot:
    """The version as a snapshot whose images are read from the content store,
    in the order of frozen["images"] (what a trainer or an export reads)."""
    images = tuple(SnapshotImage(path=i["content"]["path"], generation=i["content"]["generation"],
                                 sha256=i["sha256"], width=i["width"], height=i["height"], split=i["split"],
                                 boxes=tuple(tuple(row) for row in i["boxes"])) for i in frozen["images"])
    return Snapshot(frozen["dataset"], tuple(frozen["classes"]), images, dict(frozen["excluded"]))


def summary(frozen: dict[str, Any]) -> dict[str, Any]:
    """Counts, class balance, splits (as uploaded) and what was excluded and why."""
    images, classes = frozen["images"], frozen["classes"]
    per_class = Counter(int(row[0]) for image in images for row in image["boxes"])
    return {"images": len(images), "labeled": sum(1 for i in images if i["boxes"]),
            "background": sum(1 for i in images if not i["boxes"]),
            "boxes": sum(per_class.values()),
            "boxes_per_class": {name: per_class.get(class_id, 0) for class_id, name in enumerate(classes)},
            "splits": dict(Counter(image["split"] or "none" for image in images)),
            "excluded": dict(frozen["excluded"])}


def state(document: dict[str, Any]) -> tuple[str, str | None]:
    """(status, phase) in the kernel's words, whichever deployment wrote the document (an old `ready` is
    completed, an old `freezing` running)."""
    return jobs.state_of(document)


def is_frozen(document: dict[str, Any]) -> bool:
    """Whether the version may be trained on or exported: it completed (its image list is written)."""
    return state(document)[0] == COMPLETED


def has_ended(document: dict[str, Any]) -> bool:
    return state(document)[0] in (COMPLETED, FAILED)


def view(document: dict[str, Any]) -> dict[str, Any]:
    """A version as the API shows it."""
    keys = ("id", "dataset", "name", "note", "classes", "stats", "storage", "snapshot", "error",
            "requested_by", "created_at", "frozen_at")
    status, phase = state(document)
    return {**{key: document.get(key) for key in keys}, "status": status, "phase": phase}
