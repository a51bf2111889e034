"""The members of a dataset: who may see it, edit it, own it; and invitations by e-mail address.

A role given by uid goes to that account. A role given by e-mail address goes to the account whose VERIFIED
address it is; when no account has verified it (nobody signed up with it yet, or someone registered it
without proving it is theirs), it is an invitation, pending until a person with that verified address signs
in: then it binds to their uid. Registering another person's address first earns nothing.
"""
from __future__ import annotations

import time

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.routes import Route
from common.api.schema import NUMBER, STRING, array, nullable, obj
from common.cloud import dataset_members, identity
from common.domain import access as rules
from common.domain import joining, request_bodies
from common.domain.access import Invitations, Members

DATASET = params.path("dataset", "the dataset name")
USER = params.path("user", "the person: a Firebase uid, or an e-mail address")
ROLE = {"type": "string", "enum": list(rules.ROLES)}
MEMBER = obj(uid=STRING, email=nullable(STRING), role=ROLE, added_at=NUMBER)
INVITATION = obj(email=STRING, role=ROLE, invited_at=NUMBER)
MEMBERS = obj(dataset=STRING, members=array(MEMBER), invitations=array(INVITATION))
LAST_OWNER = {409: ("the dataset would be left without an owner", ERROR_SCHEMA)}


def _view(dataset: str, members: Members, invitations: Invitations) -> dict:
    return {"dataset": dataset, "members": [{"uid": uid, **member} for uid, member in sorted(members.items())],
            "invitations": [{"email": email, "role": invitation["role"], "invited_at": invitation["invited_at"]}
                            for email, invitation in sorted(invitations.items())]}


def list_members(ctx: RequestContext, args: dict) -> dict:
    dataset = args["dataset"]
    return _view(dataset, access.members_of(ctx, dataset) or {},
                 dataset_members.invitations_of(dataset, ctx.deadline_seconds))


def put_member(ctx: RequestContext, args: dict) -> dict:
    role: str = args["body"].role
    user, now = args["user"], time.time()
    if "@" not in user:
        known = _person_by_uid(user)
        return _changed(ctx, args["dataset"], lambda members, invitations: (
            rules.with_member(members, known.uid, role, known.email, now), invitations))
    email, person = joining.normalized_email(user), _verified_account(user)
    if person is None:  # an invitation: nobody gets the role until this address is verified by its owner
        return _changed(ctx, args["dataset"], lambda members, invitations: (
            members, rules.with_invitation(invitations, email, role, ctx.principal.name, now)))
    return _changed(ctx, args["dataset"], lambda members, invitations: (
        rules.with_member(members, person.uid, role, email, now), rules.without_invitation(invitations, email)))


def delete_member(ctx: RequestContext, args: dict) -> dict:
    user = args["user"]
    if "@" not in user:
        person = _person_by_uid(user)
        return _changed(ctx, args["dataset"], lambda members, invitations: (
            rules.without_member(members, person.uid), invitations))
    email = joining.normalized_email(user)
    person = _lookup(lambda: identity.person_by_email(user))
    uid = person.uid if person else None
    return _changed(ctx, args["dataset"], lambda members, invitations: (
        rules.without_member(members, uid) if uid else members, rules.without_invitation(invitations, email)))


def _person_by_uid(uid: str) -> identity.Person:
    person = _lookup(lambda: identity.person_by_uid(uid))
    if person is None:
        raise ApiError(404, f"no person {uid!r} has signed up: give the role by e-mail address to invite them")
    return person


def _verified_account(email: str) -> identity.Person | None:
    """The account whose verified address `email` is; None when none (no account, or not verified)."""
    person = _lookup(lambda: identity.person_by_email(email))
    return person if person is not None and person.email_verified else None


def _lookup(find):
    try:
        return find()
    except identity.IdentityUnavailable as down:
        raise ApiError(503, f"the identity service could not be asked ({down}); try again",
                       headers={"Retry-After": "5"}) from None


def _changed(ctx: RequestContext, dataset: str, rule) -> dict:
    try:
        return _view(dataset, *dataset_members.change_with_invitations(dataset, rule, ctx.deadline_seconds))
    except rules.LastOwner as exc:
        raise ApiError(409, str(exc)) from None


ROUTES = [
    Route("GET", "/datasets/{dataset}/members", list_members, "Who may see, edit and own the dataset, and who "
          "is invited", MEMBERS, params=(DATASET,), role=access.VIEWER),
    Route("PUT", "/datasets/{dataset}/members/{user}", put_member,
          "Give a person a role on the dataset (by e-mail: an invitation until that address is verified)",
          MEMBERS, params=(DATASET, USER), body=request_bodies.MemberRole, role=access.OWNER, responses=LAST_OWNER),
    Route("DELETE", "/datasets/{dataset}/members/{user}", delete_member,
          "Take a person off the dataset (by e-mail: their invitation too)",
          MEMBERS, params=(DATASET, USER), role=access.OWNER, responses=LAST_OWNER),
]
