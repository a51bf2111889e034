"""The Vertex AI custom job a training on several GPUs runs as (common/cloud/vertex_runner.py): the job it
asks for, how a redelivery finds the one it made, and how the watch reads its state; and which runner a
training's accelerator chooses (common/cloud/launcher.py). Pure: no call reaches Vertex AI."""
from __future__ import annotations

import pytest
from google.api_core import exceptions as api_exceptions

from common.cloud import launcher, runner, vertex_runner
from common.cloud.vertex_runner import Trainer, custom_job, execution_state, matching
from common.domain import training_job
from common.domain.accelerators import Accelerator
from common.platform import failures

PARENT = "projects/p/locations/us-central1"
TRAINER = Trainer(image="us-central1-docker.pkg.dev/p/yolodrop/trainer:v1",
                  service_account="yd-trainer@p.iam.gserviceaccount.com", timeout_seconds=86400,
                  env={"GOOGLE_CLOUD_PROJECT": "p", "PROGRESS_TOPIC": "training-progress",
                       "TASK_TIMEOUT_SECONDS": "86400", "TRAINER_DATA_MOUNT": "/gcs/yolodrop-data",
                       "ULTRALYTICS_SAFE_LOAD": "1", "YOLO_AUTOINSTALL": "false"})
FIRST = launcher.trainer_execution("job-0123abcd", "gs://b/derived/training/job-0123abcd/manifest.json")
CONTINUATION = launcher.trainer_execution("job-0123abcd", "gs://b/derived/training/job-0123abcd/manifest.json",
                                          continues_run=2)


def test_the_job_is_one_machine_with_the_accelerators_gpus_running_the_trainer():
    job = custom_job(FIRST, Accelerator("nvidia-l4", 4), TRAINER)
    [pool] = job["jobSpec"]["workerPoolSpecs"]
    assert pool["machineSpec"] == {"machineType": "g2-standard-48", "acceleratorType": "NVIDIA_L4",
                                   "acceleratorCount": 4}
    assert pool["replicaCount"] == "1"  # one machine: Ultralytics' DDP over its GPUs, no cluster
    container = pool["containerSpec"]
    assert container["imageUri"] == TRAINER.image
    assert container["command"] == ["python", "-m", "jobs.trainer"]
    env = {var["name"]: var["value"] for var in container["env"]}
    assert env == {**TRAINER.env, "JOB_ID": "job-0123abcd",
                   "MANIFEST_URI": "gs://b/derived/training/job-0123abcd/manifest.json"}
    assert job["jobSpec"]["serviceAccount"] == "yd-trainer@p.iam.gserviceaccount.com"
    assert job["jobSpec"]["scheduling"] == {"timeout": "86400s", "restartJobOnWorkerRestart": True}
    assert pool["diskSpec"]["bootDiskSizeGb"] >= 100


def test_machines_follow_the_type_and_count():
    for accelerator, machine in ((Accelerator("nvidia-tesla-a100", 8), "a2-highgpu-8g"),
                                 (Accelerator("nvidia-h100-80gb", 2), "a3-highgpu-2g"),
                                 (Accelerator("nvidia-tesla-t4", 1), "n1-standard-8")):
        spec = custom_job(FIRST, accelerator, TRAINER)["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]
        assert spec["machineType"] == machine and spec["acceleratorCount"] == accelerator.count


def test_its_name_and_labels_are_the_executions_identity():
    first, continuation = (custom_job(e, Accelerator("nvidia-l4", 2), TRAINER) for e in (FIRST, CONTINUATION))
    assert first["labels"] == {"yolodrop": "trainer", "yd_job_id": "job-0123abcd"}
    assert continuation["labels"] == {"yolodrop": "trainer", "yd_job_id": "job-0123abcd", "yd_continues_run": "2"}
    assert first["displayName"] == "yolodrop-trainer-job-0123abcd"
    assert continuation["displayName"] == "yolodrop-trainer-job-0123abcd-2"
    env = {var["name"]: var["value"] for var in continuation["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]}
    assert env["CONTINUES_RUN"] == "2"


def test_an_identity_that_cannot_be_a_label_is_refused_before_anything_is_asked():
    hostile = runner.Execution("job", {"JOB_ID": "Job With Spaces"}, ("JOB_ID",), "local", "log")
    with pytest.raises(ValueError, match="cannot be a Vertex AI label value"):
        custom_job(hostile, Accelerator("nvidia-l4", 1), TRAINER)


def listed(name: str, created: str, **labels: str) -> dict:
    return {"name": f"{PARENT}/customJobs/{name}", "createTime": created,
            "labels": {"yolodrop": "trainer", **labels}, "state": "JOB_STATE_RUNNING"}


def test_the_lookup_asks_for_the_jobs_with_the_identity_labels():
    assert vertex_runner.list_filter(FIRST) == 'labels.yd_job_id="job-0123abcd"'
    assert vertex_runner.list_filter(CONTINUATION) == 'labels.yd_job_id="job-0123abcd" AND labels.yd_continues_run="2"'


def test_launch_once_finds_the_newest_job_of_exactly_this_identity():
    found = [listed("1", "2026-12-07T10:00:00Z", yd_job_id="job-0123abcd"),
             listed("2", "2026-12-07T11:00:00Z", yd_job_id="job-0123abcd"),
             listed("3", "2026-12-07T12:00:00Z", yd_job_id="job-0123abcd", yd_continues_run="2"),
             listed("4", "2026-12-07T13:00:00Z", yd_job_id="job-other")]
    assert matching(found, FIRST) == f"{PARENT}/customJobs/2"  # a continuation is not the first execution
    assert matching(found, CONTINUATION) == f"{PARENT}/customJobs/3"
    assert matching(found[:2], CONTINUATION) is None
    assert matching([], FIRST) is None
    same_second = [listed("5", "2026-12-07T10:00:00.500Z", yd_job_id="job-0123abcd"),
                   listed("6", "2026-12-07T10:00:00Z", yd_job_id="job-0123abcd")]
    assert matching(same_second, FIRST) == f"{PARENT}/customJobs/5"  # by time, not by the text's order


NAME = f"{PARENT}/customJobs/789"


@pytest.mark.parametrize("state", ["JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING",
                                   "JOB_STATE_CANCELLING", "JOB_STATE_UPDATING", "JOB_STATE_PAUSED"])
def test_queued_provisioning_or_running_is_running(state):
    assert execution_state(NAME, {"name": NAME, "state": state}, "rerun") == \
        training_job.ExecutionState(NAME, running=True)


def test_succeeded_ended_with_its_end_time():
    state = execution_state(NAME, {"state": "JOB_STATE_SUCCEEDED", "endTime": "2026-12-07T20:00:00.250000123Z"},
                            "rerun")
    assert not state.running and state.succeeded and state.detail == ""
    assert state.ended_at == pytest.approx(1796673600.250000123)


@pytest.mark.parametrize("state, detail", [
    ("JOB_STATE_FAILED", "the Vertex AI custom job ended failed: The replica workerpool0-0 exited with a non-zero "
                         "status of 137"),
    ("JOB_STATE_CANCELLED", "the Vertex AI custom job ended cancelled: The replica workerpool0-0 exited with a "
                            "non-zero status of 137"),
    ("JOB_STATE_EXPIRED", "the Vertex AI custom job ended expired: The replica workerpool0-0 exited with a "
                          "non-zero status of 137"),
])
def test_failed_cancelled_or_expired_ended_unsucceeded_with_how(state, detail):
    job = {"state": state, "endTime": "2026-12-07T20:00:00Z",
           "error": {"code": 13, "message": "The replica workerpool0-0 exited with a non-zero status of 137"}}
    ended = execution_state(NAME, job, "the rerun")
    assert not ended.running and not ended.succeeded
    assert ended.ended_at == 1796673600.0 and ended.detail == detail and ended.rerun == "the rerun"


def test_a_job_vertex_no_longer_knows_ended_without_a_time():
    gone = execution_state(NAME, None, "the rerun")
    assert not gone.running and gone.ended_at is None and "no longer knows" in gone.detail


def test_the_watch_fails_a_training_whose_custom_job_failed_after_the_grace():
    job = {**training_job.queued_job("job-1", "r-1", "d", 5, {}, now=1.0), "status": "running", "execution": NAME,
           "run": 0, "epoch": 2, "sequence": training_job.sequence(0, 3)}
    failed = execution_state(NAME, {"state": "JOB_STATE_FAILED", "endTime": "2026-12-07T20:00:00Z"},
                             vertex_runner.rerun_command(NAME, "job-1"))
    assert training_job.execution_ended(job, failed, now=1796673600.0 + 10, grace=60) is None
    update = training_job.execution_ended(job, failed, now=1796673600.0 + 60, grace=60)
    assert update["status"] == "failed" and "the Vertex AI custom job ended failed" in update["error"]
    assert "gcloud ai custom-jobs create --region=us-central1" in update["error"]


def test_the_trainer_reports_its_custom_job_by_id_and_the_launcher_s_name_completes_it():
    assert training_job.reported_execution(NAME, "790") == f"{PARENT}/customJobs/790"
    assert training_job.reported_execution(NAME, None) == NAME


def test_a_trainer_on_vertex_names_its_custom_job(monkeypatch):
    from jobs.trainer.main import execution_name
    monkeypatch.delenv("CLOUD_RUN_EXECUTION", raising=False)
    monkeypatch.setenv("CLOUD_ML_JOB_ID", "790")
    assert execution_name() == "790"


def test_an_rfc3339_time_with_an_offset_or_no_fraction():
    assert vertex_runner.timestamp("2026-12-07T21:00:00+01:00") == 1796673600.0
    with pytest.raises(ValueError):
        vertex_runner.timestamp("yesterday")


def test_the_regional_endpoint_comes_from_the_resource():
    assert vertex_runner.endpoint(NAME) == "https://us-central1-aiplatform.googleapis.com"


# ---- which runner a training's accelerator chooses ----------------------------------------

def test_no_accelerator_keeps_the_configured_runner(monkeypatch):
    monkeypatch.setenv("TRAINER_LAUNCHER", "cloud-run")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("TRAINER_JOB", "yolodrop-trainer")
    monkeypatch.setenv("TRAINER_REGION", "us-central1")
    chosen = launcher.for_accelerator(None)
    assert isinstance(chosen, runner.CloudRunRunner)
    assert chosen.name == "projects/p/locations/us-central1/jobs/yolodrop-trainer"


def test_an_accelerator_in_production_is_a_vertex_custom_job_with_the_trainers_settings(monkeypatch):
    for name, value in {"TRAINER_LAUNCHER": "cloud-run", "GOOGLE_CLOUD_PROJECT": "p", "TRAINER_REGION": "europe-west4",
                        "TRAINER_VERTEX_REGION": "us-central1", "TRAINER_IMAGE": TRAINER.image,
                        "TRAINER_SERVICE_ACCOUNT": TRAINER.service_account, "PROGRESS_TOPIC": "training-progress",
                        "TRAINER_VERTEX_TIMEOUT_SECONDS": "86400", "DATA_BUCKET": "yolodrop-data"}.items():
        monkeypatch.setenv(name, value)
    chosen = launcher.for_accelerator(Accelerator("nvidia-l4", 4))
    assert isinstance(chosen, vertex_runner.VertexRunner)
    assert chosen.parent == PARENT and chosen.accelerator == Accelerator("nvidia-l4", 4)
    assert chosen.trainer == TRAINER


def test_an_accelerator_on_the_local_stack_runs_on_the_local_runner(monkeypatch):
    monkeypatch.setenv("TRAINER_LAUNCHER", "local")
    assert isinstance(launcher.for_accelerator(Accelerator("nvidia-l4", 4)), runner.LocalRunner)


QUOTA = ("The following quota metrics exceed quota limits: "
         "aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus")


def test_a_job_over_the_projects_gpu_quota_fails_at_once_saying_which_quota(monkeypatch):
    def refused(*args, **kwargs):
        raise api_exceptions.TooManyRequests(QUOTA)
    monkeypatch.setattr(vertex_runner, "_call", refused)
    with pytest.raises(vertex_runner.QuotaExceeded) as raised:
        vertex_runner.VertexRunner("p", "us-central1", Accelerator("nvidia-l4", 2), TRAINER).start(FIRST)
    assert "custom_model_training_nvidia_l4_gpus" in str(raised.value) and "IAM & Admin > Quotas" in str(raised.value)
    assert not failures.is_transient(raised.value)  # the job fails with this, never redelivered


def test_a_429_of_the_request_rate_stays_a_retry():
    rate = api_exceptions.TooManyRequests("Quota exceeded for quota metric 'Resource management requests' and "
                                          "limit 'per minute' of service 'aiplatform.googleapis.com'")
    assert vertex_runner.quota_refusal(rate) is None and failures.is_transient(rate)
    assert vertex_runner.quota_refusal(api_exceptions.TooManyRequests("Quota failure for project p: 2 K80")) \
        is not None
