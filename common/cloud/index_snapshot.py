"""The pinned snapshot of a dataset as the index holds it now (common.domain.snapshot)."""
from __future__ import annotations

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import dataset_index, db
from common.domain import snapshot


def current(dataset: str) -> snapshot.Snapshot | None:
    """None when the dataset is unknown."""
    found = dataset_index.dataset_ref(dataset).get(**db.deadline())
    if not found.exists:
        return None
    query = dataset_index.entries_of(dataset).where(filter=FieldFilter("has_image", "==", True))
    return snapshot.take(dataset, found.to_dict().get("classes"),
                         [doc.to_dict() for doc in query.stream(**db.deadline())])
