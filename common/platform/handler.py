"""The shape every Pub/Sub-triggered function shares: decode, act, and either
acknowledge (done, or never going to work) or raise (worth a redelivery)."""
from __future__ import annotations

import time
import traceback
from typing import Callable

from common.platform import log
from common.platform.events import UnsupportedEvent, pubsub_message
from common.platform.failures import is_transient


def handle_message(cloud_event, act: Callable[[str, bytes], str], retry_on: tuple = ()) -> None:
    try:
        message = pubsub_message(cloud_event)
    except UnsupportedEvent as exc:
        log.warning("event ignored", event_id=cloud_event["id"], reason=str(exc))
        return
    context = {"event_id": cloud_event["id"], "message_id": message.message_id}
    started = time.monotonic()
    try:
        outcome = act(message.message_id, message.data)
    except Exception as exc:
        if is_transient(exc) or isinstance(exc, retry_on):
            log.warning("transient failure; the message will be redelivered", error=repr(exc), **context)
            raise
        log.error("message failed and will not be retried", error=repr(exc),
                  traceback=traceback.format_exc(), **context)
        return
    log.info(outcome, seconds=round(time.monotonic() - started, 4), **context)
