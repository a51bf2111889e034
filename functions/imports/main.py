"""Cloud Function: an import request (Pub/Sub import-requests) -> its source probed, the import job launched once."""
import functions_framework

from common.platform.events import pubsub_message
from common.platform.handler import handle_event
from common.services import start_import


@functions_framework.cloud_event
def import_request(cloud_event):
    return handle_event(cloud_event, pubsub_message, start_import.handle)
