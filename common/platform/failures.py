"""Which failures are worth a retry.

Transient ones (a service unavailable, a timeout, a contended transaction) raise
out of the handler so the platform redelivers the event. Anything else would
fail the same way every time: it is logged and the event acknowledged, never a
retry storm.
"""
from __future__ import annotations

import requests
from google.api_core import exceptions as api_exceptions
from google.auth.exceptions import TransportError

TRANSIENT = (
    api_exceptions.ServerError,          # 5xx, including ServiceUnavailable
    api_exceptions.TooManyRequests,
    api_exceptions.Aborted,              # transaction contention
    api_exceptions.DeadlineExceeded,
    api_exceptions.RetryError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    TransportError,
    ConnectionError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)
