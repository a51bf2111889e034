"""A bad message on any topic, through the local stack's Pub/Sub and each function's push subscription: every
consumer answers it the same way (common.platform.events.decode, common.platform.handler.rejected): REJECTED,
acknowledged, one log line naming what is wrong where. A bad training request also ends as a failed job, which
its requester can read (tests/integration/test_training.py)."""
import json
import os

import pytest
from google.cloud import pubsub_v1

from common.domain import training_job
from infra.local.client import wait_for
from infra.local.stack import PUSH_SUBSCRIPTIONS

# The training topic's other consumer, the continuation, is reached by its attribute; a request without it is a
# training request, which records its refusal on a failed job.
ATTRIBUTES = {"train": {training_job.CONTINUATION_ATTRIBUTE: "1"}}


def publish(topic: str, data: bytes, **attributes: str) -> str:
    publisher = pubsub_v1.PublisherClient()
    return publisher.publish(publisher.topic_path(os.environ["GOOGLE_CLOUD_PROJECT"], topic), data,
                             **attributes).result(timeout=30)


def outcomes(stack, function: str) -> list[dict]:
    """The function's log lines of its outcomes, in the order it handled its messages."""
    lines = (stack.state_dir / f"{function}.log").read_text(errors="replace").splitlines()
    return [record for record in (json.loads(line) for line in lines if line.startswith("{")) if "outcome" in record]


def outcome_of(stack, function: str, message_id: str) -> dict | None:
    """The function's log line of its outcome for the message, once it has handled it."""
    return next((record for record in outcomes(stack, function) if record.get("message_id") == message_id), None)


@pytest.mark.parametrize("data, field", [
    (b"{not json", ""),
    (b'{"job_id": ["not", "an", "id"], "sweep": "yes"}', None),  # the wrong shape for every one of them
])
def test_every_function_rejects_a_bad_message_the_same_way(stack, data, field):
    sent = {function: publish(topic, data, **ATTRIBUTES.get(function, {}))
            for topic, (_, function) in PUSH_SUBSCRIPTIONS.items()}
    assert set(sent) == {"train", "progress", "watch", "dataset_jobs", "export", "imports"}
    for function, message_id in sent.items():
        record = wait_for(lambda: outcome_of(stack, function, message_id), lambda found: found is not None, 60,
                          f"{function} to handle message {message_id}")
        assert (record["outcome"], record["severity"]) == ("rejected", "WARNING"), record
        told = f"{record['field']}: {record['error']}" if record["field"] else record["error"]
        assert record["message"] == f"bad message: {told}", record
        assert record["field"] == field if field is not None else record["field"], record


def test_the_schedulers_tick_is_a_sweep_the_watch_decodes(stack):
    """The local scheduler publishes the Sweep model, as Cloud Scheduler publishes {"sweep": true}."""
    swept = wait_for(lambda: [record for record in outcomes(stack, "watch") if record["message"].startswith("swept")],
                     bool, 60, "the watch to sweep on a tick")
    assert swept[0]["outcome"] in ("applied", "duplicate"), swept[0]
