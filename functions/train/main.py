"""Cloud Function: a training request (Pub/Sub training-requests) -> a job, launched once."""
import functions_framework

from common.platform.events import pubsub_message
from common.platform.handler import handle_event
from common.services import continue_training, start_training


@functions_framework.cloud_event
def training_request(cloud_event):
    return handle_event(cloud_event, pubsub_message, start_training.handle,
                        retry_on=(start_training.JobBusy, continue_training.ContinuationBusy))
