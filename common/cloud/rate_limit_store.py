"""Per-caller request counters, one Firestore document per caller, kind and window; and a ceiling per kind
for everyone together, so that many new accounts cannot multiply one person's limit without end.

The ceiling's counter is spread over SHARDS documents (one picked at random per request, each allowed its
share of the ceiling), so it never becomes one hot document every request writes. `expires_at` is a
timestamp: the Firestore TTL policy on `rate_limits.expires_at` deletes old windows in production."""
from __future__ import annotations

import math
import random
import time
from datetime import datetime, UTC

from google.cloud import firestore

from common.cloud import db
from common.domain import rate_limits
from common.platform import config

SHARDS = 10
EVERYONE = "*"  # the caller name of the ceiling's counters (a uid never is)


def take(principal: str, kind: str, limit: int, seconds: int, deadline: float) -> rate_limits.Throttled | None:
    """Count one request; None when it is within the limit, else how long until the caller may try again
    and whether the person's own limit or everyone's ceiling was reached."""
    now = time.time()
    wait = _count(rate_limits.counter_id(principal, kind, now, seconds), limit, now, seconds, deadline)
    if wait is not None:
        return rate_limits.Throttled(wait, everyone=False)
    factor = config.rate_limit_global_factor()
    if factor <= 0:
        return None
    shard = f"{rate_limits.counter_id(EVERYONE, kind, now, seconds)}|{random.randrange(SHARDS)}"
    wait = _count(shard, math.ceil(limit * factor / SHARDS), now, seconds, deadline)
    return rate_limits.Throttled(wait, everyone=True) if wait is not None else None


def _count(counter: str, limit: int, now: float, seconds: int, deadline: float) -> int | None:
    """One atomic increment, whose write result carries the count it made (the API's transform_results): no
    read-then-write transaction, which failed under one person's own concurrent requests (seen: 8 at once,
    'Failed to commit transaction in 25 attempts'), and exactly `limit` requests admitted per window."""
    ref = db.client().collection("rate_limits").document(counter)
    expires_at = datetime.fromtimestamp(now + 2 * seconds, tz=UTC)
    written = ref.set({"count": firestore.Increment(1), "expires_at": expires_at}, merge=True,
                      **db.deadline(deadline))
    count = written.transform_results[0].integer_value
    return rate_limits.retry_after(now, seconds) if count > limit else None
