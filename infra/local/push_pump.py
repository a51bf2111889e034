"""The local stack's Pub/Sub push to the ingest function, with many requests in flight as in production.

The emulator's own push loop sends two requests at a time; production's push sends as many as the function's
instances take. This pump pulls SUBSCRIPTION and POSTs each message to ENDPOINT as Pub/Sub push does (the push
body: message, subscription, deliveryAttempt), up to IN_FLIGHT at once; it acknowledges a success (102, 200, 201,
202, 204) and nacks anything else, so the subscription's dead-letter policy counts the deliveries as the emulator
does. A function that does not accept the connection (stopped, starting again) has not been delivered to: the
message is offered again when it answers, as push backs off from an endpoint that is down.

fake-gcs-server notifies every object of the bucket, where production's notifications cover only the bucket's
`notification_prefixes` (infra/settings.json; a notification configuration each): given PREFIXES, the pump
acknowledges a notification of any other object without pushing it, as if it had never been published (the
thumbnails ingest writes under derived/ would otherwise be a third request per image+label pair here).

    python -m infra.local.push_pump SUBSCRIPTION ENDPOINT IN_FLIGHT [PREFIX,...]   (PUBSUB_EMULATOR_HOST set)
"""
from __future__ import annotations

import base64
import http.client
import json
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1

ACKED_STATUSES = frozenset({102, 200, 201, 202, 204})  # what Pub/Sub push takes as an acknowledgement
REQUEST_SECONDS = 540.0      # the function's timeout: the subscription's ack deadline
PULL_SECONDS = 5.0
IDLE_BACKOFF = (0.01, 0.2)   # polling after an empty pull (the emulator answers at once): first, longest
DOWN_BACKOFF = (0.05, 1.0)   # while the function does not accept connections: first, longest
SETTLE_SECONDS = 0.02        # acknowledgements are sent together this often: one request for many, as Pub/Sub's own


class Pump:
    def __init__(self, subscription: str, endpoint: str, in_flight: int, prefixes: tuple[str, ...] = ()):
        self.subscriber = pubsub_v1.SubscriberClient()
        self.subscription, self.endpoint, self.in_flight = subscription, urlsplit(endpoint), in_flight
        self.prefixes = prefixes  # empty: push every message
        self.slots = threading.Semaphore(in_flight)
        self.pool = ThreadPoolExecutor(in_flight, thread_name_prefix="push")
        self.stopping = threading.Event()
        self.acks: list[str] = []
        self.acks_lock = threading.Lock()
        self.acker = threading.Thread(target=self._acknowledge, name="ack", daemon=True)
        self.drained = threading.Event()  # stopped, and no delivery in flight: nothing more to acknowledge

    def run(self) -> None:
        self.acker.start()
        idle = IDLE_BACKOFF[0]
        while not self.stopping.is_set():
            free = self._take_slots()
            received = self._pull(free)
            for _ in range(free - len(received)):
                self.slots.release()
            for item in received:
                if notified(item.message.attributes, self.prefixes):
                    self.pool.submit(self._deliver, item)
                else:
                    self._settle(item.ack_id)
                    self.slots.release()
            if received:
                idle = IDLE_BACKOFF[0]
            else:
                self.stopping.wait(idle)
                idle = min(idle * 2, IDLE_BACKOFF[1])
        self.pool.shutdown(wait=True)
        self.drained.set()
        self.acker.join()

    def _acknowledge(self) -> None:
        """Every SETTLE_SECONDS, acknowledge what was delivered meanwhile in one request, until stopped and all is
        sent. A failed request leaves its messages to come back when their lease ends (ingest is idempotent)."""
        while True:
            drained = self.drained.wait(SETTLE_SECONDS)
            with self.acks_lock:
                ack_ids, self.acks = self.acks, []
            if ack_ids:
                try:
                    self.subscriber.acknowledge(subscription=self.subscription, ack_ids=ack_ids)
                except Exception as error:
                    print(f"{len(ack_ids)} acknowledgements not sent: {error!r}", file=sys.stderr, flush=True)
            if drained:
                return

    def _settle(self, ack_id: str) -> None:
        with self.acks_lock:
            self.acks.append(ack_id)

    def _take_slots(self) -> int:
        """Wait for one free slot, then take every other free one."""
        while not self.slots.acquire(timeout=1.0):
            if self.stopping.is_set():
                return 0
        taken = 1
        while taken < self.in_flight and self.slots.acquire(blocking=False):
            taken += 1
        return taken

    def _pull(self, most: int) -> list:
        if not most:
            return []
        try:
            response = self.subscriber.pull(subscription=self.subscription, max_messages=most,
                                            timeout=PULL_SECONDS, retry=None)
        except (api_exceptions.DeadlineExceeded, api_exceptions.GoogleAPICallError):
            return []
        return list(response.received_messages)

    def _deliver(self, item) -> None:
        try:
            status = self._post_until_accepted(push_body(item, self.subscription))
            if status in ACKED_STATUSES:
                self._settle(item.ack_id)
            else:
                self.subscriber.modify_ack_deadline(subscription=self.subscription, ack_ids=[item.ack_id],
                                                    ack_deadline_seconds=0)
                print(f"push of {item.message.message_id} (delivery {item.delivery_attempt}) answered {status}: "
                      "nacked", flush=True)
        except Exception as error:  # the emulator gone (the stack stopping): the lease returns the message
            print(f"push of {item.message.message_id} not settled: {error!r}", file=sys.stderr, flush=True)
        finally:
            self.slots.release()

    def _post_until_accepted(self, body: bytes) -> int:
        """The function's status for the push request; 503 when the request failed once sent (the instance died)."""
        wait = DOWN_BACKOFF[0]
        while True:
            try:
                return self._post(body)
            except ConnectionRefusedError:
                if self.stopping.wait(wait):
                    return 503
                wait = min(wait * 2, DOWN_BACKOFF[1])
            except (OSError, http.client.HTTPException):
                return 503

    def _post(self, body: bytes) -> int:
        """One request on a connection of its own: a failure is this delivery's alone."""
        connection = http.client.HTTPConnection(self.endpoint.hostname or "127.0.0.1", self.endpoint.port,
                                                timeout=REQUEST_SECONDS)
        try:
            connection.request("POST", self.endpoint.path or "/", body,
                               {"Content-Type": "application/json", "Connection": "close"})
            answer = connection.getresponse()
            answer.read()
            return answer.status
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()


def notified(attributes, prefixes: tuple[str, ...]) -> bool:
    """Whether production's notifications cover the message's object (no prefixes, or no object: pushed)."""
    name = attributes.get("objectId")
    return not prefixes or name is None or name.startswith(prefixes)


def push_body(item, subscription: str) -> bytes:
    """The body Pub/Sub push sends for a received message."""
    message = item.message
    return json.dumps({
        "message": {"data": base64.b64encode(message.data).decode(), "attributes": dict(message.attributes),
                    "messageId": message.message_id, "message_id": message.message_id,
                    "publishTime": message.publish_time.isoformat().replace("+00:00", "Z")},
        "subscription": subscription, "deliveryAttempt": item.delivery_attempt}).encode()


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    prefixes = tuple(prefix for prefix in (argv[4] if len(argv) == 5 else "").split(",") if prefix)
    pump = Pump(argv[1], argv[2], int(argv[3]), prefixes)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: pump.stop())
    print(f"pushing {argv[1]} to {argv[2]}, {argv[3]} in flight"
          + (f", notifications of {', '.join(prefixes)} only" if prefixes else ""), flush=True)
    started = time.monotonic()
    pump.run()
    print(f"stopped after {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
