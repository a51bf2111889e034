"""Starting the trainer: an execution of the trainer job on the one runner (common/cloud/runner.py).

Each execution runs `python -m jobs.trainer` for one job, with the job's id and
its manifest's URI. A training longer than one task continues in another
execution (docs/training.md, Longer than a task): `continues_run` names the
trainer run that stopped in time and asked for it, so each continuation starts
exactly one execution.

TRAINER_LAUNCHER picks the runner (cloud-run: the Cloud Run Job TRAINER_JOB in
TRAINER_REGION; local: a local Cloud Run Job, the task timeout and retries
enforced); unset, the local stack (an emulator host in the environment) gets
local and everything else cloud-run. A training that asks for several GPUs
(`accelerator`, common/domain/accelerators.py) runs as a Vertex AI custom job
instead of the Cloud Run Job (common/cloud/vertex_runner.py), its first execution
and every continuation; on the local launcher it runs locally like any other.
"""
from __future__ import annotations

from pathlib import Path

from common.cloud import local_runner, runner, vertex_runner
from common.domain import training_job
from common.domain.accelerators import Accelerator
from common.platform import config

# Ultralytics loads weights only through its safe loader and never pip-installs: the trainer image
# sets the same (jobs/trainer/Dockerfile), and so does the trainer's own package (jobs/trainer).
TRAINER_SAFETY_ENV = {"ULTRALYTICS_SAFE_LOAD": "1", "YOLO_AUTOINSTALL": "false"}
IDENTITY = ("JOB_ID", "CONTINUES_RUN")


def trainer_execution(job_id: str, manifest_uri: str, continues_run: int | None = None) -> runner.Execution:
    env = {"JOB_ID": job_id, "MANIFEST_URI": manifest_uri,
           **({} if continues_run is None else {"CONTINUES_RUN": str(continues_run)})}
    return runner.Execution(job_id, env, tuple(name for name in IDENTITY if name in env),
                            training_job.local_execution_name(job_id, continues_run), f"trainer-{job_id}.log")


def launch_once(chosen: runner.Runner, job_id: str, manifest_uri: str, continues_run: int | None = None) -> str:
    """Start the trainer for one job (the continuation of run `continues_run`) unless it was started already."""
    return runner.start_once(chosen, trainer_execution(job_id, manifest_uri, continues_run))


def local(log_dir: Path, module: str = "jobs.trainer", args: tuple[str, ...] = (),
          settings: local_runner.JobSettings | None = None) -> runner.LocalRunner:
    """The trainer as a local job, logging to <log_dir>/trainer-<job>.log. A test may name a module that wraps
    the trainer, and settings (the task timeout, the retries) other than the local trainer job's."""
    return runner.LocalRunner("trainer", log_dir, module, args, settings, env=TRAINER_SAFETY_ENV)


def from_config() -> runner.Runner:
    kind = config.trainer_launcher()
    if kind == "local":
        return local(config.trainer_log_dir())
    if kind == "cloud-run":
        return runner.CloudRunRunner(config.project(), config.trainer_region(), config.trainer_job())
    raise ValueError(f"TRAINER_LAUNCHER must be local or cloud-run, got {kind!r}")


def for_accelerator(accelerator: Accelerator | None) -> runner.Runner:
    """The runner of a training with this accelerator: the configured one (from_config), or a Vertex AI
    custom job with its GPUs where it asks for some and the launcher is not local."""
    if accelerator is None or config.trainer_launcher() == "local":
        return from_config()
    return vertex_runner.VertexRunner(config.project(), config.trainer_vertex_region(), accelerator, vertex_trainer())


def vertex_trainer() -> vertex_runner.Trainer:
    """The trainer as the Cloud Run Job runs it (its image, account and variables: infra/settings.json trainer),
    with the custom job's own timeout as the task's, and the data bucket where Vertex AI mounts every bucket
    the job's account may read (/gcs/<bucket>), as the Cloud Run Job's volume mounts it."""
    timeout = config.trainer_vertex_timeout_seconds()
    env = {"GOOGLE_CLOUD_PROJECT": config.project(), "PROGRESS_TOPIC": config.progress_topic(),
           "TASK_TIMEOUT_SECONDS": str(timeout), "TRAINER_DATA_MOUNT": f"/gcs/{config.data_bucket()}",
           **TRAINER_SAFETY_ENV}
    return vertex_runner.Trainer(config.trainer_image(), config.trainer_service_account(), timeout, env)
