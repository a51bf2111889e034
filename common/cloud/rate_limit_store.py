"""Per-caller request counters, one Firestore document per caller, kind and window."""
from __future__ import annotations

import time

from google.cloud import firestore

from common.cloud import db
from common.domain import rate_limits


def take(principal: str, kind: str, limit: int, seconds: int, deadline: float) -> int | None:
    """Count one request; None when it is within the limit, else the seconds
    until the caller may try again."""
    now = time.time()
    ref = db.client().collection("rate_limits").document(rate_limits.counter_id(principal, kind, now, seconds))

    def work(transaction) -> int | None:
        snapshot = ref.get(transaction=transaction, **db.deadline(deadline))
        count = snapshot.get("count") if snapshot.exists else 0
        if count >= limit:
            return rate_limits.retry_after(now, seconds)
        # expires_at: a Firestore TTL policy deletes old windows in production
        transaction.set(ref, {"count": firestore.Increment(1), "expires_at": now + 2 * seconds}, merge=True)
        return None

    return db.in_transaction(work)
