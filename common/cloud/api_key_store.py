"""API keys in Firestore: `api_keys/{sha256 of the key}`, so a key is found by
one document read and never stored itself."""
from __future__ import annotations

import time

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db
from common.domain import api_keys

TOUCH_EVERY_SECONDS = 60  # last_used_at is refreshed at most this often: no write per request


def _keys():
    return db.client().collection("api_keys")


def create(uid: str, email: str | None, name: str, deadline: float) -> tuple[str, dict]:
    """A new key for `uid`: (the key, shown once; its record)."""
    key = api_keys.new_key()
    record = {"id": api_keys.new_key_id(), "uid": uid, "email": email, "name": name,
              "prefix": api_keys.shown_prefix(key), "created_at": time.time(), "last_used_at": None,
              "revoked": False}
    _keys().document(api_keys.fingerprint(key)).create(record, **db.deadline(deadline))
    return key, record


def find(key: str, deadline: float) -> dict | None:
    """The live record of `key`, or None (unknown or revoked); notes its use."""
    ref = _keys().document(api_keys.fingerprint(key))
    snapshot = ref.get(**db.deadline(deadline))
    record = snapshot.to_dict() if snapshot.exists else None
    if record is None or record["revoked"]:
        return None
    now = time.time()
    if now - (record["last_used_at"] or 0) > TOUCH_EVERY_SECONDS:
        ref.update({"last_used_at": now}, **db.deadline(deadline))
    return record


def of_person(uid: str, deadline: float) -> list[dict]:
    query = _keys().where(filter=FieldFilter("uid", "==", uid)).where(filter=FieldFilter("revoked", "==", False))
    return sorted((s.to_dict() for s in query.stream(**db.deadline(deadline))), key=lambda r: r["created_at"])


def revoke(uid: str, key_id: str, deadline: float) -> bool:
    """Revoke the caller's key `key_id` at once; False when the caller has no such key."""
    query = _keys().where(filter=FieldFilter("uid", "==", uid)).where(filter=FieldFilter("id", "==", key_id))
    found = list(query.stream(**db.deadline(deadline)))
    for snapshot in found:
        snapshot.reference.update({"revoked": True, "revoked_at": time.time()}, **db.deadline(deadline))
    return bool(found)
