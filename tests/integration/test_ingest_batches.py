"""Events applied together. An ingest instance applies whatever notifications
arrived together in one group (one guard read, one transaction): a batch must
leave the index exactly as the same events applied one at a time would, in any
order and with repeats, and one bad change must not take the others with it.

Batches are built here from real notifications: the worker is stopped while the
files are written, their notifications pulled, then handed to
ingest.handle_batch in the composition each test needs."""
from __future__ import annotations

import random

import pytest
from google.cloud import pubsub_v1

from common.cloud import dataset_index
from common.domain import entries
from common.domain.layout import doc_id
from common.platform.events import from_notification
from common.platform.handler import Outcome, Result
from common.services import ingest
from infra.local import stack as local_stack
from infra.local.client import wait_for
from infra.local.notifications import capture, held_notifications
from infra.local.sample import synthetic_image
from tests.integration.helpers import drop, index_snapshot, stats_when

LABEL = b"0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"


def held_events(stack, dataset: str, write, expected: int) -> list:
    """Run `write()` with the ingest push stopped; the `expected` notifications of `dataset` it caused,
    decoded, in the order they were published."""
    with held_notifications(stack) as (subscriber, subscription):
        write()
        messages = capture(subscriber, subscription, expected, under=f"datasets/{dataset}/")
    messages.sort(key=lambda message: message.publish_time)
    return [from_notification(m.data, dict(m.attributes), m.message_id) for m in messages]


def results(outcomes: list) -> list[str]:
    return [o.result.value if isinstance(o, Outcome) else repr(o) for o in outcomes]


def test_an_image_and_its_label_in_one_batch_are_one_entry_and_repeats_are_duplicates(stack, api, bucket,
                                                                                          dataset):
    image = synthetic_image(41)[0]
    events = held_events(stack, dataset, lambda: drop(bucket, dataset, {"images/train/a.jpg": image,
                                                                         "labels/train/a.txt": LABEL}), 2)
    assert results(ingest.handle_batch(events + events)) == ["applied", "applied", "duplicate", "duplicate"]
    stats_when(api, dataset, {"images": 1, "labeled": 1, "boxes": 2})
    assert results(ingest.handle_batch(events[::-1] + events)) == ["duplicate"] * 4


def test_a_shuffled_batch_with_every_event_twice_equals_the_drop_in_order(stack, api, bucket, dataset):
    """One entry changed many times within one transaction: an overwrite (its old generation's delete), a
    label before its image, two images of one name and a delete."""
    reference = f"{dataset}-ref"
    first, final, twin = synthetic_image(42)[0], synthetic_image(43)[0], synthetic_image(44, fmt="PNG")[0]

    def history():
        drop(bucket, dataset, {"labels/train/a.txt": LABEL, "images/train/a.jpg": first,
                               "images/val/b.jpg": synthetic_image(45)[0]})
        drop(bucket, dataset, {"images/train/a.jpg": final, "images/train/a.png": twin})
        bucket.blob(f"datasets/{dataset}/images/val/b.jpg").delete()

    events = held_events(stack, dataset, history, 7)  # the overwrite also publishes its old generation's delete
    batch = events * 2
    random.Random(5).shuffle(batch)
    outcomes = ingest.handle_batch(batch)
    assert not [o for o in outcomes if not isinstance(o, Outcome) or o.result in (Result.FAILED, Result.RETRY)]
    drop(bucket, reference, {"labels/train/a.txt": LABEL, "images/train/a.jpg": final, "images/train/a.png": twin})
    stats_when(api, reference, {"images": 1, "labeled": 1})
    stats_when(api, dataset, {"images": 1, "labeled": 1})
    assert index_snapshot(api, dataset) == index_snapshot(api, reference)


def test_content_left_and_taken_again_within_a_batch_keeps_its_thumbnail(stack, api, bucket, dataset, capsys):
    shared, other = synthetic_image(46)[0], synthetic_image(47)[0]
    drop(bucket, dataset, {"images/train/a.jpg": shared})
    stats_when(api, dataset, {"images": 1})
    thumbnail = api.get(f"/datasets/{dataset}/images")["images"][0]["thumbnail"]
    events = held_events(stack, dataset, lambda: drop(bucket, dataset, {"images/train/a.jpg": other,
                                                                         "images/train/c.jpg": shared}), 3)
    capsys.readouterr()
    outcomes = ingest.handle_batch(events)  # a leaves the content (its last holder), c takes it again
    assert sorted(results(outcomes)) == ["applied", "applied", "stale"]  # stale: the overwrite's delete
    assert "orphaned thumbnail" not in capsys.readouterr().err  # not even tried
    assert bucket.blob(thumbnail).exists()
    stats_when(api, dataset, {"images": 2})


def test_a_change_that_raises_fails_alone_and_the_rest_of_its_batch_is_written(stack, dataset):
    dataset_index.ensure_dataset(dataset)

    def label_change(name: str, generation: int, rule=None) -> dataset_index.EntryChange:
        label = {"path": f"datasets/{dataset}/labels/train/{name}.txt", "generation": generation, "boxes": []}
        return dataset_index.EntryChange(dataset, f"train/{name}", "train", "label", generation,
                                         rule or (lambda entry: entries.set_part(entry, "label", label, [])))

    def broken(entry):  # a bug in one rule, after it changed the entry half-way
        entry["half_way"] = True
        raise KeyError("a bug in one rule")

    assert dataset_index.update_entries([label_change("b", 1)])[0].applied
    outcomes = dataset_index.update_entries([label_change("a", 1), label_change("b", 2, broken),
                                             label_change("b", 3), label_change("c", 1)])
    assert [type(outcome).__name__ for outcome in outcomes] == ["EntryUpdate", "KeyError", "EntryUpdate",
                                                                "EntryUpdate"]
    stored = {name: dataset_index.entries_of(dataset).document(doc_id(f"train/{name}")).get().to_dict()
              for name in "abc"}
    assert stored["b"]["label"]["generation"] == 3 and "half_way" not in stored["b"]
    assert stored["a"]["label"] and stored["c"]["label"]


@pytest.mark.parametrize("attributes", [{"eventType": "OBJECT_METADATA_UPDATE"}, {}])
def test_a_notification_ingest_does_not_act_on_is_acknowledged_and_counted(stack, attributes):
    before = local_stack.ingest_status(stack)["outcomes"].get("ignored", 0)
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(stack.project, local_stack.GCS_EVENTS_TOPIC)
    publisher.publish(topic, b"{}", **attributes).result()
    wait_for(lambda: local_stack.ingest_status(stack)["outcomes"].get("ignored", 0), lambda n: n > before, 30,
             "the notification counted as ignored")
