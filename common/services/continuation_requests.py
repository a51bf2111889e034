"""Asking the training function for a training's next execution (common/services/continue_training.py): the
progress function when the trainer stopped in time to continue, the watch when that request was lost."""
from __future__ import annotations

from common.cloud import topics
from common.domain import training_job
from common.domain.messages import ContinuationRequest
from common.platform import config


def request(job_id: str, continues_run: int) -> str:
    """Ask for the execution that goes on after run `continues_run` of the job: safe to repeat."""
    return topics.publish(config.training_topic(), ContinuationRequest(job_id=job_id, continues_run=continues_run),
                          deadline=None, **{training_job.CONTINUATION_ATTRIBUTE: "1"})
