"""The one pagination helper of every list, and its page tokens.

A list is one or more sources read one after the other (the issues of a
dataset: its files' documents, then its entries'), each an ordered query a
store made (common.cloud.pages) whose documents yield one or more items. A
position is the document to start at (inclusive, by its order values) and how
many of its items were already sent, so a page can end in the middle of a
document's items and no document is read twice for the same page.

A token is the position of the next page's first item, signed, and it names
its list: a token of another list, or one this API did not make, is a 400 on
page_token, never a query.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from collections.abc import Callable

from common.api import params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.cloud import pages
from common.domain.storable import quoted
from common.platform import config

# A position: {"source": index of the source, "at": order values of the document, "skip": items sent}
Position = dict


def page_params(default: int, maximum: int) -> tuple[params.Param, ...]:
    return (params.integer("page_size", "items per page", 1, maximum, default),
            params.text("page_token", "the next_page_token of the previous page"))


def _whole_document(document: dict) -> list[dict]:
    return [document]


@dataclass(frozen=True)
class Source:
    query: pages.Query                                      # the store-made query of the documents
    items: Callable[[dict], list[dict]] = _whole_document  # at least one item per document

    def read(self, index: int, start: Position | None, wanted: int, ctx: RequestContext) -> list[tuple]:
        """Up to `wanted` (position, item) pairs from `start` on."""
        skip, found = (start or {}).get("skip", 0), []
        rows = self.query.read(start["at"] if start else None, wanted + (1 if skip else 0), ctx.deadline_seconds)
        for at, document in rows:
            first = skip if start and at == start["at"] else 0
            found += [({"source": index, "at": at, "skip": n}, item)
                      for n, item in enumerate(self.items(document)) if n >= first]
            if len(found) >= wanted:
                break
        return found[:wanted]


def page(items_key: str, list_name: str, sources: list[Source], args: dict, ctx: RequestContext) -> dict:
    """One page of the list: {items_key: [...], "next_page_token": token or None}."""
    size = args["page_size"]
    start = decode_token(list_name, args.get("page_token")) or {"source": 0}
    found: list[tuple] = []
    for index in range(start["source"], len(sources)):
        position = start if index == start["source"] and "at" in start else None
        found += sources[index].read(index, position, size + 1 - len(found), ctx)
        if len(found) > size:
            break
    next_token = encode_token(list_name, found[size][0]) if len(found) > size else None
    return {items_key: [item for _, item in found[:size]], "next_page_token": next_token}


def encode_token(list_name: str, position: Position) -> str:
    payload = json.dumps({"list": list_name, **position}, separators=(",", ":")).encode()
    return f"{_b64encode(payload)}.{_b64encode(_signature(payload))}"


def decode_token(list_name: str, raw: str | None) -> Position | None:
    if not raw:
        return None
    payload = _verified_payload(raw)
    if payload is None:
        raise ApiError(400, f"page_token {quoted(raw)} is not one this API returned", "page_token")
    position = json.loads(payload)
    if position.pop("list") != list_name:
        raise ApiError(400, f"page_token {quoted(raw)} belongs to another list; pass it where it came from",
                       "page_token")
    return position


def _verified_payload(raw: str) -> bytes | None:
    encoded, _, signature = raw.partition(".")
    try:
        payload, given = _b64decode(encoded), _b64decode(signature)
    except ValueError:
        return None
    return payload if hmac.compare_digest(given, _signature(payload)) else None


def _signature(payload: bytes) -> bytes:
    key = hashlib.sha256(b"yolodrop page token\0" + config.page_token_secret().encode()).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()[:16]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
