"""Cloud Function: a training request (Pub/Sub training-requests) -> a job, launched once."""
import functions_framework

from common import train_request
from common.messages import handle_message


@functions_framework.cloud_event
def training_request(cloud_event):
    handle_message(cloud_event, train_request.handle, retry_on=(train_request.JobBusy,))
