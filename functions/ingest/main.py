"""Cloud Function: storage notifications (Pub/Sub gcs-events, pushed) indexed by common.services.ingest; the
requests that arrive together at one instance share one guard read and one transaction
(common.platform.group_commit)."""
import os

import flask
import functions_framework

from common.cloud import delivery_attempts
from common.domain import imaging
from common.platform import config
from common.platform.events import from_notification, pubsub_message
from common.platform.group_commit import PushedEvents, serve_status
from common.platform.handler import Result
from common.services import ingest

imaging.keep_freed_image_memory(blocks=2 * config.ingest_read_threads())  # two images per reading thread
EVENTS = PushedEvents(config.ingest_subscription(),
                      lambda cloud_event: from_notification(*_message(cloud_event)),
                      ingest.handle_batch, ingest.quarantine, delivery_attempts, config.ingest_batch_size(),
                      config.ingest_group_wait_seconds())
if os.environ.get("INGEST_STATUS_PORT"):  # the local stack's view of this instance, served by the process that
    # takes the requests: functions-framework's server (gunicorn) forks it from the one that imports this module
    os.register_at_fork(after_in_child=lambda: serve_status(EVENTS.status, int(os.environ["INGEST_STATUS_PORT"])))


@functions_framework.cloud_event
def ingest_notification(cloud_event):
    if EVENTS.handle(cloud_event, _delivery_attempt()).result == Result.RETRY:
        flask.abort(503, "transient failure; the notification is delivered again")  # this message alone


def _message(cloud_event) -> tuple[bytes, dict, str]:
    message = pubsub_message(cloud_event)
    return message.data, message.attributes, message.message_id


def _delivery_attempt() -> int:
    """Pub/Sub's count of this message's deliveries, in the push body (the conversion to a CloudEvent leaves it
    out); 0 where it is unknown."""
    body = flask.request.get_json(silent=True)
    attempt = body.get("deliveryAttempt") if isinstance(body, dict) else None
    return attempt if isinstance(attempt, int) and attempt > 0 else 0
