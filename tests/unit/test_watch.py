"""The watch's rule: a job whose execution ended without a final event becomes failed."""
from __future__ import annotations

from common.domain import training_job
from common.domain.training_job import ExecutionState, apply_event, execution_ended, sequence

EXECUTION = "projects/p/locations/us-central1/jobs/yolodrop-trainer/executions/yolodrop-trainer-abc"
GRACE = 60


def running_job(**fields) -> dict:
    job = training_job.queued_job("job-1", "r-1", "d", 5, {"model": "yolov8n.yaml"}, now=1.0)
    return {**job, "status": "running", "execution": EXECUTION, "manifest": "gs://b/m.json", "run": 0,
            "epoch": 2, "sequence": sequence(0, 3), **fields}


def ended(at: float | None = 100.0, **fields) -> ExecutionState:
    return ExecutionState(EXECUTION, running=False, ended_at=at, detail="failed after 3 retries, out of retries",
                          rerun="gcloud run jobs execute yolodrop-trainer", **fields)


def test_an_execution_that_failed_fails_the_job_after_the_grace_with_how_to_resume():
    assert execution_ended(running_job(), ended(), now=100 + GRACE - 1, grace=GRACE) is None  # a final event may come
    update = execution_ended(running_job(), ended(), now=100 + GRACE, grace=GRACE)
    assert update["status"] == "failed" and update["finished_at"] == 100 + GRACE
    assert "ended without reporting a result (failed after 3 retries, out of retries)" in update["error"]
    assert "Epoch 2 of 5 is checkpointed: resume from it with `gcloud run jobs execute yolodrop-trainer`" \
        in update["error"]


def test_without_a_checkpoint_the_reason_says_start_again():
    update = execution_ended(running_job(epoch=0), ended(), now=1000, grace=GRACE)
    assert "No epoch was checkpointed: start it again with" in update["error"]
    assert "new request_id" in update["error"]


def test_nothing_happens_while_it_runs_after_it_succeeded_or_once_the_job_ended():
    assert execution_ended(running_job(), ExecutionState(EXECUTION, running=True), now=1000, grace=GRACE) is None
    assert execution_ended(running_job(), ended(succeeded=True), now=1000, grace=GRACE) is None
    for status in ("completed", "failed", "cancelled"):
        assert execution_ended(running_job(status=status), ended(), now=1000, grace=GRACE) is None


def test_an_execution_that_succeeded_without_a_final_event_fails_the_job_only_after_the_silent_grace():
    silent = 600
    succeeded = ended(succeeded=True)
    assert execution_ended(running_job(), succeeded, now=100 + silent - 1, grace=GRACE, silent_grace=silent) is None
    update = execution_ended(running_job(), succeeded, now=100 + silent, grace=GRACE, silent_grace=silent)
    assert update["status"] == "failed" and "ended without reporting a result" in update["error"]
    continuing = running_job(continuation={"execution": EXECUTION, "run": 0})
    assert execution_ended(continuing, succeeded, now=10 ** 6, grace=GRACE, silent_grace=silent) is None


def test_only_the_execution_that_runs_the_job_counts():
    rerun = running_job(execution=EXECUTION.replace("-abc", "-def"))
    assert execution_ended(rerun, ended(), now=1000, grace=GRACE) is None


def test_without_an_end_time_the_first_sweep_notes_it_and_a_later_one_decides():
    local = ExecutionState("local-pid-42", running=False, rerun="python -m jobs.trainer")
    job = running_job(execution="local-pid-42")
    noted = execution_ended(job, local, now=500, grace=GRACE)
    assert noted == {"execution_gone": {"execution": "local-pid-42", "at": 500}}
    job = {**job, **noted}
    assert execution_ended(job, local, now=500 + GRACE - 1, grace=GRACE) is None
    assert execution_ended(job, local, now=500 + GRACE, grace=GRACE)["status"] == "failed"
    # a note about another execution does not count for this one
    other = {**job, "execution_gone": {"execution": "local-pid-7", "at": 1}}
    assert "execution_gone" in execution_ended(other, local, now=500 + GRACE, grace=GRACE)


def test_after_the_watch_a_late_event_of_a_dead_run_changes_nothing_and_a_rerun_revives_the_job():
    job = running_job()
    job = {**job, **execution_ended(job, ended(), now=1000, grace=GRACE)}
    late = {"job_id": "job-1", "type": "epoch", "sequence": sequence(0, 9), "run": 0, "epoch": 5, "epochs": 5}
    assert apply_event(job, late, now=1001) is None
    rerun = {"job_id": "job-1", "type": "started", "sequence": sequence(1, 1), "run": 1,
             "execution": "yolodrop-trainer-xyz"}
    revived = {**job, **apply_event(job, rerun, now=1002)}
    assert revived["status"] == "running" and revived["error"] is None
    assert revived["execution"] == EXECUTION.replace("yolodrop-trainer-abc", "yolodrop-trainer-xyz")


def test_a_queued_job_that_never_started_is_watched_too():
    queued = running_job(status="queued", run=None, epoch=0, sequence=-1)
    update = execution_ended(queued, ended(), now=1000, grace=GRACE)
    assert update["status"] == "failed" and update["sequence"] == -1


def test_the_execution_a_started_event_reports_replaces_the_launchers():
    assert training_job.reported_execution(EXECUTION, None) == EXECUTION
    assert training_job.reported_execution("local-pid-1", "local-pid-2") == "local-pid-2"
    assert training_job.reported_execution(EXECUTION, "yolodrop-trainer-abc") == EXECUTION
    assert training_job.reported_execution(None, "yolodrop-trainer-abc") == "yolodrop-trainer-abc"


# ---- a training longer than one task: continuations -------------------------------------

def continued(job: dict, run: int = 0, epoch: int = 2, at: float = 90.0) -> dict:
    """The job once the progress function applied run `run`'s `continued` event (the trainer reports its
    execution's short name, as a Cloud Run task knows it)."""
    event = {"type": "continued", "sequence": sequence(run, 9), "run": run, "epoch": epoch, "epochs": 5,
             "metrics": {"mAP50": epoch / 10}, "seconds": 1.5, "execution": EXECUTION.rsplit("/", 1)[1]}
    return {**job, **apply_event(job, event, now=at)}


def test_a_continued_event_keeps_the_job_running_and_records_each_continuation_once():
    job = continued(running_job(epoch=1, history=[{"epoch": 1, "run": 0, "seconds": 1.0, "mAP50": 0.1}]))
    assert job["status"] == "running" and job["epoch"] == 2
    assert job["continuation"] == {"run": 0, "after_epoch": 2, "at": 90.0, "execution": EXECUTION}
    # it brings its last epoch: the epoch event, delivered after it, is late and changes nothing
    assert [(h["epoch"], h["run"], h["mAP50"]) for h in job["history"]] == [(1, 0, 0.1), (2, 0, 0.2)]
    late_epoch = {"type": "epoch", "sequence": sequence(0, 8), "run": 0, "epoch": 2, "epochs": 5, "metrics": {}}
    assert apply_event(job, late_epoch, now=91.0) is None
    again = continued({**job, "sequence": -1}, at=95.0)  # the same run's event applied again, say by a replay
    assert [c["run"] for c in again["continuations"]] == [0]
    later = continued(job, run=1, epoch=4, at=200.0)
    assert [(c["run"], c["after_epoch"]) for c in later["continuations"]] == [(0, 2), (1, 4)]


def test_an_execution_that_stopped_to_continue_never_fails_the_job():
    job = continued(running_job())
    assert execution_ended(job, ended(succeeded=True), now=10_000, grace=GRACE) is None


def test_a_continuation_nobody_started_is_asked_for_again_after_the_grace_and_only_then():
    job = continued(running_job())
    stopped = ended(at=100.0, succeeded=True)
    assert not training_job.awaits_continuation(job, stopped, now=100 + GRACE - 1, grace=GRACE)
    assert training_job.awaits_continuation(job, stopped, now=100 + GRACE, grace=GRACE)
    started = {**job, "executions": [training_job.launched_execution(EXECUTION + "-next", 0, 101.0)]}
    assert not training_job.awaits_continuation(started, stopped, now=10_000, grace=GRACE)
    assert not training_job.awaits_continuation(running_job(), stopped, now=10_000, grace=GRACE)  # never continued
    assert not training_job.awaits_continuation(job, ended(at=100.0), now=10_000, grace=GRACE)  # it failed instead
    assert not training_job.awaits_continuation({**job, "status": "cancelled"}, stopped, now=10_000, grace=GRACE)


def test_a_continuation_never_started_fails_the_job_with_how_to_resume_from_its_checkpoint():
    job = continued(running_job())
    update = training_job.continuation_never_started(job, ended(at=100.0, succeeded=True), "asked 3 more times",
                                                     now=500.0)
    assert update["status"] == "failed" and update["finished_at"] == 500.0
    assert update["sequence"] == sequence(1, 0) - 1  # a late event of the run that stopped changes nothing
    assert update["error"] == ("the trainer stopped after epoch 2 of 5 to continue in a new execution, which was "
                               "never started: asked 3 more times. The epoch is checkpointed: resume from it with "
                               "`gcloud run jobs execute yolodrop-trainer`")


def test_the_sweep_says_each_job_it_failed_or_found_stalled_in_one_line_the_metrics_count(capsys):
    import json

    from common.services import watch_training
    watch_training.report(["t-1"], ["i-1"], {"dataset job": {"d-1": "plan asked again", "d-2": "failed"},
                                             "export": {"e-1": "moved"}, "version": {"ds/v1": "sent again"}})
    events = [(r["job_event"], r["job_kind"], r["job_id"], r.get("action") or r.get("by"))
              for r in map(json.loads, capsys.readouterr().err.splitlines())]
    assert events == [("failed", "training", "t-1", "watch"), ("failed", "import", "i-1", "watch"),
                      ("stalled", "dataset job", "d-1", "plan asked again"),
                      ("stalled", "dataset job", "d-2", "failed"), ("failed", "dataset job", "d-2", "watch"),
                      ("stalled", "version", "ds/v1", "sent again")]
