"""One person's concurrent requests against their own rate-limit counter: counted, never a 500.

A read-then-write transaction on the counter failed under 8 concurrent predictions of one person
('Failed to commit transaction in 25 attempts'), so a burst answered 500 instead of 429."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from common.cloud import rate_limit_store

BURST, LIMIT = 24, 10


def test_a_burst_of_one_person_is_counted_without_contention_and_admits_exactly_the_limit(stack):
    person = f"burst-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(BURST) as pool:
            taken = list(pool.map(lambda _: rate_limit_store.take(person, "predict", LIMIT, 3600, 30.0), range(BURST)))
    refused = [throttled for throttled in taken if throttled is not None]
    assert BURST - len(refused) == LIMIT  # each increment's own count decides: exactly the limit admitted
    assert all(1 <= throttled.wait <= 3600 and not throttled.everyone for throttled in refused)
    assert rate_limit_store.take(person, "predict", LIMIT, 3600, 30.0) is not None, "the window is spent"
