"""Decoding of the events the functions and workers receive, in the one place that knows their shapes.

- A GCS notification as Pub/Sub delivers it to ingest (from_notification): the attributes say eventType
  (OBJECT_FINALIZE / OBJECT_DELETE), bucketId, objectId and objectGeneration; the data is the object resource
  as JSON.
- A Pub/Sub messagePublished CloudEvent as a push subscription delivers it to a function (pubsub_message),
  and its data as the message its consumer declares (decode, with a model of common.domain.messages).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from common.domain import bounded_json

FINALIZED = "finalized"
DELETED = "deleted"

PUBSUB_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
NOTIFICATION_TYPES = {"OBJECT_FINALIZE": FINALIZED, "OBJECT_DELETE": DELETED}


class UnsupportedEvent(ValueError):
    """An event this system does not act on (acknowledged, never retried)."""


@dataclass(frozen=True)
class ObjectEvent:
    action: str          # FINALIZED or DELETED
    bucket: str
    name: str
    generation: int
    size: int | None
    event_id: str
    # A delete that only says a newer generation replaced this one (the notification's
    # overwrittenByGeneration): the object is still there, and the new generation's own event follows.
    overwritten: bool = False
    # The object's custom metadata as the event carries it (who asked for an upload session: common.cloud.uploader)
    metadata: dict | None = field(default=None, compare=False, hash=False)

    def log_fields(self) -> dict:
        return {"event_id": self.event_id, "object": self.name, "generation": self.generation, "action": self.action}


def from_notification(payload: bytes, attributes: dict, event_id: str) -> ObjectEvent:
    """A GCS notification as a pull subscription hands it over: its data (the object resource as JSON, or
    nothing) and its attributes. `event_id` is the message id."""
    notification_type = attributes.get("eventType")
    if notification_type not in NOTIFICATION_TYPES:
        raise UnsupportedEvent(f"notification eventType {notification_type!r} is not finalize or delete")
    try:
        resource = bounded_json.loads(payload) if payload else {}
    except ValueError as exc:  # not JSON, or nested past any object resource (TooDeep, never RecursionError)
        raise UnsupportedEvent(f"notification payload is not JSON of an object resource: {exc}") from exc
    if not isinstance(resource, dict):
        raise UnsupportedEvent(f"notification payload is JSON {type(resource).__name__}, not an object resource")
    return _from_object(NOTIFICATION_TYPES[notification_type], resource, attributes, event_id)


def _from_object(action: str, resource: dict, attributes: dict, event_id: str) -> ObjectEvent:
    bucket = resource.get("bucket") or attributes.get("bucketId")
    name = resource.get("name") or attributes.get("objectId")
    generation = resource.get("generation") or attributes.get("objectGeneration")
    if not bucket or not name or generation is None:
        raise UnsupportedEvent("object event lacks bucket, name or generation")
    try:
        generation = int(generation)
        size = int(resource["size"]) if resource.get("size") not in (None, "") else None
    except (TypeError, ValueError) as exc:
        raise UnsupportedEvent(f"object event has a non-numeric generation or size: {exc}") from exc
    metadata = resource.get("metadata")
    return ObjectEvent(action, bucket, name, generation, size, event_id,
                       overwritten=bool(attributes.get("overwrittenByGeneration")),
                       metadata=metadata if isinstance(metadata, dict) else None)


@dataclass(frozen=True)
class PubSubMessage:
    message_id: str
    data: bytes
    event_id: str
    attributes: dict

    def log_fields(self) -> dict:
        return {"event_id": self.event_id, "message_id": self.message_id}


def pubsub_message(cloud_event) -> PubSubMessage:
    """The message inside a Pub/Sub messagePublished CloudEvent."""
    if cloud_event["type"] != PUBSUB_TYPE:
        raise UnsupportedEvent(f"event type {cloud_event['type']!r} is not a Pub/Sub message")
    message = (cloud_event.data or {}).get("message") or {}
    try:
        data = base64.b64decode(message.get("data") or "")
    except (ValueError, TypeError) as exc:
        raise UnsupportedEvent(f"message data is not base64: {exc}") from exc
    return PubSubMessage(message.get("messageId") or message.get("message_id") or cloud_event["id"],
                         data, cloud_event["id"], message.get("attributes") or {})


MAX_MESSAGE_BYTES = 1024 * 1024  # a Firestore document's limit: no message of ours records more
MAX_ERRORS_TOLD = 4


class BadMessage(ValueError):
    """A message its consumer can never act on: too large, not JSON, nested too deep, or not the shape its
    model declares. The handler acknowledges it as REJECTED, never retried, logged with `field` and `problem`.
    `document` is the JSON it held, where it was JSON (start_training records it on the failed job)."""

    def __init__(self, problem: str, field: str = "", document: object = None):
        super().__init__(f"{field}: {problem}" if field else problem)
        self.problem, self.field, self.document = problem, field, document


M = TypeVar("M")


def decode(message: PubSubMessage, model: type[M] | TypeAdapter[M]) -> M:
    """The message as `model` (a model of common.domain.messages, or an adapter of a union of them);
    BadMessage when it is not."""
    if len(message.data) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"the message has {len(message.data)} bytes; at most {MAX_MESSAGE_BYTES} are read")
    try:
        document = bounded_json.loads(message.data)
    except ValueError as exc:  # not JSON (not UTF-8 either), or nested too deep
        raise BadMessage(f"the message is not JSON: {exc}") from None
    try:
        adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)  # about 10 µs
        return adapter.validate_python(document, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more: {_told(errors[1:MAX_ERRORS_TOLD])})" if len(errors) > 1 else ""
        raise BadMessage(_problem(first) + more, _field(first), document) from None


def _field(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"])


def _problem(error: Mapping[str, Any]) -> str:
    return error["msg"].removeprefix("Value error, ")


def _told(errors: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{_field(error) or 'the message'}: {_problem(error)}" for error in errors)
