"""Proposals in the index: fields of the entry document, beside the label.

Proposals are state with no file, so they are written to Firestore directly.
Each write is an optimistic update of the entry (precondition: the entry's
update time as read), not a transaction: ingest's transactions on the same
entry never wait on it, and an entry that changed between the read and the
write is read again. Ingest keeps these fields when it rewrites an entry
(common.domain.entries.derive works on the whole document).
"""
from __future__ import annotations

from google.api_core.exceptions import FailedPrecondition, NotFound
from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import dataset_index, db
from common.domain import entries, layout, proposals

ATTEMPTS = 10


class Contended(RuntimeError):
    """The entry kept changing while proposals were written: worth a redelivery."""


def put(dataset: str, key: str, image_generation: int, fields: dict) -> bool:
    """Store one image's proposals if the entry still holds that image generation; whether it did."""
    return _update(dataset, key, lambda entry: _image_generation(entry) == image_generation, fields)


def clear(dataset: str, key: str, job_id: str | None) -> bool:
    """Drop an entry's proposals (those of `job_id` only, when given); whether there were any."""
    def holds(entry: dict) -> bool:
        return bool(entry.get("proposal_model")) and (job_id is None or entry.get("proposal_job") == job_id)
    return _update(dataset, key, holds, proposals.cleared_fields())


def _update(dataset: str, key: str, applies, fields: dict) -> bool:
    ref = dataset_index.entries_of(dataset).document(layout.doc_id(key))
    for _ in range(ATTEMPTS):
        snapshot = ref.get(**db.deadline())
        if not snapshot.exists or not applies(snapshot.to_dict()):
            return False
        try:
            ref.update(fields, option=db.client().write_option(last_update_time=snapshot.update_time),
                       **db.deadline())
            return True
        except (FailedPrecondition, NotFound):
            continue  # ingest changed the entry meanwhile: decide again on what it holds now
    raise Contended(f"entry {key} of {dataset} kept changing while its proposals were written")


def _image_generation(entry: dict) -> int | None:
    return (entry.get("image") or {}).get("generation")


def entry_keys(dataset: str, scope: str) -> list[str]:
    """The keys of the entries an auto-labelling of `scope` covers: images without a label's boxes, or every image."""
    query = dataset_index.entries_of(dataset)
    query = query.where(filter=FieldFilter("status", "==", entries.UNLABELED) if scope == proposals.UNLABELED
                        else FieldFilter("has_image", "==", True))
    return _keys(query)


def with_proposals(dataset: str) -> list[str]:
    return _keys(dataset_index.entries_of(dataset).where(filter=FieldFilter("has_proposals", "==", True)))


def _keys(query) -> list[str]:
    """The entry keys (image ids) the query finds, sorted."""
    return sorted(snapshot.get("key") for snapshot in query.select(["key"]).stream(**db.deadline()))
