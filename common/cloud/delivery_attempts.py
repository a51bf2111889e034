"""Which redelivered messages a consumer started handling and never finished: the mark of a message that killed
its consumer (a process out of memory dies without a word). One small document per message being handled again,
deleted when its handling ends, whatever the outcome; so a message nacked for a transient failure leaves none."""
from __future__ import annotations

from google.cloud import firestore

from common.cloud import db


def _attempts():
    return db.client().collection("delivery_attempts")


def _ref(subscription: str, message_id: str):
    return _attempts().document(f"{subscription}:{message_id}")


def begin(subscription: str, message_id: str) -> int:
    """Mark a handling of the message as started; how many earlier ones started and never ended."""
    ref = _ref(subscription, message_id)
    earlier = (db.read_fields(ref, ["unfinished"]) or {}).get("unfinished", 0)
    ref.set({"unfinished": firestore.Increment(1), "subscription": subscription, "message_id": message_id,
             "updated_at": firestore.SERVER_TIMESTAMP}, merge=True, **db.deadline())
    return earlier


def end(subscription: str, message_id: str) -> None:
    """The handling ended (or the message is settled without one): forget it."""
    _ref(subscription, message_id).delete(**db.deadline())
