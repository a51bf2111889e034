"""A pull worker: the notifications of one Pub/Sub subscription, taken in batches.

    pull up to N -> decode each -> act on them together -> log each outcome -> ack, or nack to retry

A batch is what has arrived since the last one (up to N), so a busy worker
handles many events per round trip and an idle one answers the first event at
once. Outcomes are the event functions' (common.platform.handler): RETRY is
nacked, so Pub/Sub redelivers it with the subscription's backoff and, after its
maximum attempts, sends it to the dead-letter topic; every other outcome is
acknowledged. A batch's messages are leased for LEASE_SECONDS and leased again
while it runs, so a slow batch (huge images) is never delivered twice meanwhile,
and the batch of a worker that died comes back within LEASE_SECONDS.

A message that kills its consumer (a file that takes the process past its
memory) must not take every tenant's events down with it until its dead-letter
limit. Pub/Sub counts deliveries (delivery_attempt, set where the subscription
has a dead-letter policy): a message delivered again is handled alone, after the
others of its batch are settled, so the innocent messages of a crashed batch go
through; a mark is kept while it is handled (common.cloud.delivery_attempts),
and a message found marked already killed its consumer while alone: it is
quarantined (acknowledged without being handled, the service records why).

It answers HTTP on PORT with its counters as JSON: Cloud Run's health check,
the local stack's readiness, and what an operator or the bench reads. SIGTERM
(Cloud Run stopping an instance) finishes the batch in hand and nacks anything
pulled after it, so nothing waits out a lease.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Generic

from google.api_core import exceptions as api_exceptions

from common.cloud import clients, delivery_attempts
from common.platform import config, log
from common.platform.events import UnsupportedEvent
from common.platform.handler import E, Outcome, Result, handle_batch

PULL_SECONDS = 5.0        # how long one pull waits for a message: also how soon a stop is noticed
LEASE_SECONDS = 30        # the ack deadline, renewed while a batch runs: how soon a dead worker's batch returns
RENEW_EVERY = 10.0        # a running batch's lease is renewed this often
REDELIVERED = 2           # a delivery_attempt from which a message is handled alone (0: the count is unknown)
IDLE_BACKOFF = (0.05, 0.5)  # polling interval after an empty pull answered at once: first, longest

Decode = Callable[[bytes, dict[str, str], str], E]  # (data, attributes, message id) -> event
Act = Callable[[list[E]], list[Outcome | Exception]]  # events -> each one's outcome, in its place
Quarantine = Callable[[E], Outcome]  # a decoded event not to be handled again -> what was recorded


class Worker(Generic[E]):
    def __init__(self, subscription: str, decode: Decode[E], act: Act[E], batch_size: int,
                 quarantine: Quarantine[E]):
        self.subscriber = clients.subscriber()
        self.subscription_id = subscription
        self.subscription = self.subscriber.subscription_path(config.project(), subscription)
        self.decode, self.act, self.batch_size, self.quarantine = decode, act, batch_size, quarantine
        self.stopping = threading.Event()
        self.status = Status(subscription)

    def run(self) -> None:
        """Pull and handle batches until stop()."""
        idle = IDLE_BACKOFF[0]
        while not self.stopping.is_set():
            started = time.monotonic()
            if self._run_once_logged():
                idle = IDLE_BACKOFF[0]
            elif time.monotonic() - started < PULL_SECONDS / 2:
                # An empty answer at once (the emulator does not hold a pull open as Pub/Sub does, nor does a
                # failing service): poll, don't spin.
                self.stopping.wait(idle)
                idle = min(idle * 2, IDLE_BACKOFF[1])

    def stop(self) -> None:
        self.stopping.set()

    def _run_once_logged(self) -> int:
        """run_once, surviving whatever it raises: the worker must keep pulling. Messages it held and did not
        settle come back when their lease ends."""
        try:
            return self.run_once()
        except Exception as error:
            log.error("batch failed outside any event; its messages come back when their lease ends",
                      error=repr(error)[:300], traceback=traceback.format_exc())
            return 0

    def run_once(self) -> int:
        """Pull one batch and handle it; how many messages it held."""
        received = self._pull()
        if not received:
            return 0
        if self.stopping.is_set():  # pulled while stopping: give them straight back
            self._nack([m.ack_id for m in received])
            return 0
        first = [m for m in received if m.delivery_attempt < REDELIVERED]
        again = [m for m in received if m.delivery_attempt >= REDELIVERED]
        with self._leased([m.ack_id for m in received]) as leased:
            if first:
                self._settle(first, self._handle(first))
                leased.difference_update(m.ack_id for m in first)
            for item in again:
                self._settle([item], [self._handle_alone(item)])
                leased.discard(item.ack_id)
        return len(received)

    def _handle_alone(self, item) -> Outcome:
        """A message delivered again: handled alone, or quarantined when it killed its consumer while alone."""
        message_id = item.message.message_id
        try:
            crashes = delivery_attempts.begin(self.subscription_id, message_id)
        except Exception as error:
            log.warning("delivery mark not written; the message is redelivered", message_id=message_id,
                        error=repr(error)[:300])
            return Outcome(Result.RETRY, "delivery mark not written")
        try:
            return self._quarantined(item) if crashes else self._handle([item])[0]
        finally:
            try:
                delivery_attempts.end(self.subscription_id, message_id)
            except Exception as error:
                log.warning("delivery mark not removed", message_id=message_id, error=repr(error)[:300])

    def _quarantined(self, item) -> Outcome:
        message = item.message
        self.status.begin()
        try:
            event = self.decode(message.data, dict(message.attributes), message.message_id)
            outcome = self.quarantine(event)
        except Exception as error:
            outcome = Outcome(Result.FAILED, "quarantined; not recorded", {"error": repr(error)[:300]})
        log.error("message quarantined: its handling killed the worker; acknowledged without handling it",
                  outcome=outcome.result.value, message_id=message.message_id,
                  delivery_attempt=item.delivery_attempt, detail=outcome.detail)
        self.status.record([outcome], 0.0, quarantined=1)
        return outcome

    def _pull(self) -> list:
        try:
            response = self.subscriber.pull(subscription=self.subscription, max_messages=self.batch_size,
                                            timeout=PULL_SECONDS, retry=None)
        except api_exceptions.DeadlineExceeded:
            return []
        except api_exceptions.GoogleAPICallError as error:
            log.warning("pull failed; trying again", subscription=self.subscription, error=repr(error)[:300])
            return []
        return list(response.received_messages)

    def _handle(self, received: list) -> list[Outcome]:
        self.status.begin()
        started = time.monotonic()
        outcomes: dict[int, Outcome] = {}
        events: list[tuple[int, E]] = []
        for index, item in enumerate(received):
            message = item.message
            try:
                events.append((index, self.decode(message.data, dict(message.attributes), message.message_id)))
            except UnsupportedEvent as unsupported:
                outcomes[index] = Outcome(Result.IGNORED, str(unsupported))
                log.info(str(unsupported), outcome=Result.IGNORED.value, message_id=message.message_id)
            except Exception as error:
                outcomes[index] = Outcome(Result.FAILED, "undecodable message", {"error": repr(error)[:300]})
                log.error("undecodable message; acknowledged", outcome=Result.FAILED.value,
                          message_id=message.message_id, error=repr(error)[:300])
        self.status.handling_now([event.log_fields() for _, event in events])
        handled = handle_batch([event for _, event in events], self.act)
        for (index, _), outcome in zip(events, handled):
            outcomes[index] = outcome
        in_order = [outcomes[index] for index in range(len(received))]  # each message's, decoded or not
        self.status.record(in_order, time.monotonic() - started)
        return in_order

    def _settle(self, received: list, outcomes: list[Outcome]) -> None:
        retry = [m.ack_id for m, o in zip(received, outcomes) if o.result == Result.RETRY]
        done = [m.ack_id for m, o in zip(received, outcomes) if o.result != Result.RETRY]
        if done:
            self.subscriber.acknowledge(subscription=self.subscription, ack_ids=done)
        self._nack(retry)

    def _nack(self, ack_ids: list[str]) -> None:
        if ack_ids:
            self.subscriber.modify_ack_deadline(subscription=self.subscription, ack_ids=ack_ids,
                                                ack_deadline_seconds=0)

    @contextmanager
    def _leased(self, ack_ids: list[str]):
        """Lease `ack_ids` for LEASE_SECONDS, renewed every RENEW_EVERY seconds while the block runs; the block
        removes from the set it is given what it has settled."""
        done, held, lock = threading.Event(), set(ack_ids), threading.Lock()

        def lease():
            with lock:
                current = sorted(held)
            if not current:
                return
            try:
                self.subscriber.modify_ack_deadline(subscription=self.subscription, ack_ids=current,
                                                    ack_deadline_seconds=LEASE_SECONDS)
            except api_exceptions.GoogleAPICallError as error:
                log.warning("lease not renewed", error=repr(error)[:300])

        def renew():
            while not done.wait(RENEW_EVERY):
                lease()
        renewer = threading.Thread(target=renew, name="lease", daemon=True)
        renewer.start()
        try:
            yield _Held(held, lock)
        finally:
            done.set()


class _Held:
    """The ack ids a batch still holds, shared with its lease's renewer."""

    def __init__(self, ids: set[str], lock: threading.Lock):
        self.ids, self.lock = ids, lock

    def difference_update(self, ids) -> None:
        with self.lock:
            self.ids.difference_update(ids)

    def discard(self, ack_id: str) -> None:
        with self.lock:
            self.ids.discard(ack_id)


class Status:
    """What the worker has done since it started, for its HTTP answer."""

    def __init__(self, subscription: str):
        self.subscription = subscription
        self.started = time.time()
        self.batches = 0
        self.outcomes: Counter = Counter()
        self.busy_seconds = 0.0
        self.first_batch_at: float | None = None
        self.cpu_before_first_batch: dict | None = None  # what starting up cost
        self.last_batch_at: float | None = None
        self.quarantined = 0
        self.handling: list[dict] = []  # the events of the batch in hand (their log fields: object, generation...)
        self._lock = threading.Lock()

    def begin(self) -> None:
        """A batch begins: the first one marks where start-up ends."""
        with self._lock:
            if self.first_batch_at is None:
                self.first_batch_at, self.cpu_before_first_batch = time.time(), _cpu()

    def handling_now(self, events: list[dict]) -> None:
        with self._lock:
            self.handling = events

    def record(self, outcomes: list[Outcome], seconds: float, quarantined: int = 0) -> None:
        with self._lock:
            self.handling = []
            self.quarantined += quarantined
            self.batches += 1
            self.outcomes.update(outcome.result.value for outcome in outcomes)
            self.busy_seconds += seconds
            self.last_batch_at = time.time()

    def as_dict(self) -> dict:
        with self._lock:
            events = sum(self.outcomes.values())
            return {"subscription": self.subscription, "started": self.started, "batches": self.batches,
                    "events": events, "outcomes": dict(self.outcomes),
                    "mean_batch": round(events / self.batches, 1) if self.batches else 0,
                    "busy_seconds": round(self.busy_seconds, 3), "first_batch_at": self.first_batch_at,
                    "last_batch_at": self.last_batch_at, "cpu": _cpu(), "quarantined": self.quarantined,
                    "handling": list(self.handling),
                    "cpu_before_first_batch": self.cpu_before_first_batch}


def _cpu() -> dict:
    """This process's CPU seconds so far, every thread."""
    times = os.times()
    return {"user": times.user, "system": times.system}


def serve_status(status: Status, port: int) -> ThreadingHTTPServer:
    """Answer GET on `port` with the status as JSON, from a daemon thread (on every interface, as Cloud Run
    needs, unless HOST names one: the local stack's loopback)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(status.as_dict()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # health checks are not worth a log line each
            pass

    server = ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), port), Handler)
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    return server


def main(subscription: str, decode: Decode[E], act: Act[E], batch_size: int, quarantine: Quarantine[E]) -> None:
    """Run a worker until SIGTERM or SIGINT, its status on PORT (default 8080, as Cloud Run sets it)."""
    worker = Worker(subscription, decode, act, batch_size, quarantine)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    server = serve_status(worker.status, int(os.environ.get("PORT", "8080")))
    log.info("worker started", subscription=worker.subscription, batch_size=batch_size)
    worker.run()
    server.shutdown()
    log.info("worker stopped", **worker.status.as_dict())
