"""Firestore: the client, one transaction helper, reads, and deadlines for every call.

A call to an unreachable Firestore retries until its deadline: the client's
default is 60 s or more, far too long for an HTTP request. Every call passes
`**db.deadline()` (CLOUD_DEADLINE_SECONDS, or the caller's own), so an outage
becomes an error within seconds.

Reads cost CPU per request, not per document: a streaming BatchGetDocuments
(what `DocumentReference.get` sends) costs about 1.5 ms of client CPU here,
however many documents it returns, and a unary GetDocument about 0.6 ms. So a
transaction reads everything it can in one `read_all`, and a read outside any
transaction that needs a few fields of one document uses `read_fields`.

Writes cost CPU per value: the client encodes a document into one proto-plus
object per value, about 1 ms for an index entry of 50 values. `put` encodes a
document of plain values (None, bool, int, float, str, bytes, list, dict)
straight into the protobuf message instead, the same bytes on the wire
(tests/unit/test_firestore_writes.py), and leaves anything else to the client.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TypeVar
from collections.abc import Callable

from google.api_core.exceptions import NotFound
from google.api_core.retry import Retry, if_transient_error
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import write as write_types

from common.cloud import clients
from common.platform import config

T = TypeVar("T")
TRANSACTION_ATTEMPTS = 25


def client() -> firestore.Client:
    return clients.firestore()


def deadline(seconds: float | None = None) -> dict:
    """Keyword arguments that bound one Firestore call (retries included)."""
    seconds = seconds or config.cloud_deadline()
    return {"retry": _retry(seconds), "timeout": seconds}


@functools.lru_cache(maxsize=16)
def _retry(seconds: float) -> Retry:
    """Made once per deadline: a Retry is configuration only, safe to share between calls and threads."""
    return Retry(predicate=if_transient_error, initial=0.1, maximum=2.0, multiplier=2.0, timeout=seconds)


def in_transaction(work: Callable[[firestore.Transaction], T], attempts: int = TRANSACTION_ATTEMPTS) -> T:
    """Run `work(transaction)` in a Firestore transaction, retried when contended."""
    return firestore.transactional(work)(client().transaction(max_attempts=attempts))


def read_all(refs: Iterable, transaction: firestore.Transaction | None = None,
             field_paths: list[str] | None = None) -> dict[str, dict | None]:
    """Documents in one request (within `transaction` when given; only `field_paths` when given):
    {path: data, or None when missing}."""
    refs = list(refs)
    found = {snapshot.reference.path: snapshot.to_dict() if snapshot.exists else None
             for snapshot in client().get_all(refs, field_paths=field_paths, transaction=transaction, **deadline())}
    return {ref.path: found.get(ref.path) for ref in refs}


def read_fields(ref, field_paths: list[str], seconds: float | None = None) -> dict | None:
    """`field_paths` of one document, in one unary call outside any transaction; None when it does not exist."""
    db = client()
    try:
        document = db._firestore_api.get_document(
            request={"name": ref._document_path, "mask": {"field_paths": field_paths}},
            metadata=db._rpc_metadata, **deadline(seconds))
    except NotFound:
        return None
    return _helpers.decode_dict(document.fields, db)


class _NotPlain(TypeError):
    """A value only the client's own encoder knows (timestamps, sentinels, references...)."""


def put(transaction: firestore.Transaction, ref, data: dict) -> None:
    """`transaction.set(ref, data)`: replace the document, encoded straight to protobuf when plain."""
    try:
        write = write_pb(ref._document_path, data)
    except _NotPlain:
        transaction.set(ref, data)
        return
    transaction._add_write_pbs([write_types.Write.wrap(write)])  # what set() adds, built without proto-plus


def write_pb(document_path: str, data: dict):
    """The raw Write protobuf that replaces `document_path` with `data`; _NotPlain for other values."""
    write = write_types.Write.pb()()
    write.update.name = document_path
    for key, value in data.items():
        _encode(write.update.fields[key], value)
    return write


def _encode(target, value) -> None:
    """Set the Firestore Value protobuf `target` to `value`, as the client's encode_value does."""
    if value is None:
        target.null_value = 0
    elif isinstance(value, bool):  # before int: a bool is an int
        target.boolean_value = value
    elif isinstance(value, int):
        target.integer_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, (list, tuple)):
        target.array_value.SetInParent()
        for item in value:
            _encode(target.array_value.values.add(), item)
    elif isinstance(value, dict):
        target.map_value.SetInParent()
        for key, item in value.items():
            _encode(target.map_value.fields[key], item)
    else:
        raise _NotPlain(type(value).__name__)
