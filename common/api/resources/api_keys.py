"""API keys: a person's keys for programs. A key is shown once; it acts as its maker until it is revoked or
expires. Keys are managed only with the person's own sign-in (an ID token), never with a key."""
from __future__ import annotations

import time

from common.api import access, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.routes import Route
from common.api.schema import NUMBER, STRING, array, nullable, obj
from common.cloud import api_key_store
from common.domain import api_keys, request_bodies
from common.platform import config

KEY_ID = params.path("key_id", "the key's id (key-...)")
KEY = obj(id=STRING, name=STRING, prefix=STRING, created_at=NUMBER, expires_at=NUMBER,
          last_used_at=nullable(NUMBER))


def _view(record: dict) -> dict:
    return {**{name: record.get(name) for name in KEY["properties"]},
            "expires_at": api_keys.expiry_of(record, config.api_key_days()[1])}


def _require_signed_in_person(ctx: RequestContext) -> None:
    access.require_person(ctx, "API keys")
    if ctx.principal.via != "id_token":
        raise ApiError(403, "API keys are managed only by a signed-in person (a Firebase ID token): an API key "
                            "cannot make, list or revoke keys; sign in on the page to manage them")


def create_key(ctx: RequestContext, args: dict) -> tuple[int, dict]:
    _require_signed_in_person(ctx)
    body: request_bodies.NewApiKey = args["body"]
    try:
        expires_at = api_keys.expires_at(time.time(), body.expires_at, *config.api_key_days())
    except ValueError as exc:
        raise ApiError(400, str(exc), "expires_at") from None
    key, record = api_key_store.create(ctx.principal.uid, ctx.principal.email, body.name, expires_at,
                                       ctx.deadline_seconds)
    return 201, {**_view(record), "key": key}


def list_keys(ctx: RequestContext, args: dict) -> dict:
    _require_signed_in_person(ctx)
    return {"keys": [_view(record) for record in api_key_store.of_person(ctx.principal.uid, ctx.deadline_seconds)]}


def revoke_key(ctx: RequestContext, args: dict) -> dict:
    _require_signed_in_person(ctx)
    if not api_key_store.revoke(ctx.principal.uid, args["key_id"], ctx.deadline_seconds):
        raise ApiError(404, f"you have no API key {args['key_id']!r}")
    return {"id": args["key_id"], "revoked": True}


ROUTES = [
    Route("POST", "/api-keys", create_key, "Make an API key (shown once) that acts as you", status=201,
          response=obj(**KEY["properties"], key={"type": "string", "description": "shown once; keep it secret"}),
          body=request_bodies.NewApiKey,
          rate_limited="api_keys"),
    Route("GET", "/api-keys", list_keys, "Your API keys (never the keys themselves)", obj(keys=array(KEY))),
    Route("DELETE", "/api-keys/{key_id}", revoke_key, "Revoke one of your API keys at once",
          obj(id=STRING, revoked={"const": True}), params=(KEY_ID,)),
]
