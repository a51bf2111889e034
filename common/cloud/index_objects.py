"""The objects a dataset's index holds, {path: generation}: what a reindex and a reconciliation compare with the
bucket's listing (common.domain.reindex). Read with a projection, streamed: one pass over the entries and files."""
from __future__ import annotations

from typing import cast

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import dataset_index
from common.domain import reindex
from common.domain.entries import Entry

ENTRY_FIELDS = ["image.path", "image.generation", "image_sources", "sources_kept", "label.path", "label.generation"]


def indexed(dataset: str) -> dict[str, int]:
    """{path: generation} of every image and label file the dataset's entries hold, and every other file it
    records as present (data.yaml, class lists, unrecognized files, files with issues)."""
    held: dict[str, int] = {}
    for snapshot in dataset_index.entries_of(dataset).select(ENTRY_FIELDS).stream():
        held.update(reindex.entry_objects(cast(Entry, snapshot.to_dict() or {})))  # its selected fields
    present = dataset_index.files_of(dataset).where(filter=FieldFilter("present", "==", True))
    for snapshot in present.select(["path", "generation"]).stream():
        fields = snapshot.to_dict() or {}
        held[fields["path"]] = fields["generation"]
    return held
