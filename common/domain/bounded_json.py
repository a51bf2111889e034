"""JSON from someone else, parsed within bounds: a document nested deeper than a
sane limit is refused with a ValueError saying so, never a RecursionError (which
would read as a bug, a 500) and never a document the code below must walk."""
from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # arrays and objects inside one another; the API's own bodies nest a few levels


class TooDeep(ValueError):
    """The document nests arrays and objects deeper than allowed."""


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The document `data` holds; ValueError when it is not JSON, TooDeep when it nests deeper than
    `max_depth`."""
    try:
        document = json.loads(data)
    except RecursionError:  # the parser's own limit (about 1000 levels): far past ours
        raise TooDeep(_deeper_than(max_depth)) from None
    if depth_of(document, max_depth + 1) > max_depth:
        raise TooDeep(_deeper_than(max_depth))
    return document


def depth_of(document: Any, stop_at: int) -> int:
    """How deep arrays and objects nest in `document` (a scalar is 0), counted without recursion and
    no further than `stop_at`."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest >= stop_at:
            return deepest
        pending += [(child, depth + 1) for child in children]
    return deepest


def _deeper_than(max_depth: int) -> str:
    return f"the JSON nests arrays and objects more than {max_depth} levels deep; flatten it"
