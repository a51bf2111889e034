"""Which failures are worth a retry.

Transient ones (a service unavailable, a timeout, a contended transaction) raise
out of the handler so the platform redelivers the event. So do refusals of
access (PermissionDenied, Forbidden, a credential that cannot be refreshed):
right after a deployment IAM grants take minutes to propagate, and an event
acknowledged then would be lost for good; a grant that never comes is ended by
the subscription's backoff and its dead-letter policy, which keeps the message.
Anything else would fail the same way every time: it is logged and the event
acknowledged, never a retry storm.
"""
from __future__ import annotations

import requests
from google.api_core import exceptions as api_exceptions
from google.auth.exceptions import RefreshError, TransportError

UNAVAILABLE = (
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
# Access not (yet) granted: IAM propagation after a deploy, the metadata server refreshing a token.
ACCESS_NOT_YET = (
    api_exceptions.PermissionDenied,     # gRPC PERMISSION_DENIED (Firestore, Pub/Sub)
    api_exceptions.Forbidden,            # HTTP 403 (Cloud Storage, Cloud Run)
    api_exceptions.Unauthenticated,      # 401: a token the service did not accept yet
    RefreshError,
)
TRANSIENT = UNAVAILABLE + ACCESS_NOT_YET


def is_transient(exc: BaseException) -> bool:
    """Worth redelivering: a service that did not answer, or access that is not granted yet."""
    return isinstance(exc, TRANSIENT)


def is_unavailable(exc: BaseException) -> bool:
    """A service that failed or did not answer in time (an HTTP request answers 503 and says try again);
    a refusal of access is not: an HTTP caller cannot wait out an IAM misconfiguration."""
    return isinstance(exc, UNAVAILABLE)
