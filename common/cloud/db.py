"""Firestore: the client, one transaction helper, reads, and deadlines for every call.

A call to an unreachable Firestore retries until its deadline: the client's
default is 60 s or more, far too long for an HTTP request. Every call passes
`**db.deadline()` (CLOUD_DEADLINE_SECONDS, or the caller's own), so an outage
becomes an error within seconds.

Reads cost CPU per request, not per document (about 1.5 ms of client CPU for a
BatchGetDocuments here, however many documents it returns), so a transaction
reads everything it can in one `read_all`. Only the client's public interface is
used: a faster unary read and a hand-made protobuf encoder of writes once saved
about 1 ms per indexed entry, at the cost of depending on one version's private
internals (docs/decisions.md).
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TypeVar
from collections.abc import Callable

from google.api_core.retry import Retry, if_transient_error
from google.cloud import firestore

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
    """`field_paths` of one document, outside any transaction; None when it does not exist."""
    snapshot = ref.get(field_paths=field_paths, **deadline(seconds))
    return snapshot.to_dict() if snapshot.exists else None
