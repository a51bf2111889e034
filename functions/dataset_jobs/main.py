"""Cloud Function: one step of a dataset job (Pub/Sub dataset-jobs): plan, a chunk, the end."""
import functions_framework

from common.platform.events import pubsub_message
from common.platform.handler import handle_event
from common.cloud import proposal_store
from common.services import autolabel, dataset_jobs, reindex  # noqa: F401 (loaded at start: autolabel's chunks run a model, reindex's ingest)


@functions_framework.cloud_event
def dataset_job(cloud_event):
    return handle_event(cloud_event, pubsub_message, dataset_jobs.handle,
                        retry_on=(dataset_jobs.Contended, proposal_store.Contended))
