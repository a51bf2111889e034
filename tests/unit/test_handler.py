"""The event wrapper's classification, with real CloudEvents and real exception types."""
import json

import pytest
from cloudevents.http import CloudEvent
from google.api_core.exceptions import ServiceUnavailable

from common.platform.events import pubsub_message
from common.platform.handler import Outcome, Result, handle_event

PUBLISHED = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "e1", "source": "test"},
                       {"message": {"messageId": "m1", "data": "e30=", "attributes": {}}})


def logged(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_the_services_outcome_is_returned_and_logged_with_the_event(capsys):
    outcome = handle_event(PUBLISHED, pubsub_message,
                           lambda event: Outcome(Result.APPLIED, "image indexed", {"issues": 2}))
    assert outcome.result is Result.APPLIED
    (record,) = logged(capsys)
    assert (record["severity"], record["outcome"], record["message"], record["issues"]) == \
        ("INFO", "applied", "image indexed", 2)
    assert (record["event_id"], record["message_id"]) == ("e1", "m1")


def test_an_event_of_another_type_is_ignored_not_retried(capsys):
    other = CloudEvent({"type": "google.cloud.audit.log.v1.written", "id": "e2", "source": "test"}, {})
    outcome = handle_event(other, pubsub_message, lambda event: pytest.fail("must not act"))
    assert outcome.result is Result.IGNORED and "not a Pub/Sub message" in outcome.detail
    assert logged(capsys)[0]["event_id"] == "e2"


def test_a_transient_failure_raises_for_redelivery(capsys):
    def unavailable(event):
        raise ServiceUnavailable("firestore is down")
    with pytest.raises(ServiceUnavailable):
        handle_event(PUBLISHED, pubsub_message, unavailable)
    (record,) = logged(capsys)
    assert (record["severity"], record["outcome"]) == ("WARNING", "retry") and "redelivered" in record["message"]


def test_a_chosen_exception_is_retried_too():
    class Busy(RuntimeError):
        pass

    def busy(event):
        raise Busy()
    with pytest.raises(Busy):
        handle_event(PUBLISHED, pubsub_message, busy, retry_on=(Busy,))


def test_an_unexpected_error_is_acknowledged_with_its_traceback(capsys):
    def broken(event):
        raise KeyError("boxes")
    outcome = handle_event(PUBLISHED, pubsub_message, broken)
    assert outcome.result is Result.FAILED and "KeyError" in outcome.fields["error"]
    (record,) = logged(capsys)
    assert record["severity"] == "ERROR" and "Traceback" in record["stack_trace"]
