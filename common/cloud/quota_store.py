"""What a person uses, as the quotas count it.

- stored_bytes: a counter on `people/{uid}`, raised in one transaction by the declared sizes of the upload
  sessions handed out (Cloud Storage holds an upload to its declared size). One read and write per upload
  request, never a scan of the bucket; an upper bound of what the person stored through the API: a session
  not used, a file overwritten or deleted still counts.
- datasets: a count query of the datasets whose `members.<uid>.role` is owner (Firestore indexes map fields
  by default: exact, for datasets of any age).
- concurrent_training and gpu_hours_per_day: queries of the training jobs the person requested (count of the
  unfinished ones; the recorded runtimes of those made this UTC day).
"""
from __future__ import annotations

from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from common.cloud import dataset_index, db, people, training_store
from common.domain import access, quotas, training_job

UNFINISHED = [training_job.QUEUED, training_job.RUNNING]


def charge_stored_bytes(uid: str, adding: int, limit: int, deadline: float) -> int:
    """Add `adding` to the person's stored bytes unless that goes over `limit` (quotas.Exceeded); the new usage."""
    ref = people.people().document(uid)

    def work(transaction) -> int:
        snapshot = ref.get(["stored_bytes"], transaction=transaction, **db.deadline(deadline))
        usage = int((snapshot.to_dict() or {}).get("stored_bytes") or 0) if snapshot.exists else 0
        quotas.check(quotas.STORED_BYTES, usage, adding, limit)
        transaction.set(ref, {"stored_bytes": usage + adding}, merge=True)
        return usage + adding

    return db.in_transaction(work)


def owned_datasets(uid: str, deadline: float) -> int:
    owner = FieldFilter(FieldPath("members", uid, "role").to_api_repr(), "==", access.OWNER)
    return _count(dataset_index.datasets().where(filter=owner), deadline)


def unfinished_training(uid: str, deadline: float) -> int:
    query = (training_store.jobs().where(filter=FieldFilter("requested_by", "==", uid))
             .where(filter=FieldFilter("status", "in", UNFINISHED)))
    return _count(query, deadline)


def training_hours_since(uid: str, since: float, now: float, deadline: float) -> float:
    query = (training_store.jobs().where(filter=FieldFilter("requested_by", "==", uid))
             .where(filter=FieldFilter("created_at", ">=", since))
             .select(["started_at", "finished_at", "accelerator"]))
    return quotas.hours_used([snapshot.to_dict() for snapshot in query.stream(**db.deadline(deadline))], now, since)


def _count(query, deadline: float) -> int:
    return int(query.count().get(**db.deadline(deadline))[0][0].value)
