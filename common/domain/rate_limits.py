"""Fixed-window rate limits per caller. Pure.

A window is `seconds` long and starts at a multiple of it; each caller may make
`limit` requests of one kind per window. The counter of a window is one
document, written by that caller only, so it never becomes a hot document
shared by everyone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Throttled:
    """A request over a limit: seconds until the window ends, and whose limit it was."""
    wait: int
    everyone: bool  # the ceiling for everyone together, not the person's own limit

    def message(self, limit: int, what: str, seconds: int) -> str:
        if self.everyone:
            return (f"{what} requests of all people together are over their ceiling for this {seconds} s window "
                    f"(not your own limit of {limit}): try again in {self.wait} s")
        return f"more than {limit} {what} requests in {seconds} s, the limit per person: try again in {self.wait} s"


def window_start(now: float, seconds: int) -> int:
    return int(now // seconds * seconds)


def counter_id(principal: str, kind: str, now: float, seconds: int) -> str:
    return f"{principal}|{kind}|{window_start(now, seconds)}"


def retry_after(now: float, seconds: int) -> int:
    """Whole seconds until the window of `now` ends (at least 1)."""
    return max(1, math.ceil(window_start(now, seconds) + seconds - now))
