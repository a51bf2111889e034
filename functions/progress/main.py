"""Cloud Function: a trainer progress event (Pub/Sub training-progress) -> the job document."""
import functions_framework

from common.platform.events import pubsub_message
from common.platform.handler import handle_event
from common.services import record_progress


@functions_framework.cloud_event
def training_progress(cloud_event):
    return handle_event(cloud_event, pubsub_message, record_progress.handle)
