"""Cloud Function: index one storage object event (finalize or delete)."""
import time
import traceback

import functions_framework

from common.platform import log
from common.services import ingest
from common.platform.events import UnsupportedEvent, decode
from common.platform.failures import is_transient


@functions_framework.cloud_event
def ingest_object(cloud_event):
    try:
        event = decode(cloud_event)
    except UnsupportedEvent as exc:
        # Acknowledge: a message that can never be decoded must not be retried.
        log.warning("event ignored", event_id=cloud_event["id"], reason=str(exc))
        return
    context = {"event_id": event.event_id, "object": event.name,
               "generation": event.generation, "action": event.action}
    started = time.monotonic()
    try:
        outcome = ingest.handle(event)
    except Exception as exc:
        if is_transient(exc):
            log.warning("transient failure; the event will be redelivered", error=repr(exc), **context)
            raise
        log.error("ingest failed and will not be retried: fix the cause and re-upload the object",
                  error=repr(exc), traceback=traceback.format_exc(), **context)
        return
    log.info(outcome, seconds=round(time.monotonic() - started, 4), **context)
