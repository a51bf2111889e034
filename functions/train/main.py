"""Cloud Function: a training request (Pub/Sub training-requests) -> a job, launched once."""
import functions_framework

from common.services import start_training
from common.platform.handler import handle_message


@functions_framework.cloud_event
def training_request(cloud_event):
    handle_message(cloud_event, start_training.handle, retry_on=(start_training.JobBusy,))
