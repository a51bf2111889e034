"""API keys: what a key looks like and how it is kept. Pure.

A key is `yd_` + 40 random URL-safe characters, shown once when it is made;
only its SHA-256 is stored, so a leak of the index reveals no key. Its `id`
(for listing and revoking) and its `prefix` (the first characters, for people
to tell keys apart) are not secret.

A key expires: its maker picks `expires_at` (at most the maximum ahead; the
default when left out), and a key made before keys expired lives the maximum
from its creation. Keys are managed (made, listed, revoked) only with a
person's own sign-in, never with a key: a leaked key cannot outlive its
revocation by making another.
"""
from __future__ import annotations
from typing import Any

import hashlib
import secrets
from datetime import datetime, UTC

PREFIX = "yd_"
SHOWN_CHARACTERS = 8  # of the key, in listings


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(30)


def new_key_id() -> str:
    return "key-" + secrets.token_hex(8)


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


def fingerprint(key: str) -> str:
    """What is stored and looked up: the key's SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()


def shown_prefix(key: str) -> str:
    return key[:len(PREFIX) + SHOWN_CHARACTERS]


DAY = 86_400


def expires_at(now: float, requested: object, default_days: int, max_days: int) -> float:
    """When a key made at `now` expires: `requested` (epoch seconds), or `default_days` ahead when it is None.
    ValueError saying what is allowed when it is not a time in the next `max_days` days."""
    if requested is None:
        return now + min(default_days, max_days) * DAY
    if isinstance(requested, bool) or not isinstance(requested, (int, float)) or \
            not now < requested <= now + max_days * DAY:
        raise ValueError(f"expires_at must be a time (seconds since the epoch) after now and at most {max_days} "
                         f"days ahead; leave it out for {min(default_days, max_days)} days")
    return float(requested)


def expiry_of(record: dict[str, Any], max_days: int) -> float:
    """When the key of `record` expires (one made before keys expired: `max_days` after it was made)."""
    expiry: float = record.get("expires_at") or record["created_at"] + max_days * DAY
    return expiry


def expired_refusal(record: dict[str, Any], now: float, max_days: int) -> str | None:
    expiry = expiry_of(record, max_days)
    if now < expiry:
        return None
    when = datetime.fromtimestamp(expiry, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"the API key {record['prefix']}... expired at {when}: sign in and make a new one"
