"""At-least-once, unordered delivery: every real notification of a dataset's
history (overwrites, deletes, a label before its image, two images of one name,
data.yaml last) delivered twice in a shuffled order must give the index of one
in-order drop."""
import functools
import random

from google.cloud import pubsub_v1

from infra.local import stack as local_stack
from infra.local.client import wait_for
from infra.local.notifications import capture, held_notifications
from infra.local.sample import data_yaml, sample_dataset, synthetic_image
from tests.integration.helpers import drop, handled_objects, index_snapshot, stats_when

sample = functools.cache(sample_dataset)  # built at first use, not at collection: it may fetch a wheel


# Objects first written with other content, then overwritten with the final one:
# their first generation's finalize and delete events are stale by the end.
OVERWRITTEN = {**{f"images/train/shapes_{i}.jpg": synthetic_image(900 + i)[0] for i in range(4)},
               **{f"labels/train/shapes_{i}.txt": b"0 0.5 0.5 0.1\n" for i in range(4)}}
DELETED = {"images/train/gone.jpg": synthetic_image(998)[0], "labels/train/gone.txt": b"1 0.5 0.5 0.2 0.2\n"}
# Images sharing a name (one entry): twin.png, the newer, is shown and both are named; pair.png is shown, then
# deleted, and pair.jpg shows again.
NAMESAKES = {"images/train/twin.jpg": synthetic_image(991)[0],
             "images/train/twin.png": synthetic_image(992, fmt="PNG")[0],
             "images/val/pair.jpg": synthetic_image(993)[0]}
NAMESAKE_DELETED = {"images/val/pair.png": synthetic_image(994, fmt="PNG")[0]}


def history(bucket, dataset: str) -> int:
    """Build the dataset through superseded versions (fewer classes, other
    contents, files later deleted, labels before images, data.yaml last);
    return how many notifications fake-gcs-server publishes for it."""
    files = dict(sample().files)
    final_yaml = files.pop("data.yaml")
    blob = lambda name: bucket.blob(f"datasets/{dataset}/{name}")  # noqa: E731
    early = {"data.yaml": data_yaml(["person", "bus"]).encode(), **OVERWRITTEN, **DELETED}
    for name, data in early.items():
        blob(name).upload_from_string(data)
    for name in sorted(files, key=lambda name: not name.startswith("labels/")):
        blob(name).upload_from_string(files[name])
    for name, data in {**NAMESAKES, **NAMESAKE_DELETED}.items():
        blob(name).upload_from_string(data)
    for name in {**DELETED, **NAMESAKE_DELETED}:
        blob(name).delete()
    blob("data.yaml").upload_from_string(final_yaml)
    overwrites = len(OVERWRITTEN) + 1  # each also publishes the old generation's delete
    namesakes = len(NAMESAKES) + 2 * len(NAMESAKE_DELETED)
    return len(early) + len(files) + len(DELETED) + 1 + overwrites + namesakes


def test_twice_shuffled_with_stale_generations_equals_in_order(stack, api, bucket):
    in_order, chaos = "chaos-reference", "chaos-replayed"
    with held_notifications(stack) as (subscriber, subscription):  # the ingest push stopped meanwhile
        expected = history(bucket, chaos)
        captured = capture(subscriber, subscription, expected, under=f"datasets/{chaos}/")
    assert len(captured) == expected
    assert sum(m.attributes.get("overwrittenByGeneration") is not None for m in captured) == len(OVERWRITTEN) + 1

    drop(bucket, in_order, {"data.yaml": sample().files["data.yaml"],
                            **{k: v for k, v in sample().files.items() if k != "data.yaml"}, **NAMESAKES})
    known = sample().expected
    stats_when(api, in_order, {"images": known["images"] + 2, "unlabeled": known["unlabeled"] + 2,
                               "boxes": known["boxes"]})  # twin and pair, without labels

    deliveries = captured * 2
    random.Random(11).shuffle(deliveries)
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(stack.project, local_stack.GCS_EVENTS_TOPIC)
    for message in deliveries:
        publisher.publish(topic, message.data, **dict(message.attributes)).result()
    wait_for(lambda: len(handled_objects(stack, chaos)), lambda n: n >= len(deliveries), 120,
             "every replayed delivery handled")
    assert index_snapshot(api, chaos) == index_snapshot(api, in_order)
