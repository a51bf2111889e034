"""The job kernel's pure rules (common.domain.jobs): ids, when to publish, and the watch's rule."""
from __future__ import annotations

from common.domain import jobs

GRACE = 600.0


def job(**fields) -> dict:
    return {**jobs.new_job("remap-x", "remap", 1000.0, "uid"), **fields}


def test_the_same_request_names_the_same_job_and_another_request_another():
    assert jobs.job_id("remap", "d", 3, ["a"]) == jobs.job_id("remap", "d", 3, ["a"])
    assert jobs.job_id("remap", "d", 3, ["a"]) != jobs.job_id("remap", "d", 4, ["a"])
    assert jobs.job_id("remap", "d", 3).startswith("remap-")


def test_the_first_step_is_asked_for_while_the_job_waits_unplanned_only():
    assert jobs.may_publish_start(job())
    assert not jobs.may_publish_start(job(planned=True, status=jobs.RUNNING))
    assert not jobs.may_publish_start(job(status=jobs.COMPLETED))


def test_a_job_not_planned_yet_has_no_unit_done_whatever_a_unit_says():
    assert not jobs.all_units_done(job(), 5)
    assert not jobs.all_units_done(job(planned=True, units_total=3), 2)
    assert jobs.all_units_done(job(planned=True, units_total=3), 3)
    assert jobs.all_units_done(job(planned=True, units_total=0), 0)


def test_the_watch_leaves_a_job_that_moved_within_the_grace_alone():
    assert jobs.watch_action(job(), 0, 1000.0, 1000.0 + GRACE - 1, GRACE) is None
    running = job(planned=True, status=jobs.RUNNING, units_total=4)
    assert jobs.watch_action(running, 1, 5000.0, 5000.0 + GRACE - 1, GRACE) is None


def test_the_watch_asks_again_for_a_queued_job_and_for_the_undone_units_of_a_running_one():
    assert jobs.watch_action(job(), 0, 0.0, 1000.0 + GRACE, GRACE) == jobs.Stalled("start")
    running = job(planned=True, status=jobs.RUNNING, units_total=4)
    assert jobs.watch_action(running, 1, 1000.0, 1000.0 + GRACE, GRACE) == jobs.Stalled("units")


def test_the_watch_ends_a_job_whose_units_are_all_done_at_once():
    done = job(planned=True, status=jobs.RUNNING, units_total=4)
    assert jobs.watch_action(done, 4, 5000.0, 5000.0, GRACE) == jobs.Stalled("end")


def test_the_watch_fails_a_job_that_made_no_progress_after_being_asked_again_and_counts_afresh_after_progress():
    stuck = job(planned=True, status=jobs.RUNNING, units_total=4, republishes=jobs.MAX_REPUBLISHES,
                stalled_at_progress=1, republished_at=2000.0)
    failed = jobs.watch_action(stuck, 1, 1000.0, 2000.0 + GRACE, GRACE)
    assert failed.action == "fail" and "it is at 1" in failed.reason and "dead-letter" in failed.reason
    assert jobs.watch_action(stuck, 2, 1000.0, 2000.0 + GRACE, GRACE) == jobs.Stalled("units")
    assert jobs.republishes_without_progress(stuck, 2) == 0


def test_final_jobs_are_never_touched():
    for status in jobs.FINAL:
        assert jobs.watch_action(job(status=status), 0, 0.0, 10 ** 9, GRACE) is None


def test_a_status_word_an_older_deployment_stored_reads_as_the_kernels_with_the_old_word_as_phase():
    assert jobs.state_of({"status": "staging"}) == (jobs.RUNNING, "staging")
    assert jobs.state_of({"status": "staged", "phase": None}) == (jobs.RUNNING, "staged")
    assert jobs.state_of({"status": "freezing"}) == (jobs.RUNNING, "freezing")
    assert jobs.state_of({"status": "ready"}) == (jobs.COMPLETED, "ready")
    for word in jobs.LEGACY_STATUSES.values():
        assert word in jobs.STATES
    assert jobs.state_of({"status": jobs.RUNNING, "phase": "unpacking"}) == (jobs.RUNNING, "unpacking")
    assert jobs.state_of({"status": jobs.QUEUED}) == (jobs.QUEUED, None)
