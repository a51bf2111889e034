"""JSON Schema builders for the routes' declarations (OpenAPI 3.1 is JSON Schema 2020-12)."""
from __future__ import annotations

from typing import Any

STRING, INTEGER, NUMBER, BOOLEAN = ({"type": "string"}, {"type": "integer"}, {"type": "number"},
                                    {"type": "boolean"})
ANY: dict = {}


def obj(required: tuple[str, ...] | None = None, **properties: Any) -> dict:
    """An object with `properties`; all of them required unless `required` names a subset."""
    names = tuple(properties) if required is None else required
    return {"type": "object", "properties": properties, "required": list(names)}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def page_of(items_key: str, item: dict) -> dict:
    """A page of a list: the items and the token of the next page (null on the last)."""
    return obj(None, **{items_key: array(item), "next_page_token": nullable(STRING)})

