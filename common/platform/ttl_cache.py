"""A thread-safe cache whose entries live a number of seconds, the least recently used pushed out past its
size: cachetools' TLRUCache (the period is read at each entry, so a changed setting applies to the next one)
under one lock, since an instance's concurrent requests share it.

What an instance read of an account (disabled, deleted, admitted) is kept briefly, so that checking it costs
one call per person and period, not one per request."""
from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Hashable
from typing import Generic, Literal, TypeVar

import cachetools

V = TypeVar("V")


class _Absent(enum.Enum):
    """No value kept (a kept value may be None): an enum member, so a type checker narrows `is not` it."""
    ABSENT = enum.auto()


_ABSENT = _Absent.ABSENT


class TtlCache(Generic[V]):
    def __init__(self, seconds: Callable[[], float], max_entries: int = 10_000):
        self._entries: cachetools.TLRUCache[Hashable, V] = cachetools.TLRUCache(
            max_entries, ttu=lambda _key, _value, now: now + seconds())
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], V], keep: Callable[[V], bool] = lambda value: True) -> V:
        """The cached value of `key`, or load() kept for the period when keep(it) (a load that raises is not
        kept). Loads run outside the lock: a slow one holds up no other key."""
        with self._lock:
            held: V | Literal[_Absent.ABSENT] = self._entries.get(key, _ABSENT)
        if held is not _ABSENT:
            return held
        value = load()
        if keep(value):
            with self._lock:
                self._entries[key] = value
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
