"""Cloud Function: a sweep request (Pub/Sub training-watch, sent by Cloud Scheduler) ->
jobs whose trainer execution ended without a final event become failed."""
import functions_framework

from common.platform.events import pubsub_message
from common.platform.handler import handle_event
from common.services import watch_training


@functions_framework.cloud_event
def training_watch(cloud_event):
    return handle_event(cloud_event, pubsub_message, watch_training.handle)
