"""Roles on a dataset and the rules of its member list. Pure.

Roles, each including the ones before it: viewer (read, predict with the
dataset's models), editor (edit labels and classes, versions, exports,
auto-labelling, training, uploads), owner (everything, members included).
A dataset that has owners always keeps at least one. A dataset with no
members at all (one that first appeared through a bucket drop) belongs to the
administrators until one of them gives it an owner.

A role given to an e-mail address that no account has verified is an
invitation: pending, it gives nothing to anyone, until a person whose
verified address it is signs in and it binds to their uid. So registering
someone else's address first (unverified) earns no role.
"""
from __future__ import annotations

from typing import TypedDict

VIEWER, EDITOR, OWNER = "viewer", "editor", "owner"
ROLES = (VIEWER, EDITOR, OWNER)


class Member(TypedDict):
    role: str
    email: str | None
    added_at: float


Members = dict[str, Member]  # uid -> member


class Invitation(TypedDict):
    role: str
    invited_at: float
    invited_by: str


Invitations = dict[str, Invitation]  # normalized e-mail address -> invitation


class LastOwner(ValueError):
    """The change would leave a dataset that has owners with none."""


def allows(role: str | None, needed: str) -> bool:
    """Whether `role` (None: not a member) may do what needs `needed`."""
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def role_of(members: Members, uid: str | None) -> str | None:
    member = members.get(uid) if uid else None
    return member["role"] if member else None


def with_member(members: Members, uid: str, role: str, email: str | None, now: float) -> Members:
    """The members after giving `uid` the role `role` (added or changed)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    added_at = members[uid]["added_at"] if uid in members else now
    return _keeping_an_owner(members, {**members, uid: Member(role=role, email=email, added_at=added_at)})


def with_invitation(invitations: Invitations, email: str, role: str, by: str, now: float) -> Invitations:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return {**invitations, email: Invitation(role=role, invited_at=now, invited_by=by)}


def without_invitation(invitations: Invitations, email: str) -> Invitations:
    return {address: invitation for address, invitation in invitations.items() if address != email}


def bound(members: Members, invitations: Invitations, uid: str, email: str,
          now: float) -> tuple[Members, Invitations]:
    """The members and invitations after the person `uid`, whose verified address is `email`, takes up the
    invitation of that address; a member already keeps the higher of their role and the invited one."""
    invitation = invitations.get(email)
    if invitation is None:
        return members, invitations
    role = invitation["role"]
    if uid in members and ROLES.index(members[uid]["role"]) > ROLES.index(role):
        role = members[uid]["role"]
    return with_member(members, uid, role, email, now), without_invitation(invitations, email)


def without_member(members: Members, uid: str) -> Members:
    return _keeping_an_owner(members, {other: m for other, m in members.items() if other != uid})


def _keeping_an_owner(before: Members, after: Members) -> Members:
    if _owners(before) and not _owners(after):
        raise LastOwner(f"a dataset keeps at least one owner: make another member owner first "
                        f"({', '.join(_owners(before))} is the last)")
    return after


def _owners(members: Members) -> list[str]:
    return sorted(uid for uid, member in members.items() if member["role"] == OWNER)
