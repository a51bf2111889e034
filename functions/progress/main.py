"""Cloud Function: a trainer progress event (Pub/Sub training-progress) -> the job document."""
import functions_framework

from common.services import record_progress
from common.platform.handler import handle_message


@functions_framework.cloud_event
def training_progress(cloud_event):
    handle_message(cloud_event, lambda _message_id, data: record_progress.handle(data))
