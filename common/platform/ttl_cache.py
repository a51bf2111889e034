"""A small thread-safe cache whose entries live a fixed number of seconds (no dependency for ~20 lines).

What an instance read of an account (disabled, deleted, admitted) is kept briefly, so that checking it costs
one call per person and period, not one per request."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, seconds: Callable[[], float], max_entries: int = 10_000):
        self._seconds, self._max = seconds, max_entries
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        """The cached value of `key`, or load() kept for the period (a load that raises is not kept)."""
        now = time.monotonic()
        with self._lock:
            held = self._entries.get(key)
            if held and held[0] > now:
                return held[1]
        value = load()
        with self._lock:
            self._entries[key] = (now + self._seconds(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
