"""Configuration, read from the environment in one place.

Required settings raise a KeyError naming the variable the first time they are
needed; nothing silently falls back to None. The emulator variables
(STORAGE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST) are read
by the client libraries themselves: set them and the same code runs locally.
"""
from __future__ import annotations

import os


def project() -> str:
    return os.environ["GOOGLE_CLOUD_PROJECT"]


def data_bucket() -> str:
    return os.environ["DATA_BUCKET"]


def api_token() -> str:
    return os.environ["API_TOKEN"]


def ingest_workers() -> int:
    """Threads one ingest call may use to revalidate labels after a class change."""
    return int(os.environ.get("INGEST_WORKERS", "16"))


def training_topic() -> str:
    return os.environ.get("TRAINING_TOPIC", "training-requests")
