"""API keys in Firestore: `api_keys/{sha256 of the key}`, so a key is found by
one document read and never stored itself."""
from __future__ import annotations

import time

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db
from common.domain import api_keys
from common.platform import config

TOUCH_EVERY_SECONDS = 60  # last_used_at is refreshed at most this often: no write per request


def _keys():
    return db.client().collection("api_keys")


def create(uid: str, email: str | None, name: str, expires_at: float, deadline: float) -> tuple[str, dict]:
    """A new key for `uid`: (the key, shown once; its record)."""
    key = api_keys.new_key()
    record = {"id": api_keys.new_key_id(), "uid": uid, "email": email, "name": name,
              "prefix": api_keys.shown_prefix(key), "created_at": time.time(), "expires_at": expires_at,
              "last_used_at": None, "revoked": False}
    _keys().document(api_keys.fingerprint(key)).create(record, **db.deadline(deadline))
    return key, record


def find(key: str, deadline: float) -> dict | None:
    """The record of `key` unless it is unknown or revoked (None); notes its use. Expiry is the caller's to check."""
    ref = _keys().document(api_keys.fingerprint(key))
    snapshot = ref.get(**db.deadline(deadline))
    record = snapshot.to_dict() if snapshot.exists else None
    if record is None or record["revoked"]:
        return None
    now = time.time()
    if api_keys.expiry_of(record, config.api_key_days()[1]) <= now:
        return record  # expired: not a use
    if now - (record["last_used_at"] or 0) > TOUCH_EVERY_SECONDS:
        ref.update({"last_used_at": now}, **db.deadline(deadline))
    return record


def of_person(uid: str, deadline: float) -> list[dict]:
    query = _keys().where(filter=FieldFilter("uid", "==", uid)).where(filter=FieldFilter("revoked", "==", False))
    return sorted((s.to_dict() for s in query.stream(**db.deadline(deadline))), key=lambda r: r["created_at"])


def is_live(key_id: str, deadline: float) -> bool:
    """Whether the key `key_id` is neither revoked nor expired (for what it wrote before: common.cloud.uploader)."""
    query = _keys().where(filter=FieldFilter("id", "==", key_id)).limit(1)
    found = [snapshot.to_dict() for snapshot in query.stream(**db.deadline(deadline))]
    return bool(found) and not found[0]["revoked"] and \
        api_keys.expiry_of(found[0], config.api_key_days()[1]) > time.time()


def revoke(uid: str, key_id: str, deadline: float) -> bool:
    """Revoke the caller's key `key_id` at once; False when the caller has no such key."""
    query = _keys().where(filter=FieldFilter("uid", "==", uid)).where(filter=FieldFilter("id", "==", key_id))
    found = list(query.stream(**db.deadline(deadline)))
    for snapshot in found:
        snapshot.reference.update({"revoked": True, "revoked_at": time.time()}, **db.deadline(deadline))
    return bool(found)
