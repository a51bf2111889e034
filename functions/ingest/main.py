"""The ingest worker: storage notifications pulled from their subscription in
batches and applied to the index (common.services.ingest).

    python -m functions.ingest.main     (the Cloud Run service's command, and the local stack's)
"""
from common.domain import imaging
from common.platform import config, worker
from common.platform.events import from_notification
from common.services import ingest


def main() -> None:
    imaging.keep_freed_image_memory(blocks=2 * config.ingest_read_threads())  # two images per reading thread
    worker.main(config.ingest_subscription(), from_notification, ingest.handle_batch, config.ingest_batch_size(),
                ingest.quarantine)


if __name__ == "__main__":
    main()
