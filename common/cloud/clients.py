"""The Google clients: each created once, on first use, and replaceable in tests.

Every adapter gets its client here, so there is one style of creation and one
place that knows the emulator switches (the client libraries read
STORAGE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST
themselves; storage also needs anonymous credentials against its emulator).
"""
from __future__ import annotations

import os
import threading
from typing import Any
from collections.abc import Callable

from common.platform import config

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def _get(name: str, make: Callable[[], Any]) -> Any:
    with _lock:
        if name not in _clients:
            _clients[name] = make()
        return _clients[name]


def use(name: str, client: Any) -> None:
    """Install a client (a test's, or one made for another project)."""
    with _lock:
        _clients[name] = client


def reset() -> None:
    """Forget every client: the next call makes new ones from the environment."""
    with _lock:
        _clients.clear()


def firestore():
    def make():
        from google.cloud import firestore
        return firestore.Client(project=config.project())
    return _get("firestore", make)


def storage():
    def make():
        from google.cloud import storage
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials
            return storage.Client(project=config.project(), credentials=AnonymousCredentials())
        return storage.Client(project=config.project())
    return _get("storage", make)


def signing_credentials():
    """The service account's credentials, refreshed when their token expired: its e-mail and a token that IAM's
    signBlob takes (a V4 signed URL without a key file)."""
    def make():
        import google.auth
        return google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])[0]
    credentials = _get("signing_credentials", make)
    with _lock:
        if not credentials.valid:
            from google.auth.transport.requests import Request
            credentials.refresh(Request())
    return credentials


def publisher():
    def make():
        from google.cloud import pubsub_v1
        return pubsub_v1.PublisherClient()
    return _get("publisher", make)


def subscriber():
    def make():
        from google.cloud import pubsub_v1
        return pubsub_v1.SubscriberClient()
    return _get("subscriber", make)


def cloud_run_jobs():
    def make():
        from google.cloud import run_v2
        return run_v2.JobsClient()
    return _get("cloud_run_jobs", make)


def firebase_app():
    """The Firebase Admin app of this project; against the Auth emulator when
    FIREBASE_AUTH_EMULATOR_HOST is set (firebase-admin reads it itself)."""
    def make():
        import firebase_admin
        return firebase_admin.initialize_app(options={"projectId": config.project()}, name="yolodrop")
    return _get("firebase_app", make)


def cloud_run_executions():
    def make():
        from google.cloud import run_v2
        return run_v2.ExecutionsClient()
    return _get("cloud_run_executions", make)


def vertex_session():
    """An authorized HTTP session for Vertex AI's REST API (common/cloud/vertex_runner.py)."""
    def make():
        import google.auth
        from google.auth.transport.requests import AuthorizedSession
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        return AuthorizedSession(credentials)
    return _get("vertex_session", make)
