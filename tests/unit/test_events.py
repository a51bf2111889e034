import base64
import json

import pytest
from cloudevents.http import CloudEvent

from common.platform.events import DELETED, FINALIZED, UnsupportedEvent, from_notification, pubsub_message

OBJECT = {"bucket": "data", "name": "datasets/d/images/a.jpg", "generation": "1700000000000001", "size": "1234"}


def attributes(event_type: str, **more: str) -> dict:
    """A GCS notification's attributes as Pub/Sub delivers them to ingest."""
    return {"eventType": event_type, "bucketId": "data", "objectId": OBJECT["name"],
            "objectGeneration": OBJECT["generation"], "payloadFormat": "JSON_API_V1", **more}


def notified(event_type: str, resource: dict | None, **more: str):
    payload = json.dumps(resource).encode() if resource is not None else b""
    return from_notification(payload, attributes(event_type, **more), "m1")


def pubsub_event(resource: dict, attrs: dict) -> CloudEvent:
    message = {"attributes": attrs, "messageId": "m1", "data": base64.b64encode(json.dumps(resource).encode()).decode()}
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "e2",
                       "source": "//pubsub.googleapis.com/projects/p/topics/t"},
                      {"message": message, "subscription": "projects/p/subscriptions/s"})


def test_a_finalize_notification():
    event = notified("OBJECT_FINALIZE", OBJECT)
    assert (event.action, event.bucket, event.name, event.generation, event.size, event.event_id) == \
        (FINALIZED, "data", "datasets/d/images/a.jpg", 1700000000000001, 1234, "m1")


def test_a_delete_notification_of_an_overwritten_generation():
    event = notified("OBJECT_DELETE", {**OBJECT, "generation": "5"}, objectGeneration="5", overwrittenByGeneration="6")
    assert (event.action, event.generation) == (DELETED, 5)


def test_a_notification_without_payload_uses_its_attributes():
    event = notified("OBJECT_DELETE", None)
    assert (event.bucket, event.name, event.generation, event.size) == \
        ("data", OBJECT["name"], 1700000000000001, None)


def test_a_delete_that_says_it_was_overwritten_is_marked_so():
    overwritten = notified("OBJECT_DELETE", OBJECT, overwrittenByGeneration="1700000000000009")
    assert overwritten.action == DELETED and overwritten.overwritten
    assert not notified("OBJECT_DELETE", OBJECT).overwritten


@pytest.mark.parametrize("payload, attrs, told", [
    (json.dumps(OBJECT).encode(), attributes("OBJECT_METADATA_UPDATE"), "not finalize or delete"),
    (json.dumps({"bucket": "data", "name": "a"}).encode(),
     {"eventType": "OBJECT_FINALIZE"}, "lacks bucket, name or generation"),
    (json.dumps({**OBJECT, "generation": "abc"}).encode(), attributes("OBJECT_FINALIZE"), "non-numeric"),
    (b"not json", attributes("OBJECT_FINALIZE"), "not JSON"),
])
def test_unsupported_notifications_say_why(payload, attrs, told):
    with pytest.raises(UnsupportedEvent, match=told):
        from_notification(payload, attrs, "m1")


def test_pubsub_message_carries_ids_and_data():
    cloud_event = pubsub_event({"request": 1}, {"job_id": "j"})
    message = pubsub_message(cloud_event)
    assert (message.message_id, json.loads(message.data), message.attributes["job_id"]) == ("m1", {"request": 1}, "j")
    assert message.log_fields() == {"event_id": cloud_event["id"], "message_id": "m1"}
    with pytest.raises(UnsupportedEvent, match="not a Pub/Sub message"):
        pubsub_message(CloudEvent({"type": "google.cloud.storage.object.v1.finalized", "id": "e1", "source": "s"},
                                  OBJECT))


@pytest.mark.parametrize("payload, told", [
    (b"[" * 100_000 + b"]" * 100_000, "levels deep"),          # past the parser's own recursion limit
    (b'{"a":' * 40 + b"1" + b"}" * 40, "levels deep"),          # within it, past ours
    (b"[1, 2]", "not an object resource"),
])
def test_a_notification_nested_too_deep_or_not_an_object_is_unsupported_not_a_crash(payload, told):
    with pytest.raises(UnsupportedEvent, match=told):
        from_notification(payload, {"eventType": "OBJECT_FINALIZE", "bucketId": "data", "objectId": "o",
                                    "objectGeneration": "1"}, "m1")
