"""A route: everything about one operation, declared next to its handler.
The router dispatches from these declarations and the OpenAPI document is
written from them, so the two cannot disagree."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Callable

from flask import Request, Response

from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.params import Param
from common.domain.bodies import Body

# handler(context, arguments) -> body, or (status, body) for an answer other than the declared one, or
# (status, body, headers) for one with headers of its own (prediction's Server-Timing), or a flask Response
# for a route whose media_type is not JSON (the page's files, images)
Handler = Callable[[RequestContext, dict], "dict | tuple[int, dict] | tuple[int, dict, dict] | Response"]


@dataclass(frozen=True)
class RawBody:
    """A body the handler reads itself from arguments["request"] (not JSON: prediction's images). The router
    refuses one whose Content-Length is over cap() before anything else, caller included, with refusal(size);
    one sent without it (chunked) werkzeug stops one byte past the cap, so reading cap + 1 bytes tells."""
    content: dict                              # OpenAPI: media type -> {"schema": ...}
    cap: Callable[[], int]                     # bytes
    refusal: Callable[[int | None], ApiError]  # the 413 for a body of that many bytes (None: more than the cap)

    def refuse_declared_size(self, request: Request) -> None:
        cap = self.cap()
        if (request.content_length or 0) > cap:
            raise self.refusal(request.content_length)
        request.max_content_length = cap + 1


@dataclass(frozen=True)
class Route:
    method: str
    path: str                  # OpenAPI style: /datasets/{dataset}
    handler: Handler
    summary: str
    response: dict             # JSON Schema of the success body
    status: int = 200
    params: tuple[Param, ...] = ()
    body: type[Body] | None = None  # the JSON body's model: arguments["body"] is its instance (router: 400)
    body_optional: bool = False  # the body may be left out (every field of the model has a default)
    raw_body: RawBody | None = None  # instead of a JSON body: one the handler reads itself
    public: bool = False       # answered without a caller (no Authorization)
    role: str | None = None    # the role the caller needs on the path's {dataset} (checked by the router)
    rate_limited: str | None = None  # the kind of expensive request counted per caller (router: 429)
    responses: dict[int, tuple[str, dict]] = field(default_factory=dict)  # other answers: description, schema
    media_type: str = "application/json"  # of the success body; a handler of another type returns a Response

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def rule(self) -> str:
        """The path as a Werkzeug rule."""
        def converter(match: re.Match) -> str:
            param = next(p for p in self.params if p.name == match[1] and p.location == "path")
            return f"<path:{param.name}>" if param.holds_slashes else f"<{param.name}>"
        return re.sub(r"\{(\w+)\}", converter, self.path)
