"""The job kernel's pure rules (common.domain.jobs): ids, when to publish, the watch's rule, and cancelling."""
from __future__ import annotations

import pytest

from common.domain import dataset_jobs, exports, jobs, training_job

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


# ---- cancel ------------------------------------------------------------------------------------------------------

def test_a_kind_is_cancelled_in_the_states_its_rule_names_and_refused_elsewhere_with_its_reason():
    only_queued = jobs.Cancel((jobs.QUEUED,), "wait for it to end")
    assert jobs.cancel_refusal(jobs.QUEUED, only_queued) is None and jobs.may_cancel(jobs.QUEUED, only_queued)
    assert jobs.cancel_refusal(jobs.RUNNING, only_queued) == "wait for it to end"
    assert not jobs.may_cancel(jobs.RUNNING, only_queued)
    assert jobs.cancel_refusal(jobs.RUNNING, jobs.Cancel()) == jobs.Cancel().refusal  # the default: never


def test_an_ended_job_cannot_be_cancelled_and_a_cancelled_one_is_cancelled_again_without_error():
    any_time = jobs.Cancel(jobs.ACTIVE)
    for status in (jobs.COMPLETED, jobs.FAILED):
        assert jobs.cancel_refusal(status, any_time) == f"the job has ended ({status}): nothing to cancel"
        assert not jobs.may_cancel(status, any_time)
    assert jobs.cancel_refusal(jobs.CANCELLED, jobs.Cancel()) is None  # a retried cancel gets the cancelled job
    assert not jobs.may_cancel(jobs.CANCELLED, any_time)
    assert jobs.cancelled("erin", 5.0) == {"status": jobs.CANCELLED, "finished_at": 5.0, "cancelled_by": "erin"}


def test_the_watch_leaves_a_cancelled_job_alone():
    assert jobs.watch_action(job(status=jobs.CANCELLED, planned=True, units_total=4), 1, 0.0, 10 ** 9, GRACE) is None


@pytest.mark.parametrize("kind, queued, running", [
    (dataset_jobs.AUTOLABEL, True, True), (dataset_jobs.ACCEPT, True, True), (dataset_jobs.REMAP, True, False),
    (dataset_jobs.REVALIDATE, False, False), (dataset_jobs.RESPLIT, False, False)])
def test_which_dataset_jobs_may_be_cancelled_and_when(kind, queued, running):
    document = dataset_jobs.new_job("j", "d", kind, 1.0, None)
    assert dataset_jobs.cancellable(document) is queued
    assert dataset_jobs.cancellable({**document, "status": jobs.RUNNING}) is running
    assert dataset_jobs.cancellable({**document, "status": jobs.CANCELLED}) is False


def test_a_running_remap_is_refused_saying_why_and_to_remap_back_and_system_work_says_it_ends_by_itself():
    refusal = jobs.cancel_refusal(jobs.RUNNING, dataset_jobs.CANCEL[dataset_jobs.REMAP])
    assert "two class lists" in refusal and "remap back" in refusal
    for kind in (dataset_jobs.REVALIDATE, dataset_jobs.RESPLIT):
        assert "ends by itself" in jobs.cancel_refusal(jobs.QUEUED, dataset_jobs.CANCEL[kind])


def test_every_dataset_job_kind_has_a_cancel_rule_and_an_export_may_be_cancelled_until_it_ends():
    assert set(dataset_jobs.CANCEL) == set(dataset_jobs.KINDS)
    assert [jobs.may_cancel(status, exports.CANCEL) for status in jobs.STATES] == [True, True, False, False, False]
    assert exports.CANCELLED in exports.STATUSES



# ---- one claim ---------------------------------------------------------------------------------------------------

LEASE = jobs.Lease(60.0, at="heartbeat", holder="claimed_by")


def test_a_lease_is_held_by_another_until_it_runs_out_and_never_by_its_own_holder():
    taken = jobs.lease_taken(LEASE, "delivery-a", 1000.0)
    assert taken == {"heartbeat": 1000.0, "claimed_by": "delivery-a"}
    assert jobs.held_by_other(taken, LEASE, "delivery-b", 1059.0)
    assert not jobs.held_by_other(taken, LEASE, "delivery-b", 1060.0)  # ran out: it may be taken over
    assert not jobs.held_by_other(taken, LEASE, "delivery-a", 1001.0)  # its holder's claim, retried
    assert not jobs.held_by_other({}, LEASE, "delivery-a", 1000.0)     # never taken (or a new document)


def test_a_heartbeat_keeps_the_lease_running_and_a_release_lets_it_go_at_once():
    document = {**jobs.lease_taken(LEASE, "delivery-a", 1000.0), **jobs.lease_renewed(LEASE, 1050.0)}
    assert jobs.held_by_other(document, LEASE, "delivery-b", 1100.0) and jobs.lease_runs(document, LEASE, 1100.0)
    released = {**document, **jobs.lease_released(LEASE)}
    assert not jobs.held_by_other(released, LEASE, "delivery-b", 1051.0)
    assert not jobs.lease_runs(released, LEASE, 1051.0)


def test_only_the_holder_may_renew_or_release_and_not_once_released_or_taken_over():
    document = jobs.lease_taken(LEASE, "delivery-a", 1000.0)
    assert jobs.holds(document, LEASE, "delivery-a") and not jobs.holds(document, LEASE, "delivery-b")
    assert jobs.holds(document, LEASE, "delivery-a")  # run out but not taken over: still its to renew
    assert not jobs.holds({**document, **jobs.lease_taken(LEASE, "delivery-b", 1070.0)}, LEASE, "delivery-a")
    assert not jobs.holds({**document, **jobs.lease_released(LEASE)}, LEASE, "delivery-a")


def test_a_document_an_older_deployment_claimed_reads_by_its_stored_fields():
    # an export claimed with only its heartbeat: held by its time alone, renewable by whoever works on it
    assert jobs.held_by_other({"heartbeat": 1000.0}, LEASE, "delivery-b", 1030.0)
    assert not jobs.held_by_other({"heartbeat": 1000.0}, LEASE, "delivery-b", 1060.0)
    assert jobs.holds({"heartbeat": 1000.0}, jobs.Lease(60.0, at="heartbeat"), "delivery-b")  # no holder field
    # a nested claim (a training continuation's) by its dotted path
    nested = jobs.Lease(120.0, at="continuation.claimed_at", holder="continuation.claimed_by")
    continuation = {"continuation": {"run": 1, "claimed_at": 1000.0, "claimed_by": "m1"}}
    assert jobs.held_by_other(continuation, nested, "m2", 1100.0)
    assert not jobs.held_by_other(continuation, nested, "m2", 1120.0)
    assert jobs.stored({"continuation": None}, nested.at) is None


def test_each_kind_keeps_the_claim_fields_its_older_documents_hold():
    assert (training_job.CLAIM_LEASE.at, training_job.CLAIM_LEASE.holder) == ("claimed_at", "claimed_by")
    assert training_job.CONTINUATION_LEASE.at == "continuation.claimed_at"
    assert exports.lease(60.0).at == "heartbeat"
    assert jobs.PLAN_LEASE.seconds == jobs.PLAN_LEASE_SECONDS
