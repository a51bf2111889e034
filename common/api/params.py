"""Parameters, declared once: the router reads them with these rules and the
OpenAPI document shows the same declarations."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol
from collections.abc import Callable, Mapping

from common.api.errors import ApiError
from common.domain.storable import quoted

_INTEGER = re.compile(r"-?[0-9]{1,18}")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict  # JSON Schema: integer or number (minimum, maximum), boolean, string (enum, pattern), array
    description: str
    location: str = "query"  # or "path", or "header"
    holds_slashes: bool = False  # a path parameter that may hold '/' (an image id)

    def read(self, raw: str | list[str] | None) -> Any:
        """The value of `raw` (an array's: every value given), the default when absent, or a 400 naming
        the parameter."""
        if raw is None:
            return self.schema.get("default")
        return _READERS[self.schema["type"]](self, raw)

    def invalid(self, expected: str, raw: str) -> ApiError:
        return ApiError(400, f"{self.name} must be {expected}, got {quoted(raw)}", self.name)


def integer(name: str, description: str, minimum: int, maximum: int, default: int) -> Param:
    return Param(name, {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default},
                 description)


def number(name: str, description: str, minimum: float, maximum: float, default: float) -> Param:
    return Param(name, {"type": "number", "minimum": minimum, "maximum": maximum, "default": default},
                 description)


def items(name: str, description: str) -> Param:
    """Text items, given as the parameter repeated or separated by commas (classes=a,b&classes=c)."""
    return Param(name, {"type": "array", "items": {"type": "string"}}, description)


def boolean(name: str, description: str) -> Param:
    return Param(name, {"type": "boolean"}, description)


def choice(name: str, description: str, values: tuple[str, ...]) -> Param:
    return Param(name, {"type": "string", "enum": list(values)}, description)


def text(name: str, description: str, pattern: str | None = None) -> Param:
    return Param(name, {"type": "string", **({"pattern": pattern} if pattern else {})}, description)


def path(name: str, description: str, holds_slashes: bool = False) -> Param:
    return Param(name, {"type": "string", "minLength": 1}, description, "path", holds_slashes)


def header(name: str, description: str, pattern: str | None = None) -> Param:
    return Param(name, {"type": "string", **({"pattern": pattern} if pattern else {})}, description, "header")


class Values(Protocol):
    """What a request's parameters are read from: its path's, its query's (werkzeug's MultiDict), its headers."""
    def __contains__(self, key: str, /) -> bool: ...
    def get(self, key: str, /) -> str | None: ...


def read_all(declared: tuple[Param, ...], path_args: Mapping[str, str], query: Mapping[str, str],
             headers: Values) -> dict:
    """Every declared parameter of one request, by name; a parameter the route does not take is a 400
    (a misspelt filter must not answer unfiltered)."""
    taken = [p.name for p in declared if p.location == "query"]
    unknown = next((name for name in query if name not in taken), None)
    if unknown is not None:
        raise ApiError(400, f"unknown parameter {quoted(unknown)}; this route takes "
                            f"{', '.join(taken) or 'no query parameters'}", unknown)
    sources = {"path": path_args, "query": query, "header": headers}
    return {p.name: p.read(_given(p, sources[p.location])) for p in declared}


def _given(param: Param, source: Values) -> str | list[str] | None:
    if param.schema["type"] == "array":
        return source.getlist(param.name) if param.name in source else None  # type: ignore[attr-defined]
    return source.get(param.name)


def _integer(param: Param, raw: str) -> int:
    low, high = param.schema["minimum"], param.schema["maximum"]
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        raise param.invalid(f"an integer from {low} to {high}", raw)
    return int(raw)


def _number(param: Param, raw: str) -> float:
    low, high = param.schema["minimum"], param.schema["maximum"]
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise param.invalid(f"a number from {low:g} to {high:g}", raw)
    return value


def _items(param: Param, raw: list[str]) -> list[str]:
    values = [item for value in raw for item in value.split(",") if item]
    if not values:
        raise param.invalid("one or more items separated by commas", ",".join(raw))
    return values


def _boolean(param: Param, raw: str) -> bool:
    if raw.lower() not in _BOOLEANS:
        raise param.invalid("true or false", raw)
    return _BOOLEANS[raw.lower()]


def _string(param: Param, raw: str) -> str:
    values, pattern = param.schema.get("enum"), param.schema.get("pattern")
    if values is not None and raw not in values:
        raise param.invalid(_one_of(values), raw)
    if pattern is not None and not re.search(pattern, raw):
        raise param.invalid(f"text matching {pattern}", raw)
    return raw


def _one_of(values: list[str]) -> str:
    return ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else values[0]


_READERS: dict[str, Callable[[Param, Any], Any]] = {"integer": _integer, "number": _number, "boolean": _boolean,
                                                   "string": _string, "array": _items}
