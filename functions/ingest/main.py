"""Cloud Function: index one storage object event (finalize or delete)."""
import functions_framework

from common.platform.events import decode
from common.platform.handler import handle_event
from common.services import ingest


@functions_framework.cloud_event
def ingest_object(cloud_event):
    return handle_event(cloud_event, decode, ingest.handle)
