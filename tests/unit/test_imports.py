"""The pure rules of imports: where a source may be read, the share of each task, a task's end, the view
(the request's shape: tests/unit/test_request_bodies.py)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.domain import imports
from common.domain.imports import InvalidImportRequest


@pytest.mark.parametrize("name, allowed", [
    ("imports/d.zip", True), ("imports/d.tar.gz", True), ("imports/d.tgz", True), ("imports/d/part-1.zip", True),
    ("imports/d.ZIP", True), ("imports/other.zip", False), ("datasets/other/images/a.jpg", False),
    ("imports/d-other.zip", False), ("derived/exports/x/d-v1-yolo.zip", False),
    ("imports/d.tar.zip", False),  # dataset d.tar's drop, not d's
    ("imports/d.pt", False), ("imports/d.zip.tar.gz", False), ("imports/d", False),
])
def test_in_the_data_bucket_an_import_reads_only_what_was_put_there_for_its_dataset(name, allowed):
    check = lambda: imports.check_bucket_source("data", name, "data", "d")  # noqa: E731
    if allowed:
        check()
    else:
        with pytest.raises(InvalidImportRequest, match="imports/d.zip"):
            check()


def test_a_dataset_named_like_an_extension_reads_its_own_drop():
    imports.check_bucket_source("data", "imports/d.tar.zip", "data", "d.tar")
    imports.check_bucket_source("data", "imports/d.tar/part.zip", "data", "d.tar")
    with pytest.raises(InvalidImportRequest):
        imports.check_bucket_source("data", "imports/d.tar/part.zip", "data", "d")


def test_another_bucket_is_read_only_when_the_operator_allowed_it():
    with pytest.raises(InvalidImportRequest, match="signed URL .*gcloud storage sign-url gs://someone-elses/a.zip"):
        imports.check_bucket_source("someone-elses", "a.zip", "data", "d")
    imports.check_bucket_source("shared-archives", "any/a.zip", "data", "d", frozenset({"shared-archives"}))


def test_a_dropped_archive_generation_has_one_import():
    first = imports.drop_import_id("imports/d.zip", 7)
    assert first == imports.drop_import_id("imports/d.zip", 7) != imports.drop_import_id("imports/d.zip", 8)
    assert first.startswith("import-") and len(first) == len("import-") + 16


def test_members_are_shared_in_contiguous_runs_of_about_equal_work():
    unit = imports.MEMBER_COST_BYTES
    sizes = [0, 0, 0, 0, 4 * unit, 0, 0]  # six tiny files and one large: the large weighs as five tiny ones
    members = list("abcdefg")
    shares = [imports.share(members, sizes, index, 3) for index in range(3)]
    assert shares == [["a", "b", "c", "d"], ["e"], ["f", "g"]]  # 4, 5 and 2 units: a run starts where its first falls


def test_many_small_members_after_the_large_ones_are_not_all_left_to_the_last_task():
    sizes = [100_000] * 100 + [60] * 100  # images first, then their labels, as many tools write zips
    shares = [imports.share(list(range(200)), sizes, index, 4) for index in range(4)]
    assert [len(share) for share in shares] == [46, 46, 54, 54]  # by bytes alone: 25, 25, 25, 125


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=60), st.integers(min_value=1, max_value=9))
def test_every_member_goes_to_exactly_one_task_in_order(sizes, count):
    members = list(range(len(sizes)))
    shares = [imports.share(members, sizes, index, count) for index in range(count)]
    assert [member for share in shares for member in share] == members


def test_the_last_task_to_end_completes_the_import_and_a_failure_ends_it_at_once():
    document = {**imports.new_import("i", "d", "https://x/a.zip", "zip", None, None, 0.0), "status": imports.RUNNING,
                "tasks": 2}
    first = imports.after_task(document, 1, None)
    assert first == {"tasks_finished": [1]}
    again = imports.after_task({**document, **first}, 1, None)  # a task that ends twice counts once
    assert again == {"tasks_finished": [1]}
    assert imports.after_task({**document, **first}, 0, None) == {"tasks_finished": [0, 1],
                                                                  "status": imports.COMPLETED}
    assert imports.after_task(document, 0, "the server lied") == {"status": imports.FAILED, "error": "the server lied"}
    assert imports.after_task({**document, "status": imports.CANCELLED}, 0, None) == {}


def test_the_view_sums_the_tasks_counts():
    document = {**imports.new_import("i", "d", "https://x/a.zip", "zip", None, "me", 1.0), "status": imports.RUNNING,
                "tasks": 2, "members_total": 10, "bytes_total": 1000}
    tasks = [{"members_total": 6, "bytes_total": 600, "members_done": 4, "bytes_done": 400, "skipped": 1},
             {"members_total": 4, "bytes_total": 400, "members_done": 1, "bytes_done": 100, "skipped": 0}]
    view = imports.view(document, tasks)
    assert (view["members_done"], view["bytes_done"], view["skipped"]) == (5, 500, 1)
    assert (view["members_total"], view["bytes_total"]) == (10, 1000)
    before_the_plan = imports.view({**document, "members_total": None, "bytes_total": None}, tasks)
    assert (before_the_plan["members_total"], before_the_plan["bytes_total"]) == (10, 1000)
    queued = imports.view(imports.new_import("i", "d", "https://x/a.zip", "zip", None, None, 1.0), [])
    assert (queued["members_total"], queued["members_done"]) == (None, 0)


def test_an_archive_with_countless_bad_members_keeps_the_first_issues_and_counts_them_all():
    kept, total = imports.limited_issues([{"code": "x"}] * 1000)
    assert (len(kept), total) == (imports.MAX_ISSUES_KEPT, 1000)


def test_an_import_fails_only_when_its_execution_ended_and_the_grace_passed():
    document = {**imports.new_import("i", "d", "https://x/a.zip", "zip", None, None, 0.0), "status": imports.RUNNING,
                "tasks": 2, "execution": "e", "tasks_finished": [1]}
    ended = lambda doc, running=False, ended_at=None, activity=100.0, now=200.0: imports.execution_ended(  # noqa: E731
        doc, running, ended_at, "out of retries", activity, now, grace=60)
    assert ended(document, running=True) is None
    assert ended(document, activity=150.0) is None            # a sign of life less than the grace ago
    assert ended(document, ended_at=190.0) is None             # the platform's end time counts too
    assert ended({**document, "execution": None}) is None      # a phase being launched
    assert ended({**document, "status": imports.COMPLETED}) is None
    failed = ended(document)
    assert failed["status"] == imports.FAILED and failed["finished_at"] == 200.0
    assert "ended with 1 of 2 tasks done (out of retries)" in failed["error"]
    assert "yolodrop import d https://x/a.zip" in failed["error"]


def test_an_older_deployments_staging_or_staged_import_reads_as_running_at_that_phase():
    stored = {**imports.new_import("i", "d", "https://x/a.zip", "zip", None, None, 0.0), "tasks": 1}
    assert imports.state({**stored, "status": "staging"}) == (imports.RUNNING, imports.STAGING)
    assert imports.state({**stored, "status": "staged"}) == (imports.RUNNING, imports.STAGED)
    assert imports.state({**stored, "status": imports.RUNNING}) == (imports.RUNNING, imports.UNPACKING)  # no phase
    assert imports.state(stored) == (imports.QUEUED, None)
    assert imports.view({**stored, "status": "staged"}, [])["status"] == imports.RUNNING
    assert imports.view({**stored, "status": "staged"}, [])["phase"] == imports.STAGED
    assert set(imports.STATUSES) == {"queued", "running", "completed", "failed", "cancelled"}
    assert all(word in imports.STORED_ACTIVE for word in ("staging", "staged"))  # the watch still finds them


def test_an_import_waits_on_an_execution_while_staging_or_unpacking_and_on_a_message_once_staged():
    stored = {**imports.new_import("i", "d", "https://x/a.zip", "zip", None, None, 0.0), "tasks": 1, "execution": "e"}
    running = {**stored, "status": imports.RUNNING}
    assert [imports.step({**running, "phase": phase}) for phase in imports.PHASES] == list(imports.PHASES)
    assert imports.step(stored) == imports.QUEUED and imports.step({**stored, "status": "staged"}) == imports.STAGED
    assert imports.waits_on_execution({**running, "phase": imports.STAGING})
    assert imports.waits_on_execution({**running, "phase": imports.UNPACKING})
    assert imports.waits_on_execution({**stored, "status": "staging"})  # an older deployment's
    assert not imports.waits_on_execution({**running, "phase": imports.STAGED})
    assert not imports.waits_on_execution({**stored, "status": "staged"})
    assert not imports.waits_on_execution(stored)
    legacy_staging = imports.execution_ended({**stored, "status": "staging"}, False, None, "", 0.0, 100.0, 60)
    assert legacy_staging["status"] == imports.FAILED
    staged = {**running, "phase": imports.STAGED}
    assert imports.execution_ended(staged, False, None, "", 0.0, 100.0, 60) is None  # its stage execution is done


def test_the_operator_lists_the_other_buckets_by_spaces_or_commas(monkeypatch):
    from common.platform import config
    monkeypatch.setenv("DATA_BUCKET", "data")
    monkeypatch.delenv("IMPORT_BUCKETS", raising=False)
    assert config.import_buckets() == {"data"}
    monkeypatch.setenv("IMPORT_BUCKETS", "shared-a, shared-b shared-c,")
    assert config.import_buckets() == {"data", "shared-a", "shared-b", "shared-c"}
