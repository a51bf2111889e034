"""Progress events to the training-progress topic, numbered so consumers can drop
duplicates and late arrivals: every run of a job (a retried or resumed task)
claims the next run number in the bucket, and its events number above every
event of the runs before it (common.domain.training_job.sequence)."""
from __future__ import annotations

import time

from google.api_core.exceptions import PreconditionFailed
from google.cloud import pubsub_v1

from common.domain import training_job
from common.domain.messages import ProgressEvent
from common.platform import log
from common.domain import layout

PUBLISH_TIMEOUT = 60


def claim_run(bucket, job_id: str) -> int:
    """The next free run number of this job, claimed by creating its marker object."""
    prefix = layout.training_runs(job_id)
    while True:
        taken = [int(blob.name.rsplit("/", 1)[1]) for blob in bucket.list_blobs(prefix=prefix)]
        run = max(taken, default=-1) + 1
        try:
            bucket.blob(f"{prefix}{run}").upload_from_string(str(time.time()), if_generation_match=0)
            return run
        except PreconditionFailed:
            continue  # another run took it at the same moment; look again


class Progress:
    def __init__(self, project: str, topic: str, job_id: str, run: int):
        self.publisher = pubsub_v1.PublisherClient()
        self.topic = self.publisher.topic_path(project, topic)
        self.job_id, self.run, self.count = job_id, run, 0

    def publish(self, kind: str, **fields) -> None:
        self.count += 1
        event = ProgressEvent.model_validate({"job_id": self.job_id, "type": kind, "run": self.run, "time": time.time(),
                                              "sequence": training_job.sequence(self.run, self.count), **fields})
        future = self.publisher.publish(self.topic, event.wire(), job_id=self.job_id, type=kind)
        future.result(timeout=PUBLISH_TIMEOUT)
        log.info(f"progress: {kind}", **{k: v for k, v in event.fields().items() if k != "history"})
