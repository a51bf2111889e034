"""Cloud Function: a trainer progress event (Pub/Sub training-progress) -> the job document."""
import functions_framework

from common import train_progress
from common.messages import handle_message


@functions_framework.cloud_event
def training_progress(cloud_event):
    handle_message(cloud_event, lambda _message_id, data: train_progress.handle(data))
