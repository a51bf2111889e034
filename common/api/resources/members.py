"""The members of a dataset: who may see it, edit it, own it."""
from __future__ import annotations

import time

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ERROR_SCHEMA, ApiError
from common.api.routes import Route
from common.api.schema import NUMBER, STRING, array, nullable, obj
from common.cloud import dataset_members, identity
from common.domain import access as rules
from common.domain.access import Members

DATASET = params.path("dataset", "the dataset name")
USER = params.path("user", "the person: a Firebase uid, or an e-mail address")
MEMBER = obj(uid=STRING, email=nullable(STRING), role={"type": "string", "enum": list(rules.ROLES)},
             added_at=NUMBER)
MEMBERS = obj(dataset=STRING, members=array(MEMBER))
LAST_OWNER = {409: ("the dataset would be left without an owner", ERROR_SCHEMA)}


def _view(dataset: str, members: Members) -> dict:
    return {"dataset": dataset, "members": [{"uid": uid, **member} for uid, member in sorted(members.items())]}


def list_members(ctx: RequestContext, args: dict) -> dict:
    return _view(args["dataset"], access.members_of(ctx, args["dataset"]) or {})


def put_member(ctx: RequestContext, args: dict) -> dict:
    body = args["body"]
    role = body.get("role") if isinstance(body, dict) else None
    if role not in rules.ROLES:
        raise ApiError(400, f"role must be one of {', '.join(rules.ROLES)}, got {role!r}", "role")
    person = _person(args["user"])
    return _changed(ctx, args["dataset"],
                    lambda members: rules.with_member(members, person.uid, role, person.email, time.time()))


def delete_member(ctx: RequestContext, args: dict) -> dict:
    person = _person(args["user"])
    return _changed(ctx, args["dataset"], lambda members: rules.without_member(members, person.uid))


def _person(user: str) -> identity.Person:
    person = identity.person_by_email(user) if "@" in user else identity.person_by_uid(user)
    if person is None:
        raise ApiError(404, f"no person {user!r} has signed up: they sign in once, then they can be added")
    return person


def _changed(ctx: RequestContext, dataset: str, rule) -> dict:
    try:
        return _view(dataset, dataset_members.change(dataset, rule, ctx.deadline_seconds))
    except rules.LastOwner as exc:
        raise ApiError(409, str(exc)) from None


ROUTES = [
    Route("GET", "/datasets/{dataset}/members", list_members, "Who may see, edit and own the dataset",
          MEMBERS, params=(DATASET,), role=access.VIEWER),
    Route("PUT", "/datasets/{dataset}/members/{user}", put_member, "Give a person a role on the dataset",
          MEMBERS, params=(DATASET, USER), body=obj(role={"type": "string", "enum": list(rules.ROLES)}),
          role=access.OWNER, responses=LAST_OWNER),
    Route("DELETE", "/datasets/{dataset}/members/{user}", delete_member, "Take a person off the dataset",
          MEMBERS, params=(DATASET, USER), role=access.OWNER, responses=LAST_OWNER),
]
