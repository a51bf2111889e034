"""Publishing to Pub/Sub: one JSON message, waited for within a deadline."""
from __future__ import annotations

import json

from common.cloud import clients, db
from common.platform import config


def publish(topic: str, message: dict, deadline: float | None = None, **attributes: str) -> str:
    """Publish `message` as JSON to `topic` (a name in this project); its message id."""
    publisher = clients.publisher()
    seconds = deadline or config.cloud_deadline()
    future = publisher.publish(publisher.topic_path(config.project(), topic), json.dumps(message).encode(),
                               **db.deadline(seconds), **attributes)
    return future.result(timeout=seconds)
