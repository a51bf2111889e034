"""The ingest worker: storage notifications pulled from their subscription in
batches and applied to the index (common.services.ingest).

    python -m functions.ingest.main     (the Cloud Run service's command, and the local stack's)
"""
from common.platform import config, worker
from common.platform.events import from_notification
from common.services import ingest


def main() -> None:
    worker.main(config.ingest_subscription(), from_notification, ingest.handle_batch, config.ingest_batch_size())


if __name__ == "__main__":
    main()
