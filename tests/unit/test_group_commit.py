"""Group commit inside one instance (common/platform/group_commit.py): requests that arrive together are acted
on in one call, each gets its own outcome, a failure is its own request's alone."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from common.platform.events import UnsupportedEvent
from common.platform.group_commit import GroupCommit, PushedEvents
from common.platform.handler import Outcome, Result


@dataclass(frozen=True)
class Event:
    name: str

    def log_fields(self) -> dict:
        return {"object": self.name}


class Recorder:
    """An act that records each call's events and answers per event: 'retry' raises a transient error in its
    place, 'bug' an unexpected one, anything else is applied."""

    def __init__(self, gate: threading.Event | None = None):
        self.calls: list[list[str]] = []
        self.gate = gate

    def __call__(self, events: list[Event]) -> list[Outcome | Exception]:
        if self.gate:
            self.gate.wait(10)
        self.calls.append([event.name for event in events])
        return [TimeoutError("slow") if e.name.startswith("retry") else KeyError("bug") if e.name == "bug"
                else Outcome(Result.APPLIED, e.name) for e in events]


def until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"


def submit_together(groups: GroupCommit, names: list[str]) -> list[Outcome]:
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(lambda name: groups.submit(Event(name)), names))


def test_requests_that_arrive_together_share_one_act_and_each_gets_its_own_outcome():
    act = Recorder()
    outcomes = submit_together(GroupCommit(act, max_events=8, wait_seconds=5.0), [f"e{i}" for i in range(8)])
    assert len(act.calls) == 1 and sorted(act.calls[0]) == [f"e{i}" for i in range(8)]
    assert [(o.result, o.detail) for o in outcomes] == [(Result.APPLIED, f"e{i}") for i in range(8)]


def test_a_full_group_is_acted_on_at_once_and_the_rest_form_the_next():
    act = Recorder()
    outcomes = submit_together(GroupCommit(act, max_events=3, wait_seconds=5.0), [f"e{i}" for i in range(6)])
    assert sorted(len(call) for call in act.calls) == [3, 3]
    assert all(o.result == Result.APPLIED for o in outcomes)


def test_a_failing_event_fails_alone_within_its_group():
    act = Recorder()
    outcomes = submit_together(GroupCommit(act, max_events=4, wait_seconds=5.0), ["a", "retry-b", "bug", "d"])
    assert len(act.calls) == 1
    assert [o.result for o in outcomes] == [Result.APPLIED, Result.RETRY, Result.FAILED, Result.APPLIED]


def test_an_act_that_raises_for_all_makes_every_request_of_the_group_retry():
    def broken(events):
        raise ConnectionError("Firestore unavailable")
    outcomes = submit_together(GroupCommit(broken, max_events=2, wait_seconds=5.0), ["a", "b"])
    assert [o.result for o in outcomes] == [Result.RETRY, Result.RETRY]


def test_a_lone_request_waits_no_longer_than_its_window():
    act = Recorder()
    outcome = GroupCommit(act, max_events=100, wait_seconds=0.001).submit(Event("alone"))
    assert outcome.result == Result.APPLIED and act.calls == [["alone"]]


def test_requests_arriving_while_a_group_is_acted_on_form_the_next_group():
    gate = threading.Event()
    act = Recorder(gate)
    groups = GroupCommit(act, max_events=1, wait_seconds=0.0)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(groups.submit, Event("first"))
        second = pool.submit(groups.submit, Event("second"))
        gate.set()
        assert first.result(10).result == second.result(10).result == Result.APPLIED
    assert sorted(act.calls) == [["first"], ["second"]]


class Marks:
    """Delivery marks in memory, as common.cloud.delivery_attempts keeps them in Firestore."""

    def __init__(self, **unfinished: int):
        self.unfinished = dict(unfinished)

    def begin(self, subscription: str, message_id: str) -> int:
        earlier = self.unfinished.get(message_id, 0)
        self.unfinished[message_id] = earlier + 1
        return earlier

    def end(self, subscription: str, message_id: str) -> None:
        self.unfinished.pop(message_id, None)


def decode(cloud_event) -> Event:
    if cloud_event["kind"] != "object":
        raise UnsupportedEvent("not an object event")
    return Event(cloud_event["name"])


def pushed(act, quarantine=lambda event: Outcome(Result.REJECTED, "quarantined"), marks=None) -> PushedEvents:
    return PushedEvents("ingest-push", decode, act, quarantine, marks or Marks(), max_events=10, wait_seconds=0.0)


def object_event(message_id: str) -> dict:
    return {"id": message_id, "kind": "object", "name": f"file{message_id}"}


def test_messages_delivered_again_are_handled_one_at_a_time_so_a_crash_marks_only_one():
    """Two redelivered messages at one instance: the second waits, unmarked, while the first is handled; had the
    instance died then, only the first would carry a mark."""
    gate = threading.Event()
    marks = Marks()
    events = pushed(Recorder(gate), marks=marks)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(events.handle, object_event("1"), 2)
        until(lambda: events.status.as_dict()["handling"])
        second = pool.submit(events.handle, object_event("2"), 2)
        watch_until = time.monotonic() + 0.5  # the window the second would be marked in, were it not held
        while time.monotonic() < watch_until and "2" not in marks.unfinished:
            time.sleep(0.005)  # polled, not spun: the request threads need the cores
        marked_while_first_ran = dict(marks.unfinished)
        gate.set()
        assert first.result(10).result == second.result(10).result == Result.APPLIED
    assert marked_while_first_ran == {"1": 1}
    assert marks.unfinished == {}  # removed once handled


def test_a_message_that_killed_its_instance_once_while_alone_is_handled_again():
    act = Recorder()
    outcome = pushed(act, marks=Marks(**{"1": 1})).handle(object_event("1"), delivery_attempt=3)
    assert outcome.result == Result.APPLIED and act.calls == [["file1"]]


def test_a_message_that_killed_its_instance_twice_while_alone_is_quarantined_unhandled():
    act, quarantined = Recorder(), []
    events = pushed(act, quarantine=lambda event: quarantined.append(event) or Outcome(Result.REJECTED, "set aside"),
                    marks=Marks(**{"1": 2}))
    outcome = events.handle(object_event("1"), delivery_attempt=4)
    assert (outcome.result, outcome.detail) == (Result.REJECTED, "set aside")
    assert quarantined == [Event("file1")] and act.calls == []
    assert events.status.as_dict()["quarantined"] == 1


def test_an_event_ingest_does_not_act_on_is_ignored_and_counted():
    events = pushed(Recorder())
    outcome = events.handle({"id": "1", "kind": "metadata"}, delivery_attempt=1)
    assert outcome.result == Result.IGNORED
    assert events.status.as_dict()["outcomes"] == {"ignored": 1}


def test_the_status_names_the_events_in_hand_while_they_are_acted_on():
    gate = threading.Event()
    events = pushed(Recorder(gate))
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(events.handle, {"id": "1", "kind": "object", "name": "big.png"}, 1)
        until(lambda: events.status.as_dict()["handling"] or answer.done())
        seen = events.status.as_dict()["handling"]
        gate.set()
        assert answer.result(10).result == Result.APPLIED
    assert seen == [{"object": "big.png"}]
    assert events.status.as_dict()["handling"] == [] and events.status.as_dict()["outcomes"] == {"applied": 1}


def test_a_message_that_is_no_event_fails_once_and_is_acknowledged():
    def undecodable(cloud_event):
        raise ValueError("not JSON")
    events = PushedEvents("ingest-push", undecodable, Recorder(), lambda e: Outcome(Result.REJECTED), Marks(), 10,
                          0.0)
    assert events.handle({"id": "1"}, delivery_attempt=1).result == Result.FAILED


def test_the_status_counts_each_group_acted_on_once():
    events = pushed(Recorder())
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: events.handle({"id": str(i), "kind": "object", "name": f"e{i}"}, 1), range(4)))
    status = events.status.as_dict()
    assert status["events"] == 4 and 1 <= status["batches"] <= 4
    assert status["first_request_at"] <= status["last_batch_at"]


def test_requests_that_arrive_while_a_group_is_acted_on_gather_into_one_next_group():
    gate = threading.Event()
    act = Recorder(gate)
    groups = GroupCommit(act, max_events=100, wait_seconds=0.0, acting_at_once=1)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(groups.submit, Event("first"))
        until(lambda: first.running() and groups._open is None)  # the first group closed: it is being acted on
        later = [pool.submit(groups.submit, Event(f"later{i}")) for i in range(5)]
        until(lambda: groups._open is not None and len(groups._open.events) == 5)
        gate.set()
        assert all(f.result(10).result == Result.APPLIED for f in [first, *later])
    assert act.calls[0] == ["first"] and sorted(act.calls[1]) == [f"later{i}" for i in range(5)]
    assert len(act.calls) == 2
