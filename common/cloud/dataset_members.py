"""The members of a dataset, kept on its document: `members` {uid: {role, email,
added_at}} and `member_uids` (what a person's dataset list queries)."""
from __future__ import annotations

from typing import Callable

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import dataset_index, db
from common.domain.access import Members

MAX_LISTED = 10_000  # datasets one person belongs to, read for their lists


class NoDataset(LookupError):
    pass


def of(dataset: str, deadline: float) -> Members | None:
    """The members of `dataset` ({} when only administrators have it); None when it does not exist."""
    snapshot = dataset_index.dataset_ref(dataset).get(["members"], **db.deadline(deadline))
    if not snapshot.exists:
        return None
    return (snapshot.to_dict() or {}).get("members") or {}


def create(dataset: str, members: Members, deadline: float) -> bool:
    """A new, empty dataset with these members; False when the name is taken."""
    return dataset_index.create_dataset(dataset, _fields(members), deadline)


def change(dataset: str, rule: Callable[[Members], Members], deadline: float) -> Members:
    """Apply `rule` to the members in one transaction; the members after."""
    ref = dataset_index.dataset_ref(dataset)

    def work(transaction) -> Members:
        snapshot = ref.get(transaction=transaction, **db.deadline(deadline))
        if not snapshot.exists:
            raise NoDataset(dataset)
        members = rule((snapshot.to_dict() or {}).get("members") or {})
        transaction.update(ref, _fields(members))
        return members

    return db.in_transaction(work)


def datasets_of(uid: str, deadline: float) -> list[str]:
    """The names of the datasets `uid` is a member of."""
    query = (dataset_index.datasets().where(filter=FieldFilter("member_uids", "array_contains", uid))
             .select([]).limit(MAX_LISTED))
    return sorted(snapshot.id for snapshot in query.stream(**db.deadline(deadline)))


def _fields(members: Members) -> dict:
    return {"members": members, "member_uids": sorted(members)}
