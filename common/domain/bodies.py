"""A JSON body read as its declared model (pydantic), or one refusal naming each field at fault.

The router parses every route's body with `parse` (common.api.edge); the models of the API's bodies are in
common.domain.request_bodies. Kept apart from them so that a deployment serving routes without a JSON body
(prediction) loads no more than this.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from common.domain.refusals import Invalid

MAX_PROBLEMS = 5  # named in one refusal; a body with more is told how many more


class Body(BaseModel):
    """A request body: JSON's own types only (no "1" for 1, no true for 1), no field it does not declare (a
    misspelt field is an error, not a default silently taken), never changed once read."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class BodyRefused(Invalid):
    """A body that breaks its route's model: the message names each field at fault (files[2].size), `param`
    the body's field the first is in (files)."""


B = TypeVar("B", bound=BaseModel)


def parse(model: type[B], document: object) -> B:
    """`document` (parsed JSON) as a `model`; BodyRefused naming what is wrong."""
    try:
        return model.model_validate(document)
    except ValidationError as invalid:
        errors = invalid.errors(include_url=False, include_input=False)
        problems = [_problem(error, model) for error in errors]
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise BodyRefused("; ".join(problems[:MAX_PROBLEMS]) + more, _field_of(errors[0]["loc"])) from None


def _problem(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    where = _path(error["loc"])
    if not where:
        return "the body must be a JSON object" if error["type"] == "model_type" else str(error["msg"])
    if error["type"] == "missing":
        return f"{where} is required"
    if error["type"] == "extra_forbidden":
        return f"{where} is not a field of this body" + (
            f" (it takes {', '.join(_fields(model))})" if len(error["loc"]) == 1 else "")
    if error["type"] == "value_error":  # a domain rule's own words, which name the field where they can
        said = str(error.get("ctx", {}).get("error", error["msg"]))
        return said if said.startswith(where.rpartition(".")[2]) else f"{where}: {said}"
    return f"{where}: {error['msg']}"


def _field_of(loc: tuple[int | str, ...]) -> str:
    """The body's own field a problem is in (`param`, as the API names the field at fault); the message says
    where inside it."""
    return str(loc[0]) if loc else "body"


def _path(loc: tuple[int | str, ...]) -> str:
    """files[2].size for ('files', 2, 'size')."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _fields(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]
