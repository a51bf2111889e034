"""API keys: what a key looks like and how it is kept. Pure.

A key is `yd_` + 40 random URL-safe characters, shown once when it is made;
only its SHA-256 is stored, so a leak of the index reveals no key. Its `id`
(for listing and revoking) and its `prefix` (the first characters, for people
to tell keys apart) are not secret.
"""
from __future__ import annotations

import hashlib
import secrets

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
