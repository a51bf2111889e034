"""The members of a dataset, kept on its document: `members` {uid: {role, email,
added_at}} and `member_uids` (what a person's dataset list queries); pending
invitations by e-mail address: `invitations` {address: {role, invited_at,
invited_by}} and `invited_emails` (what a person's first sign-in queries)."""
from __future__ import annotations

import time
from collections.abc import Callable

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import dataset_index, db, pages
from common.domain import access
from common.domain.access import Invitations, Members

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


def invitations_of(dataset: str, deadline: float) -> Invitations:
    snapshot = dataset_index.dataset_ref(dataset).get(["invitations"], **db.deadline(deadline))
    return (snapshot.to_dict() or {}).get("invitations") or {} if snapshot.exists else {}


def change_with_invitations(dataset: str, rule: Callable[[Members, Invitations], tuple[Members, Invitations]],
                            deadline: float) -> tuple[Members, Invitations]:
    """Apply `rule` to the members and invitations together in one transaction; both after."""
    ref = dataset_index.dataset_ref(dataset)

    def work(transaction) -> tuple[Members, Invitations]:
        snapshot = ref.get(transaction=transaction, **db.deadline(deadline))
        if not snapshot.exists:
            raise NoDataset(dataset)
        held = snapshot.to_dict() or {}
        members, invitations = rule(held.get("members") or {}, held.get("invitations") or {})
        transaction.update(ref, {**_fields(members), **_invitation_fields(invitations)})
        return members, invitations

    return db.in_transaction(work)


def bind_invitations(uid: str, email: str, deadline: float) -> list[str]:
    """Turn every dataset's invitation of `email` (a verified address of `uid`) into membership; the datasets."""
    query = (dataset_index.datasets().where(filter=FieldFilter("invited_emails", "array_contains", email))
             .select([]).limit(MAX_LISTED))
    names = [snapshot.id for snapshot in query.stream(**db.deadline(deadline))]
    for name in names:
        change_with_invitations(name, lambda members, invitations: access.bound(members, invitations, uid, email,
                                                                                time.time()), deadline)
    return names


def is_member_anywhere(uid: str, deadline: float) -> bool:
    query = dataset_index.datasets().where(filter=FieldFilter("member_uids", "array_contains", uid)).select([]).limit(1)
    return any(True for _ in query.stream(**db.deadline(deadline)))


def datasets_of(uid: str, deadline: float) -> list[str]:
    """The names of the datasets `uid` is a member of."""
    query = (dataset_index.datasets().where(filter=FieldFilter("member_uids", "array_contains", uid))
             .select([]).limit(MAX_LISTED))
    return sorted(snapshot.id for snapshot in query.stream(**db.deadline(deadline)))


def listed(uid: str | None) -> pages.Query:
    """The datasets `uid` is a member of (None: every dataset) by name, each document with its id."""
    collection = dataset_index.datasets()
    mine = None if uid is None else collection.where(filter=FieldFilter("member_uids", "array_contains", uid))
    return pages.Query(collection, mine, id_field="id")


def _fields(members: Members) -> dict:
    return {"members": members, "member_uids": sorted(members)}


def _invitation_fields(invitations: Invitations) -> dict:
    return {"invitations": invitations, "invited_emails": sorted(invitations)}
