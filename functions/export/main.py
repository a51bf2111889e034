"""Cloud Function: a version or export request (Pub/Sub export-requests) -> a version frozen, an export written."""
import functions_framework

from common.platform.events import pubsub_message
from common.platform.handler import handle_event
from common.services import export


@functions_framework.cloud_event
def export_request(cloud_event):
    return handle_event(cloud_event, pubsub_message, export.handle, retry_on=(export.ExportBusy,))
