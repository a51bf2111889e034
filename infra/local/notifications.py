"""Holding the local stack's storage notifications: stop pushing them to the
ingest function, pull the notifications it would have indexed, and push again.

The Pub/Sub client reads PUBSUB_EMULATOR_HOST when it is created: set the
stack's environment (stack.env()) in os.environ first.
"""
from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator

from google.cloud import pubsub_v1

from infra.local import stack as local_stack
from infra.local.client import wait_for


@contextmanager
def held_notifications(stack: local_stack.Stack) -> Iterator[tuple[pubsub_v1.SubscriberClient, str]]:
    """Stop the ingest push for the duration, so notifications wait in its subscription; yield
    (subscriber, subscription path). The push starts again on exit."""
    local_stack.stop_part(stack, "ingest_pump")
    subscriber = pubsub_v1.SubscriberClient()
    try:
        yield subscriber, subscriber.subscription_path(stack.project, local_stack.INGEST_SUBSCRIPTION)
    finally:
        subscriber.close()
        local_stack.start_ingest_pump(stack)


def capture(subscriber: pubsub_v1.SubscriberClient, subscription: str, expected: int,
            timeout: float = 60, under: str = "") -> list[pubsub_v1.types.PubsubMessage]:  # type: ignore[name-defined]
    """Pull and acknowledge notifications until at least `expected` of objects
    under `under` arrived; return those. Others (late thumbnails of earlier work)
    are acknowledged and left out."""
    messages: list = []

    def pull():
        response = subscriber.pull(subscription=subscription, max_messages=100, timeout=10)
        if response.received_messages:
            subscriber.acknowledge(subscription=subscription,
                                   ack_ids=[m.ack_id for m in response.received_messages])
        messages.extend(m.message for m in response.received_messages
                        if m.message.attributes.get("objectId", "").startswith(under))
        return len(messages)

    wait_for(pull, lambda n: n >= expected, timeout, f"{expected} notifications", interval=0)
    return messages
