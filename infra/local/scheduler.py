"""The local stack's Cloud Scheduler: publishes a tick to the watch topic at a
fixed interval, as the production schedule does (infra/settings.json, "watch").

    python -m infra.local.scheduler      (PUBSUB_EMULATOR_HOST, GOOGLE_CLOUD_PROJECT,
                                          WATCH_TOPIC, WATCH_INTERVAL_SECONDS)
"""
from __future__ import annotations

import signal
import sys
import threading

from common.domain.messages import Sweep
from common.platform import config, log


def run(stop: threading.Event) -> None:
    from google.cloud import pubsub_v1
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(config.project(), config.watch_topic())
    while not stop.is_set():
        try:
            publisher.publish(topic, Sweep(sweep=True).wire()).result(timeout=30)
        except Exception as exc:  # the emulator going down with the stack: say so, keep ticking until stopped
            log.log("WARNING", "tick not published", error=repr(exc))
        stop.wait(config.watch_interval_seconds())  # the schedule's interval, not a wait for an outcome


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
