"""The objects a dataset's index holds, {path: generation}: what a reindex and a reconciliation compare with the
bucket's listing (common.domain.reindex). Read with a projection, streamed: one pass over the entries and files."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import bucket_listing, dataset_index, db
from common.domain import reindex
from common.domain.entries import Entry

ENTRY_FIELDS = ["image.path", "image.generation", "image.thumbnail", "image_sources", "sources_kept", "label.path",
                "label.generation"]


@dataclass
class Indexed:
    objects: dict[str, int] = field(default_factory=dict)  # {path: generation} of the files the index holds
    thumbnails: set[str] = field(default_factory=set)      # the thumbnails its entries name


def indexed(dataset: str) -> dict[str, int]:
    """{path: generation} of every image and label file the dataset's entries hold, and every other file it
    records as present (data.yaml, class lists, unrecognized files, files with issues)."""
    return index_of(dataset).objects


def index_of(dataset: str) -> Indexed:
    """The files the dataset's index holds and the thumbnails its entries name, in one pass over the entries."""
    held = Indexed()
    for snapshot in dataset_index.entries_of(dataset).select(ENTRY_FIELDS).stream():
        entry = cast(Entry, snapshot.to_dict() or {})  # its selected fields
        held.objects.update(reindex.entry_objects(entry))
        held.thumbnails |= reindex.entry_thumbnails(entry)
    present = dataset_index.files_of(dataset).where(filter=FieldFilter("present", "==", True))
    for snapshot in present.select(["path", "generation"]).stream():
        fields = snapshot.to_dict() or {}
        held.objects[fields["path"]] = fields["generation"]
    return held


def every_dataset(after: str | None = None, limit: int = 100) -> list[str]:
    """The datasets after `after` in name order, at most `limit`: the bucket's dataset folders and the datasets the
    index knows (one whose every object is gone has no folder left, and its index still holds them)."""
    listed = [bucket_listing.datasets(after, limit), indexed_datasets(after, limit)]
    full = [names[-1] for names in listed if len(names) == limit]
    boundary = min(full) if full else None  # past a full list's last name, the other may have skipped some
    return sorted(name for name in set().union(*listed) if boundary is None or name <= boundary)[:limit]


def indexed_datasets(after: str | None = None, limit: int = 100) -> list[str]:
    """The datasets the index knows, in name order, at most `limit` after `after`."""
    query = dataset_index.datasets()
    if after:
        query = query.where(filter=FieldFilter("__name__", ">", dataset_index.dataset_ref(after)))
    return [snapshot.id for snapshot in query.order_by("__name__").select([]).limit(limit).stream(**db.deadline())]
