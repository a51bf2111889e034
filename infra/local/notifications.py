"""Holding and replaying the storage notifications of the local stack's ingest
subscription: pause its push (turning it into a pull subscription), pull the
notifications, restore the push, and build the body a push delivery carries.

The Pub/Sub client reads PUBSUB_EMULATOR_HOST when it is created: set the
stack's environment (stack.env()) in os.environ first.
"""
from __future__ import annotations

import base64
from contextlib import contextmanager
from datetime import timezone
from typing import Iterator

from google.cloud import pubsub_v1

from infra.local import stack as local_stack
from infra.local.client import wait_for


@contextmanager
def paused_push(stack: local_stack.Stack) -> Iterator[tuple[pubsub_v1.SubscriberClient, str]]:
    """Turn the ingest push subscription into a pull one for the duration; yield
    (subscriber, subscription path). The push endpoint is restored on exit."""
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(stack.project, local_stack.INGEST_SUBSCRIPTION)
    subscriber.modify_push_config(subscription=subscription, push_config=pubsub_v1.types.PushConfig())
    try:
        yield subscriber, subscription
    finally:
        resume_push(stack, subscriber)
        subscriber.close()


def resume_push(stack: local_stack.Stack, subscriber: pubsub_v1.SubscriberClient) -> None:
    """Point the ingest subscription at the ingest server again (as the stack set it up)."""
    subscriber.modify_push_config(
        subscription=subscriber.subscription_path(stack.project, local_stack.INGEST_SUBSCRIPTION),
        push_config=pubsub_v1.types.PushConfig(push_endpoint=f"{stack.env()['INGEST_URL']}/"))


def capture(subscriber: pubsub_v1.SubscriberClient, subscription: str, expected: int,
            timeout: float = 60, under: str = "") -> list[pubsub_v1.types.PubsubMessage]:
    """Pull and acknowledge notifications until at least `expected` of objects
    under `under` arrived; return those. Others (late thumbnails of earlier work)
    are acknowledged and left out."""
    messages = []

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


def push_body(message: pubsub_v1.types.PubsubMessage, subscription_path: str) -> dict:
    """The JSON body the Pub/Sub emulator POSTs (Content-Type application/json) to
    push `message`: its fields in camelCase and again in snake_case, the publish
    time to the millisecond."""
    published = message.publish_time.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    ids = {"messageId": message.message_id, "publishTime": published.replace("+00:00", "Z")}
    return {"message": {"data": base64.b64encode(message.data).decode("ascii"),
                        "attributes": dict(message.attributes),
                        **ids, "message_id": ids["messageId"], "publish_time": ids["publishTime"]},
            "subscription": subscription_path}
