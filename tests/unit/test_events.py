import base64
import json

import pytest
from cloudevents.http import CloudEvent

from common.platform.events import DELETED, FINALIZED, UnsupportedEvent, decode

OBJECT = {"bucket": "data", "name": "datasets/d/images/a.jpg", "generation": "1700000000000001", "size": "1234"}


def storage_event(kind: str, data: dict) -> CloudEvent:
    return CloudEvent({"type": f"google.cloud.storage.object.v1.{kind}", "id": "e1",
                       "source": "//storage.googleapis.com/projects/_/buckets/data",
                       "subject": f"objects/{data.get('name')}"}, data)


def pubsub_event(event_type: str, resource: dict | None, attributes: dict | None = None) -> CloudEvent:
    attrs = {"eventType": event_type, "bucketId": "data", "objectId": OBJECT["name"],
             "objectGeneration": OBJECT["generation"], "payloadFormat": "JSON_API_V1", **(attributes or {})}
    message = {"attributes": attrs, "messageId": "m1"}
    if resource is not None:
        message["data"] = base64.b64encode(json.dumps(resource).encode()).decode()
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "e2",
                       "source": "//pubsub.googleapis.com/projects/p/topics/gcs-events"},
                      {"message": message, "subscription": "projects/p/subscriptions/s"})


def test_eventarc_finalized():
    event = decode(storage_event("finalized", OBJECT))
    assert (event.action, event.bucket, event.name, event.generation, event.size, event.event_id) == \
        (FINALIZED, "data", "datasets/d/images/a.jpg", 1700000000000001, 1234, "e1")


def test_eventarc_deleted():
    assert decode(storage_event("deleted", OBJECT)).action == DELETED


def test_pubsub_notification_finalize():
    event = decode(pubsub_event("OBJECT_FINALIZE", OBJECT))
    assert (event.action, event.name, event.generation, event.size) == \
        (FINALIZED, OBJECT["name"], 1700000000000001, 1234)


def test_pubsub_notification_delete_of_overwritten_generation():
    event = decode(pubsub_event("OBJECT_DELETE", {**OBJECT, "generation": "5"},
                                {"objectGeneration": "5", "overwrittenByGeneration": "6"}))
    assert (event.action, event.generation) == (DELETED, 5)


def test_pubsub_without_payload_uses_attributes():
    event = decode(pubsub_event("OBJECT_DELETE", None))
    assert (event.bucket, event.name, event.generation, event.size) == \
        ("data", OBJECT["name"], 1700000000000001, None)


def test_a_delete_that_says_it_was_overwritten_is_marked_so():
    overwritten = decode(pubsub_event("OBJECT_DELETE", OBJECT, {"overwrittenByGeneration": "1700000000000009"}))
    assert overwritten.action == DELETED and overwritten.overwritten
    assert not decode(pubsub_event("OBJECT_DELETE", OBJECT)).overwritten
    assert not decode(storage_event("deleted", OBJECT)).overwritten


@pytest.mark.parametrize("event", [
    pubsub_event("OBJECT_METADATA_UPDATE", OBJECT),
    CloudEvent({"type": "google.cloud.storage.object.v1.metadataUpdated", "id": "x", "source": "s"}, OBJECT),
    storage_event("finalized", {"bucket": "data", "name": "a"}),
    storage_event("finalized", {**OBJECT, "generation": "abc"}),
])
def test_unsupported_events_say_why(event):
    with pytest.raises(UnsupportedEvent):
        decode(event)


def test_payload_that_is_not_json_is_unsupported():
    event = pubsub_event("OBJECT_FINALIZE", None)
    event.data["message"]["data"] = base64.b64encode(b"not json").decode()
    with pytest.raises(UnsupportedEvent, match="base64 JSON"):
        decode(event)


def test_pubsub_message_carries_ids_and_data():
    from common.platform.events import pubsub_message
    cloud_event = pubsub_event("OBJECT_FINALIZE", {"request": 1}, {"job_id": "j"})
    message = pubsub_message(cloud_event)
    assert (message.message_id, json.loads(message.data), message.attributes["job_id"]) == ("m1", {"request": 1}, "j")
    assert message.log_fields() == {"event_id": cloud_event["id"], "message_id": "m1"}
    with pytest.raises(UnsupportedEvent, match="not a Pub/Sub message"):
        pubsub_message(storage_event("finalized", OBJECT))


@pytest.mark.parametrize("payload, told", [
    (b"[" * 100_000 + b"]" * 100_000, "levels deep"),          # past the parser's own recursion limit
    (b'{"a":' * 40 + b"1" + b"}" * 40, "levels deep"),          # within it, past ours
    (b"[1, 2]", "not an object resource"),
])
def test_a_notification_nested_too_deep_or_not_an_object_is_unsupported_not_a_crash(payload, told):
    from common.platform.events import from_notification
    with pytest.raises(UnsupportedEvent, match=told):
        from_notification(payload, {"eventType": "OBJECT_FINALIZE", "bucketId": "data", "objectId": "o",
                                    "objectGeneration": "1"}, "m1")
