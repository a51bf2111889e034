"""Which failures are redelivered: the platform's handler retries a transient one, acknowledges any other."""
import pytest
from cloudevents.http import CloudEvent
from google.api_core import exceptions as api_exceptions
from google.auth.exceptions import RefreshError

from common.platform import failures
from common.platform.events import pubsub_message
from common.platform.handler import Result, handle_batch, handle_event

ACCESS_NOT_YET = [api_exceptions.PermissionDenied("iam is propagating"), api_exceptions.Forbidden("403 on GET"),
                  api_exceptions.Unauthenticated("token"), RefreshError("metadata server")]


def event() -> CloudEvent:
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "e1", "source": "s"},
                      {"message": {"messageId": "m1", "data": "e30=", "attributes": {}}})


def failing(exc: Exception):
    def act(_):
        raise exc
    return act


@pytest.mark.parametrize("exc", ACCESS_NOT_YET, ids=lambda e: type(e).__name__)
def test_access_not_granted_yet_is_redelivered_not_dropped(exc):
    assert failures.is_transient(exc)
    with pytest.raises(type(exc)):
        handle_event(event(), pubsub_message, failing(exc))
    assert [o.result for o in handle_batch([pubsub_message(event())], failing(exc))] == [Result.RETRY]


@pytest.mark.parametrize("exc", ACCESS_NOT_YET, ids=lambda e: type(e).__name__)
def test_the_api_answers_access_not_granted_as_a_failure_not_try_again(exc):
    from common.api.errors import is_unavailable
    assert not is_unavailable(exc)
    assert is_unavailable(api_exceptions.ServiceUnavailable("down"))


@pytest.mark.parametrize("exc", [api_exceptions.InvalidArgument("bad"), api_exceptions.NotFound("gone"),
                                 ValueError("a bug")], ids=lambda e: type(e).__name__)
def test_what_would_fail_the_same_way_again_is_acknowledged(exc):
    assert not failures.is_transient(exc)
    assert handle_event(event(), pubsub_message, failing(exc)).result == Result.FAILED
