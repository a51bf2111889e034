"""The one wrapper every event function shares, and the typed outcome of an event.

    decode -> act -> log the outcome, and either acknowledge or raise

- transient failures (a service unavailable, a timeout, contention; see
  common.platform.failures) raise, so the platform redelivers the event;
- bad input is the service's own outcome (REJECTED, or an issue recorded on an
  APPLIED file), acknowledged: a file that will never parse is never retried;
  a message that is not what its consumer declares raises events.BadMessage
  wherever the service decodes it, and is REJECTED here, the same way for all;
- anything unexpected is logged at ERROR with its traceback and acknowledged.

Every outcome is one JSON log line with the same fields: severity, outcome,
message, seconds, and the event's own fields (event id, object, generation...).
"""
from __future__ import annotations

import enum
import time
import traceback
from dataclasses import dataclass, field
from typing import Protocol, TypeVar
from collections.abc import Callable

from common.platform import log
from common.platform.events import BadMessage, UnsupportedEvent
from common.platform.failures import is_transient


class Result(enum.Enum):
    APPLIED = "applied"      # the event changed what the system knows
    DUPLICATE = "duplicate"  # already applied: a redelivery, or a newer state is held
    STALE = "stale"          # superseded: an older generation, a late event, an object gone since
    IGNORED = "ignored"      # not for this function: another bucket, derived/, an unsupported event
    REJECTED = "rejected"    # bad input, recorded where its sender looks; never retried
    FAILED = "failed"        # an unexpected error: logged with its traceback, not retried
    RETRY = "retry"          # a transient failure: raised so the platform redelivers


SEVERITY = {Result.FAILED: "ERROR", Result.RETRY: "WARNING", Result.REJECTED: "WARNING"}


@dataclass(frozen=True)
class Outcome:
    result: Result
    detail: str = ""
    fields: dict = field(default_factory=dict)


class DecodedEvent(Protocol):
    def log_fields(self) -> dict: ...


E = TypeVar("E", bound=DecodedEvent)


def handle_event(cloud_event, decode: Callable[[object], E], act: Callable[[E], Outcome],
                 retry_on: tuple[type[BaseException], ...] = ()) -> Outcome:
    """Decode `cloud_event`, act on it, log the outcome; raise only to be redelivered."""
    started = time.monotonic()
    try:
        event = decode(cloud_event)
    except UnsupportedEvent as exc:
        return _logged(Outcome(Result.IGNORED, str(exc)), {"event_id": cloud_event["id"]}, started)
    context = event.log_fields()
    try:
        outcome = act(event)
    except BadMessage as bad:
        outcome = rejected(bad)
    except Exception as exc:
        outcome = _failure(exc, retry_on)
        if outcome.result == Result.RETRY:
            _logged(outcome, context, started)
            raise
    return _logged(outcome, context, started)


def handle_batch(events: list, act: Callable[[list[E]], list[Outcome | Exception]]) -> list[Outcome]:
    """Act on decoded `events` together and log each one's outcome; never raises. An exception in an event's
    place, or raised by `act` for all of them, becomes RETRY when transient (the caller leaves the event to
    be redelivered) and FAILED otherwise."""
    started = time.monotonic()
    try:
        results = act(events)
    except Exception as exc:
        results = [exc] * len(events)
    outcomes = [_failure(result) if isinstance(result, Exception) else result for result in results]
    return [_logged(outcome, event.log_fields(), started) for event, outcome in zip(events, outcomes)]


def rejected(bad: BadMessage) -> Outcome:
    """A message that can never be acted on: acknowledged, never retried, logged with what is wrong where."""
    return Outcome(Result.REJECTED, f"bad message: {bad}", {"field": bad.field, "error": bad.problem})


def _failure(exc: Exception, retry_on: tuple[type[BaseException], ...] = ()) -> Outcome:
    if is_transient(exc) or isinstance(exc, retry_on):
        return Outcome(Result.RETRY, "transient failure; the event will be redelivered", {"error": repr(exc)})
    return Outcome(Result.FAILED, "failed and will not be retried: fix the cause and send it again",
                   {"error": repr(exc), "traceback": "".join(traceback.format_exception(exc))})


def _logged(outcome: Outcome, context: dict, started: float) -> Outcome:
    log.log(SEVERITY.get(outcome.result, "INFO"), outcome.detail or outcome.result.value,
            outcome=outcome.result.value, seconds=round(time.monotonic() - started, 4), **context, **outcome.fields)
    return outcome
