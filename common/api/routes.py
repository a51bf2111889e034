"""A route: everything about one operation, declared next to its handler.
The router dispatches from these declarations and the OpenAPI document is
written from them, so the two cannot disagree."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from common.api.context import RequestContext
from common.api.params import Param

# handler(context, arguments) -> body, or (status, body) for an answer other than the declared one,
# or a flask Response for a route whose media_type is not JSON (the page's files, images)
Handler = Callable[[RequestContext, dict], "dict | tuple[int, dict] | Response"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str                  # OpenAPI style: /datasets/{dataset}
    handler: Handler
    summary: str
    response: dict             # JSON Schema of the success body
    status: int = 200
    params: tuple[Param, ...] = ()
    body: dict | None = None   # JSON Schema of the request body; read into arguments["body"]
    body_optional: bool = False  # the body may be left out (every field of it has a default)
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
