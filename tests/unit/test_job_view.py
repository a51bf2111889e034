"""The one job view: every kind's document as the same JOB, legacy status words mapped, progress in the kind's
unit, and which jobs may be cancelled."""
from __future__ import annotations

import pytest

from common.domain import dataset_jobs, exports, imports, job_view, request_bodies, training_job, versions

NOW = 1_000.0


def test_a_training_job_counts_epochs_and_says_which_one_it_is_at():
    queued = training_job.received_job("job-1", "r1", {"dataset": "d", "epochs": 3}, NOW, "alice")
    view = job_view.training(queued)
    assert view == {"kind": "training", "id": "job-1", "ref": "training/job-1", "dataset": "d", "status": "queued",
                    "phase": None, "progress": {"done": 0, "total": 3, "unit": "epochs"}, "error": None,
                    "requested_by": "alice", "created_at": NOW, "started_at": None, "finished_at": None,
                    "cancellable": True, "links": {"self": "/training/job-1"}}
    running = {**queued, **training_job.apply_event(queued, {"sequence": 1, "type": "started"}, NOW + 1)}
    running.update(training_job.apply_event(running, {"sequence": 2, "type": "epoch", "epoch": 2, "epochs": 3},
                                            NOW + 2))
    view = job_view.training(running)
    assert (view["status"], view["phase"], view["progress"]["done"], view["started_at"]) == \
        ("running", "epoch 2/3", 2, NOW + 1)


def test_a_training_job_between_two_executions_says_it_continues_and_an_ended_one_cannot_be_cancelled():
    job = {**training_job.received_job("job-2", "r", {"dataset": "d", "epochs": 9}, NOW), "status": "running",
           "epoch": 4, "continuation": {"run": 0, "after_epoch": 4}}
    assert job_view.training(job)["phase"] == "continuing after epoch 4"
    assert job_view.training({**job, "cancel_requested": True})["phase"] == "cancel requested"
    failed = training_job.failed_job("job-3", "r", "d", {}, "the model is not one you may use", NOW)
    view = job_view.training(failed)
    assert (view["status"], view["error"], view["cancellable"], view["finished_at"]) == \
        ("failed", "the model is not one you may use", False, NOW)


def test_an_import_sums_its_tasks_members_as_its_own_view_does():
    document = {**imports.new_import("import-1", "d", "https://x/a.zip", "zip", None, "bob", NOW),
                "status": imports.RUNNING, "tasks": 2}
    tasks = [{**imports.task_document(0, 1, 10, 100), "members_done": 4},
             {**imports.task_document(1, 1, 6, 60), "members_done": 6}]
    view = job_view.import_(document, tasks)
    assert view["progress"] == {"done": 10, "total": 16, "unit": "members"}
    assert (view["status"], view["phase"], view["cancellable"], view["links"]) == \
        ("running", "unpacking", True, {"self": "/imports/import-1"})


@pytest.mark.parametrize("stored, status, phase", [("staging", "running", "staging"), ("staged", "running", "staged"),
                                                    ("queued", "queued", None), ("cancelled", "cancelled", None)])
def test_an_older_deployments_import_words_read_as_the_kernels_with_the_old_word_as_phase(stored, status, phase):
    document = {**imports.new_import("import-2", "d", "https://x/a.zip", "zip", None, None, NOW), "status": stored}
    view = job_view.import_(document, [])
    assert (view["status"], view["phase"], view["progress"]["total"]) == (status, phase, None)


def test_a_newer_import_keeps_its_own_phase():
    document = {**imports.new_import("import-3", "d", "https://x/a.zip", "zip", None, None, NOW),
                "status": "running", "phase": "staging"}
    assert (job_view.import_(document, [])["status"], job_view.import_(document, [])["phase"]) == \
        ("running", "staging")


def test_an_export_counts_its_files():
    request = request_bodies.ExportRequest(format="yolo", version="v1")
    document = {**exports.new_document("export-1", "d", request, "carol", NOW), "status": "running",
                "files_total": 20, "files_done": 7, "started_at": NOW + 1}
    view = job_view.export(document)
    assert (view["progress"], view["cancellable"], view["links"]["self"]) == \
        ({"done": 7, "total": 20, "unit": "files"}, True, "/exports/export-1")


@pytest.mark.parametrize("stored, status, phase, done", [("queued", "queued", None, 0),
                                                          ("freezing", "running", "freezing", 0),
                                                          ("ready", "completed", "ready", 12),
                                                          ("failed", "failed", None, 0)])
def test_a_version_maps_freezing_and_ready_and_counts_its_images_once_frozen(stored, status, phase, done):
    document = {**versions.new_document("d", 3, {"name": None, "note": None}, "dan", NOW), "status": stored}
    if stored == "ready":
        document.update(stats={"images": 12}, frozen_at=NOW + 5)
    view = job_view.version(document)
    assert (view["id"], view["ref"], view["status"], view["phase"], view["progress"]["done"]) == \
        ("d:v3", "version/d:v3", status, phase, done)
    assert view["cancellable"] is False and view["links"]["self"] == "/datasets/d/versions/v3"
    assert view["finished_at"] == (NOW + 5 if stored == "ready" else None)


def test_a_versions_job_id_names_its_dataset_and_version():
    assert job_view.version_of(job_view.version_job_id("my-data", "v12")) == ("my-data", "v12")
    assert job_view.version_of("my-data") is None and job_view.version_of("a:b:v1") is None


@pytest.mark.parametrize("kind, unit, link", [
    ("revalidate", "files", "/datasets/d/jobs/j"), ("remap", "files", "/datasets/d/jobs/j"),
    ("resplit", "files", "/datasets/d/jobs/j"), ("autolabel", "images", "/autolabel/j"),
    ("accept", "images", "/autolabel/j")])
def test_a_dataset_job_counts_the_files_its_chunks_did(kind, unit, link):
    document = {**dataset_jobs.new_job("j", "d", kind, NOW, "erin"), "status": "running", "files_total": 40}
    view = job_view.dataset_job(document, 25)
    assert (view["kind"], view["ref"], view["progress"], view["links"]["self"]) == \
        (kind, f"{kind}/j", {"done": 25, "total": 40, "unit": unit}, link)


@pytest.mark.parametrize("kind, queued, running", [("remap", True, False), ("autolabel", True, True),
                                                   ("accept", True, True), ("revalidate", False, False),
                                                   ("resplit", False, False)])
def test_which_dataset_jobs_may_be_cancelled(kind, queued, running):
    document = dataset_jobs.new_job("j", "d", kind, NOW, None)
    assert job_view.dataset_job(document, 0)["cancellable"] is queued
    assert job_view.dataset_job({**document, "status": "running"}, 0)["cancellable"] is running
    assert job_view.dataset_job({**document, "status": "completed"}, 0)["cancellable"] is False


def test_an_unknown_status_word_reads_as_failed_never_as_a_job_that_may_still_end():
    assert job_view.kernel_status("exploded") == "failed" and job_view.kernel_status(None) == "failed"


def test_a_list_filters_by_the_kernels_words_and_the_kinds_legacy_ones():
    assert job_view.stored_statuses("import", True) == ["queued", "running", "staging", "staged"]
    assert job_view.stored_statuses("version", False) == ["completed", "failed", "cancelled", "ready"]
    assert job_view.stored_statuses("export", True) == ["queued", "running"]


def test_several_kinds_lists_merge_newest_first_and_keep_the_limit():
    found = [("export", {"created_at": 3.0}), ("import", {"created_at": 5.0}), ("training", {"created_at": None}),
             ("remap", {"created_at": 4.0})]
    newest = job_view.newest_first(found, 3, created_at=lambda pair: pair[1]["created_at"])
    assert [kind for kind, _ in newest] == ["import", "remap", "export"]
