"""Events pushed one per request, acted on together: group commit inside one instance.

Pub/Sub pushes each message as its own request, and an instance serves many at once (its concurrency). The
requests that arrive together share one act (for ingest: one guard read, one transaction):

    request -> decode -> join the open group (the first to arrive waits WAIT_SECONDS for others, or until
               the group is full, and then while ACTING_AT_ONCE groups are being acted on, the group still
               open) -> one act for the group -> each request its own outcome

As in a database's group commit, the busier the instance, the larger its groups: the requests that arrive while
earlier groups are acted on gather into the next, so a drop costs few transactions, and an idle instance acts
on a lone request after WAIT_SECONDS.

Each request answers for its own event alone: RETRY is an error status, so Pub/Sub redelivers that message
only; every other outcome is acknowledged. A message delivered again (the push body's deliveryAttempt, where
the subscription has a dead-letter policy) is acted on alone: outside any group, and one at a time in its
instance, so that when the instance dies the message it was handling alone is the only one marked. A mark is
kept while it runs (`DeliveryMarks`, in Firestore in production); a message found marked twice killed its
instance twice while alone: it is quarantined (acknowledged without being handled, the service records why).
Twice, not once: an instance can die of a message in a group while another is handled alone, and a message
delivered twice at once finds the other delivery's mark.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, Protocol

from common.platform import log
from common.platform.events import UnsupportedEvent
from common.platform.handler import E, Outcome, Result, handle_batch

WAIT_SECONDS = 0.005      # how long the first request of a group waits for others: a few ms of latency
ACTING_AT_ONCE = 2        # groups acted on at once by an instance: one reads its files while another commits
REDELIVERED = 2           # a delivery attempt from which a message is acted on alone (0: the count is unknown)
QUARANTINE_AFTER = 2      # unfinished handlings alone (instances it killed) after which a message is set aside

Decode = Callable[[object], E]  # a CloudEvent -> the event it carries
Act = Callable[[list[E]], list[Outcome | Exception]]  # events -> each one's outcome, in its place
Quarantine = Callable[[E], Outcome]  # an event not to be handled again -> what was recorded


class DeliveryMarks(Protocol):
    """Which messages began being handled alone and never finished (common.cloud.delivery_attempts)."""

    def begin(self, subscription: str, message_id: str) -> int:
        """Mark a handling as begun; how many earlier ones began and never ended."""

    def end(self, subscription: str, message_id: str) -> None:
        """The handling ended, whatever its outcome: forget the message."""


class _Group(Generic[E]):
    """The events of requests that arrived together, and, once acted on, their outcomes."""

    def __init__(self):
        self.events: list[E] = []
        self.outcomes: list[Outcome] = []
        self.closed = False
        self.full = threading.Event()
        self.done = threading.Event()


class GroupCommit(Generic[E]):
    """Requests that arrive together at one instance, acted on in one call of `act`."""

    def __init__(self, act: Act[E], max_events: int, wait_seconds: float = WAIT_SECONDS,
                 acted: Callable[[], None] = lambda: None, acting_at_once: int = ACTING_AT_ONCE):
        self.act, self.max_events, self.wait_seconds, self.acted = act, max_events, wait_seconds, acted
        self.acting_at_once = acting_at_once
        self._lock = threading.Condition()
        self._open: _Group[E] | None = None
        self._acting = 0

    def submit(self, event: E) -> Outcome:
        """Act on `event` with whatever arrives with it; its own outcome. Never raises."""
        group, place = self._join(event)
        if place == 0:
            self._lead(group)
        group.done.wait()
        return group.outcomes[place]

    def _join(self, event: E) -> tuple[_Group[E], int]:
        with self._lock:
            group = self._open
            if group is None:
                group = self._open = _Group()
            group.events.append(event)
            if len(group.events) >= self.max_events:
                self._close(group)
            return group, len(group.events) - 1

    def _close(self, group: _Group[E]) -> None:
        """Called with the lock held: no request joins `group` from now on."""
        group.closed = True
        group.full.set()
        if self._open is group:
            self._open = None

    def _lead(self, group: _Group[E]) -> None:
        """The first request of a group: wait for others and for a turn to act, close the group, act for all."""
        group.full.wait(self.wait_seconds)
        with self._lock:
            while self._acting >= self.acting_at_once:
                self._lock.wait()  # the group stays open meanwhile: what arrives joins it
            self._close(group)
            self._acting += 1
        try:
            group.outcomes = handle_batch(group.events, self.act)
            self.acted()
        finally:
            if len(group.outcomes) != len(group.events):  # handle_batch never raises; this is a last guard
                group.outcomes = [Outcome(Result.RETRY, "group not acted on")] * len(group.events)
            with self._lock:
                self._acting -= 1
                self._lock.notify_all()
            group.done.set()


class PushedEvents(Generic[E]):
    """One pushed request's event, decoded, acted on in its group (or alone when delivered again), counted."""

    def __init__(self, subscription: str, decode: Decode[E], act: Act[E], quarantine: Quarantine[E],
                 marks: DeliveryMarks, max_events: int, wait_seconds: float = WAIT_SECONDS):
        self.subscription, self.decode, self.act, self.quarantine = subscription, decode, act, quarantine
        self.marks = marks
        self._one_alone = threading.Lock()  # the messages delivered again: one at a time in this instance
        self.status = Status(subscription)
        self.groups = GroupCommit(act, max_events, wait_seconds, acted=self.status.acted)

    def handle(self, cloud_event, delivery_attempt: int) -> Outcome:
        """The event's outcome; RETRY asks for this message to be delivered again."""
        self.status.begin()
        try:
            event = self.decode(cloud_event)
        except UnsupportedEvent as unsupported:
            outcome = Outcome(Result.IGNORED, str(unsupported))
            log.info(str(unsupported), outcome=outcome.result.value, event_id=cloud_event["id"])
            self.status.record(outcome)
            return outcome
        except Exception as error:  # a notification that is not one: never retried
            outcome = Outcome(Result.FAILED, "undecodable message", {"error": repr(error)[:300]})
            log.error("undecodable message; acknowledged", outcome=outcome.result.value,
                      event_id=cloud_event["id"], error=repr(error)[:300])
            self.status.record(outcome)
            return outcome
        if delivery_attempt >= REDELIVERED:
            outcome = self._alone(event, cloud_event["id"], delivery_attempt)
        else:
            with self.status.handling(event.log_fields()):
                outcome = self.groups.submit(event)
        self.status.record(outcome)
        return outcome

    def _alone(self, event: E, message_id: str, delivery_attempt: int) -> Outcome:
        log.info("a message delivered again is handled alone", message_id=message_id,
                 delivery_attempt=delivery_attempt, **event.log_fields())
        with self._one_alone:
            try:
                crashes = self.marks.begin(self.subscription, message_id)
            except Exception as error:
                log.warning("delivery mark not written; the message is redelivered", message_id=message_id,
                            error=repr(error)[:300])
                return Outcome(Result.RETRY, "delivery mark not written")
            try:
                if crashes >= QUARANTINE_AFTER:
                    return self._quarantined(event, message_id, delivery_attempt)
                with self.status.handling(event.log_fields()):  # in hand once its mark is written
                    outcome = handle_batch([event], self.act)[0]
                self.status.acted()
                return outcome
            finally:
                try:
                    self.marks.end(self.subscription, message_id)
                except Exception as error:
                    log.warning("delivery mark not removed", message_id=message_id, error=repr(error)[:300])

    def _quarantined(self, event: E, message_id: str, delivery_attempt: int) -> Outcome:
        try:
            outcome = self.quarantine(event)
        except Exception as error:
            outcome = Outcome(Result.FAILED, "quarantined; not recorded", {"error": repr(error)[:300]})
        log.error("message quarantined: its handling killed the instance; acknowledged without handling it",
                  outcome=outcome.result.value, message_id=message_id, delivery_attempt=delivery_attempt,
                  detail=outcome.detail, **event.log_fields())
        self.status.quarantined_one()
        return outcome


class Status:
    """What this instance has done since it started: its outcomes, the events in hand, its CPU."""

    def __init__(self, subscription: str):
        self.subscription = subscription
        self.started = time.time()
        self.outcomes: Counter = Counter()
        self.quarantined = 0
        self.batches = 0  # acts: a group, or a redelivered event alone
        self.first_request_at: float | None = None
        self.cpu_before_first_request: dict | None = None  # what starting up cost
        self.last_batch_at: float | None = None
        self.in_hand: dict[int, dict] = {}  # request -> its event's log fields (object, generation...)
        self._lock = threading.Lock()

    def begin(self) -> None:
        """A request begins: the first one marks where start-up ends."""
        with self._lock:
            if self.first_request_at is None:
                self.first_request_at, self.cpu_before_first_request = time.time(), _cpu()

    def acted(self) -> None:
        with self._lock:
            self.batches += 1
            self.last_batch_at = time.time()

    @contextmanager
    def handling(self, fields: dict):
        """While the block runs, the event (its log fields) is in hand."""
        token = object()
        with self._lock:
            self.in_hand[id(token)] = fields
        try:
            yield
        finally:
            with self._lock:
                self.in_hand.pop(id(token), None)

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes[outcome.result.value] += 1

    def quarantined_one(self) -> None:
        with self._lock:
            self.quarantined += 1

    def as_dict(self) -> dict:
        with self._lock:
            return {"subscription": self.subscription, "started": self.started,
                    "events": sum(self.outcomes.values()), "outcomes": dict(self.outcomes), "batches": self.batches,
                    "first_request_at": self.first_request_at, "last_batch_at": self.last_batch_at,
                    "cpu_before_first_request": self.cpu_before_first_request, "cpu": _cpu(),
                    "quarantined": self.quarantined, "handling": list(self.in_hand.values())}


def _cpu() -> dict:
    """This process's CPU seconds so far, every thread."""
    times = os.times()
    return {"user": times.user, "system": times.system}


def serve_status(status: Status, port: int) -> ThreadingHTTPServer:
    """Answer GET on `port` (loopback) with the status as JSON, from a daemon thread: the local stack's view of
    an instance (production's is its logs)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(status.as_dict()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # polls are not worth a log line each
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    return server

