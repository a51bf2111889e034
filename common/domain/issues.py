"""A problem found in a dropped file: a code for programs, a message for people."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Issue:
    code: str
    message: str
    file: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
