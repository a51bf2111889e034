"""Publishing to Pub/Sub: one declared message (common.domain.messages), waited for within a deadline."""
from __future__ import annotations

from common.cloud import clients, db
from common.domain.messages import Message
from common.platform import config


def publish(topic: str, message: Message, deadline: float | None = None, **attributes: str) -> str:
    """Publish `message` as its JSON (Message.wire) to `topic` (a name in this project); its message id."""
    publisher = clients.publisher()
    seconds = deadline or config.cloud_deadline()
    future = publisher.publish(publisher.topic_path(config.project(), topic), message.wire(),
                               **db.deadline(seconds), **attributes)
    return future.result(timeout=seconds)
