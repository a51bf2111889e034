"""Firestore: the client, one transaction helper, and deadlines for every call.

A call to an unreachable Firestore retries until its deadline: the client's
default is 60 s or more, far too long for an HTTP request. Every call passes
`**db.deadline()` (CLOUD_DEADLINE_SECONDS, or the caller's own), so an outage
becomes an error within seconds.
"""
from __future__ import annotations

from typing import Callable, TypeVar

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
    return {"retry": Retry(predicate=if_transient_error, initial=0.1, maximum=2.0, multiplier=2.0,
                           timeout=seconds),
            "timeout": seconds}


def in_transaction(work: Callable[[firestore.Transaction], T], attempts: int = TRANSACTION_ATTEMPTS) -> T:
    """Run `work(transaction)` in a Firestore transaction, retried when contended."""
    return firestore.transactional(work)(client().transaction(max_attempts=attempts))
