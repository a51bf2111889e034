"""An index rebuilt from the bucket on the local stack: a reindex after the dataset's index was deleted from the
Firestore emulator, and the scheduled reconciliation after files were dropped while ingest was stopped and its
notifications purged. Both must give the index of the same files dropped in order."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from click.testing import CliRunner
from google.cloud import pubsub_v1

from common.cloud import bucket_listing, dataset_index, db, reconciliation_store
from common.domain import layout
from common.domain.messages import Sweep
from common.platform import config
from common.services import reconcile
from common.services.reconcile import REPAIRED
from infra.local.client import wait_for
from infra.local.notifications import capture, held_notifications
from infra.local.sample import generated_dataset, synthetic_image
from tests.integration.helpers import DEADLINE, dataset_when, drop, handled_objects, index_snapshot
from yolodrop_cli.commands import cli

# Every kind of file ingest indexes: images and labels, two images of one name, an image that is not one, a label
# with a class out of range, a file it does not recognise, and data.yaml.
FILES = {**generated_dataset(10, 4, size=(96, 72), seed=7),
         "images/train/twin.jpg": synthetic_image(991, size=(96, 72))[0],
         "images/train/twin.png": synthetic_image(992, size=(96, 72), fmt="PNG")[0],
         "images/train/broken.jpg": b"this is text, not a JPEG",
         "labels/train/stray.txt": b"7 0.5 0.5 0.1 0.1\n",
         "notes/readme.md": b"from another tool"}
EARLY = {name: data for name, data in FILES.items() if name == "data.yaml" or "g0000" in name}
LATE = {name: data for name, data in FILES.items() if name not in EARLY}
OVERWRITTEN = "labels/train/g00001.txt"  # dropped first with other boxes, its final content while ingest was down
GONE = {"images/train/gone.jpg": synthetic_image(993, size=(96, 72))[0]}  # indexed, then deleted while it was down


@pytest.fixture(scope="module")
def run(stack, tmp_path_factory):
    env = stack.env()

    def run(*args: str):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False,
                                  env={"YOLODROP_API_URL": env["API_URL"], "YOLODROP_API_KEY": stack.token,
                                       "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("config"))})
    return run


def dropped_in_order(stack, api, bucket, dataset: str) -> dict:
    """FILES dropped data.yaml first and indexed: the index every rebuilt one must equal."""
    drop(bucket, dataset, {"data.yaml": FILES["data.yaml"], **FILES})
    return settled(stack, api, dataset, len(FILES))


def settled(stack, api, dataset: str, objects: int) -> dict:
    """The dataset's index once ingest handled `objects` of its objects and no job of it is left."""
    wait_for(lambda: len(set(handled_objects(stack, dataset))), lambda handled: handled >= objects, DEADLINE,
             f"{dataset}: {objects} objects handled")
    dataset_when(api, dataset, lambda view: True, "no job left")
    return index_snapshot(api, dataset)


def test_a_deleted_index_rebuilt_by_reindex_equals_the_in_order_drop(stack, api, bucket, dataset, run):
    expected = dropped_in_order(stack, api, bucket, f"{dataset}-ref")
    drop(bucket, dataset, FILES)
    assert settled(stack, api, dataset, len(FILES)) == expected
    db.client().recursive_delete(dataset_index.dataset_ref(dataset))  # the index lost: entries, files, contents
    assert api.get_or_none(f"/datasets/{dataset}") is None

    answer = run("reindex", dataset)
    assert answer.exit_code == 0, answer.output
    assert "reindex/" in answer.output and "completed" in answer.output
    dataset_when(api, dataset, lambda view: True, "reindexed")
    assert index_snapshot(api, dataset) == expected

    again = run("reindex", dataset, "--json")  # the index is whole: every object is found indexed already
    assert again.exit_code == 0, again.output
    (ref,) = _refs(again.output)
    second = api.get(f"/datasets/{dataset}/jobs/{ref.rsplit('/', 1)[1]}")
    assert (second["status"], second["indexed"], second["removed"]) == ("completed", 0, 0)
    assert second["unchanged"] == len(FILES) - 1  # data.yaml is applied by the plan, before any chunk
    assert index_snapshot(api, dataset) == expected


def _refs(output: str) -> list[str]:
    return sorted({word.strip('",') for word in output.split() if word.strip('",').startswith("reindex/")})


def test_files_dropped_while_ingest_was_down_and_purged_are_repaired_by_the_reconciliation(stack, api, bucket,
                                                                                         dataset):
    expected = dropped_in_order(stack, api, bucket, f"{dataset}-ref")
    drop(bucket, dataset, {**EARLY, OVERWRITTEN: b"0 0.2 0.2 0.1 0.1\n", **GONE})
    settled(stack, api, dataset, len(EARLY) + len(GONE))

    with held_notifications(stack) as (subscriber, subscription):  # ingest stopped; its messages purged below
        drop(bucket, dataset, {**LATE, OVERWRITTEN: FILES[OVERWRITTEN]})
        for name in GONE:
            bucket.blob(f"datasets/{dataset}/{name}").delete()
        lost = len(LATE) + 1 + 1 + len(GONE)  # the overwrite also says its old generation is gone
        assert len(capture(subscriber, subscription, lost, under=f"datasets/{dataset}/")) == lost
    assert index_snapshot(api, dataset) != expected

    (repaired,) = reconciled(stack, dataset)
    assert {key: repaired[key] for key in ("added", "updated", "removed")} == \
        {"added": len(LATE), "updated": 1, "removed": len(GONE)}
    dataset_when(api, dataset, lambda view: True, "repaired")
    assert index_snapshot(api, dataset) == expected

    assert reconciled(stack, dataset) == []  # nothing left to repair: no line for it


def watch_lines(stack) -> list[dict]:
    lines = (stack.state_dir / "watch.log").read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def ended(line: dict) -> bool:
    """A watch line that ends a reconciliation run: its outcome, or its failure."""
    return line.get("message", "").startswith("reconciled ") or (
        line.get("outcome") == "failed" and "reconcile" in line.get("stack_trace", ""))


def reconciled(stack, dataset: str) -> list[dict]:
    """Ask the watch for one reconciliation run (the scheduler's tick, reconcile: true) and wait for its outcome:
    the lines it logged for what it repaired in `dataset`."""
    reconciliation_store.stopped_after(dataset[:-1], 0.0)  # the run starts at `dataset`, whatever precedes it
    before = len(watch_lines(stack))
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(stack.project, config.WATCH_TOPIC)
    publisher.publish(topic, Sweep(sweep=True, reconcile=True).wire()).result()
    new = wait_for(lambda: watch_lines(stack)[before:], lambda lines: any(map(ended, lines)), 300,
                   "a reconciliation run")
    failed = [line for line in new if line.get("outcome") == "failed"]
    assert not failed, failed[0].get("stack_trace")
    return [line for line in new if line.get("message") == REPAIRED and line.get("dataset") == dataset]


def test_the_administrator_reindexes_every_dataset_folder_a_page_at_a_time(stack, api, bucket, run):
    run_id = uuid.uuid4().hex[:8]
    names = [f"zzzz-{run_id}-{letter}" for letter in "abc"]  # after every other test's dataset
    for name in names:  # folders of the bucket: their index, and any owner, may be missing
        drop(bucket, name, {"notes/readme.md": b"x"})
    assert bucket_listing.datasets(f"zzzz-{run_id}", limit=2) == names[:2]
    assert bucket_listing.datasets(names[1], limit=2) == names[2:]

    answer = api.session.post(f"{api.url}/reindex", json={"after": f"zzzz-{run_id}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    started = answer.json()
    assert [job["dataset"] for job in started["jobs"]] == names and started["next"] is None
    for job in started["jobs"]:
        wait_for(lambda: api.get(f"/jobs/{job['ref']}"), lambda view: view["status"] == "completed", DEADLINE,
                 f"{job['ref']} completed")
    assert all(api.get(f"/datasets/{name}")["stats"]["images"] == 0 for name in names)

    followed = run("reindex", "--all", "--after", names[0])  # the command line: exit 0 once every job completed
    assert followed.exit_code == 0, followed.output
    assert all(name in followed.output for name in names[1:]) and names[0] not in followed.output, followed.output


def test_a_bounded_run_repairs_part_and_the_next_runs_go_on_where_it_stopped(stack, api, bucket, monkeypatch):
    run = uuid.uuid4().hex[:8]
    first, second, emptied = (f"zzzz-{run}-{letter}" for letter in "abc")  # after every other test's dataset
    notes = {f"notes/{n}.md": b"x" for n in range(3)}
    drop(bucket, emptied, {"notes/0.md": b"x"})
    wait_for(lambda: dataset_index.is_present_file(emptied, f"datasets/{emptied}/notes/0.md"), bool, DEADLINE,
             f"{emptied} indexed")
    with held_notifications(stack) as (subscriber, subscription):  # their events purged: never indexed
        for name in (first, second):
            drop(bucket, name, notes)
        bucket.blob(f"datasets/{emptied}/notes/0.md").delete()  # its folder gone with it: the index still knows it
        capture(subscriber, subscription, 2 * len(notes) + 1, under=f"datasets/zzzz-{run}-")
    monkeypatch.setenv("RECONCILE_REPAIRS_PER_RUN", "2")
    reconciliation_store.stopped_after(f"zzzz-{run}", 0.0)  # as if the last run stopped just before them

    def repaired() -> dict:
        outcome = reconcile.run()
        return {name: (counts["added"], counts["removed"]) for name, counts in outcome.fields["repaired"].items()}

    assert repaired() == {first: (2, 0)}  # the budget spent in the first dataset: the next run compares it again
    assert reconciliation_store.resume_after() == f"zzzz-{run}"
    assert repaired() == {first: (1, 0), second: (1, 0)}
    assert reconciliation_store.resume_after() == first
    assert repaired() == {second: (2, 0)}
    assert repaired() == {emptied: (0, 1)}
    assert reconciliation_store.resume_after() is None  # the end of the bucket: the next run starts over
    assert all(dataset_index.is_present_file(name, f"datasets/{name}/{path}") for name in (first, second)
               for path in notes)
    assert not dataset_index.is_present_file(emptied, f"datasets/{emptied}/notes/0.md")


def test_the_reconciliation_removes_the_thumbnails_no_entry_names(stack, api, bucket, dataset, monkeypatch):
    """A thumbnail left behind (a removal that failed, an instance killed between writing it and its entry) goes;
    the thumbnail of an indexed image stays."""
    drop(bucket, dataset, {"images/train/kept.jpg": synthetic_image(994, size=(96, 72))[0]})
    settled(stack, api, dataset, 1)
    thumbnails = layout.thumbnails_prefix(dataset)
    (kept,) = [blob.name for blob in bucket.list_blobs(prefix=thumbnails)]
    bucket.blob(layout.thumbnail_path(dataset, "0" * 64)).upload_from_string(b"stray", content_type="image/jpeg")
    monkeypatch.setenv("RECONCILE_GRACE_SECONDS", "0")
    counts, finished = reconcile.reconcile(dataset, time.time(), reconcile.Budget(objects=10_000, repairs=100))
    assert counts == {"added": 0, "updated": 0, "removed": 0} and finished
    assert [blob.name for blob in bucket.list_blobs(prefix=thumbnails)] == [kept]
