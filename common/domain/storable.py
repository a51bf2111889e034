"""Whether a caller's JSON can be stored as a Firestore value, and why not.

A training request is recorded whole as the job's `request`; JSON that
Firestore refuses (an array directly in an array, an empty or reserved key, a
lone surrogate, an integer beyond 64 bits) would fail after the publish and
leave a job nobody can read, so the API refuses it first, with the reason, and
the training function records such a request only as text.
"""
from __future__ import annotations

import json
import re


MAX_BYTES = 256 * 1024
MAX_NESTING = 20
MAX_KEY_BYTES = 1500
_RESERVED_KEY = re.compile(r"__.*__")
_INT64 = range(-2**63, 2**63)


def problem(value: object) -> str | None:
    """None when Firestore can store `value`; else the reason, for a person."""
    if len(json.dumps(value)) > MAX_BYTES:
        return f"it is over {MAX_BYTES} bytes"
    return _problem(value, 0, in_array=False)


def _problem(value: object, depth: int, in_array: bool) -> str | None:
    if depth > MAX_NESTING:
        return f"it nests deeper than {MAX_NESTING} levels"
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        return f"the integer {value} is beyond 64 bits"
    if isinstance(value, list):
        if in_array:
            return "it holds an array directly inside an array"
        return next(filter(None, (_problem(item, depth + 1, True) for item in value)), None)
    if isinstance(value, dict):
        return next(filter(None, (_key_problem(key) or _problem(item, depth + 1, False)
                                  for key, item in value.items())), None)
    return None


def _text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"the text {quoted(text)} is not valid Unicode (a lone surrogate)"
    return None


def quoted(raw: str, limit: int = 60) -> str:
    """A caller's value as a message shows it: quoted, and cut when long."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


def _key_problem(key: str) -> str | None:
    if not key or _RESERVED_KEY.fullmatch(key) or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"the key {quoted(key)} cannot name a field (empty, __reserved__ or over {MAX_KEY_BYTES} bytes)"
    return _text_problem(key)
