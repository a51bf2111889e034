"""Starting the trainer: one interface, two implementations.

- CloudRunLauncher runs the Cloud Run Job (TRAINER_JOB in TRAINER_REGION) with
  container overrides carrying the job id and the manifest URI.
- LocalLauncher runs the same entry point (`python -m jobs.trainer`) as a
  local Cloud Run Job (common/cloud/local_runner.py: the task timeout and the
  retries enforced), for the local stack.

A training longer than one task continues in another execution (docs/training.md,
Longer than a task): `continues_run` names the trainer run that stopped in time
and asked for it, so each continuation starts exactly one execution.

TRAINER_LAUNCHER picks one (cloud-run or local); unset, the local stack (an
emulator host in the environment) gets local and everything else cloud-run.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from common.cloud import clients, local_runner
from common.domain import training_job
from common.platform import config

REPO = Path(__file__).resolve().parents[2]
# Ultralytics loads weights only through its safe loader and never pip-installs: the trainer image
# sets the same (jobs/trainer/Dockerfile), and so does the trainer's own package (jobs/trainer).
TRAINER_SAFETY_ENV = {"ULTRALYTICS_SAFE_LOAD": "1", "YOLO_AUTOINSTALL": "false"}


class Launcher(Protocol):
    def launch(self, job_id: str, manifest_uri: str, continues_run: int | None = None) -> str:
        """Start the trainer for one job (the continuation of run `continues_run`); return a name for the
        execution."""

    def existing(self, job_id: str, continues_run: int | None = None) -> str | None:
        """The execution already started for this job (for this continuation), if there is one: a
        redelivered request (a launch that raised after the execution existed,
        or whose record failed) must not start a second one."""


def launch_once(launcher: Launcher, job_id: str, manifest_uri: str, continues_run: int | None = None) -> str:
    if continues_run is None:
        return launcher.existing(job_id) or launcher.launch(job_id, manifest_uri)
    return (launcher.existing(job_id, continues_run=continues_run)
            or launcher.launch(job_id, manifest_uri, continues_run=continues_run))


def trainer_env(job_id: str, manifest_uri: str, continues_run: int | None = None) -> dict[str, str]:
    return {"JOB_ID": job_id, "MANIFEST_URI": manifest_uri, **continuation_env(continues_run)}


def continuation_env(continues_run: int | None) -> dict[str, str]:
    return {} if continues_run is None else {"CONTINUES_RUN": str(continues_run)}


class CloudRunLauncher:
    def __init__(self, project: str, region: str, job: str):
        self.name = cloud_run_job_name(project, region, job)

    def launch(self, job_id: str, manifest_uri: str, continues_run: int | None = None) -> str:
        return run_cloud_run_job(self.name, trainer_env(job_id, manifest_uri, continues_run), task_count=1)

    def existing(self, job_id: str, continues_run: int | None = None) -> str | None:
        return newest_cloud_run_execution(self.name, {"JOB_ID": job_id, **continuation_env(continues_run)})


def cloud_run_job_name(project: str, region: str, job: str) -> str:
    return f"projects/{project}/locations/{region}/jobs/{job}"


def run_cloud_run_job(job_name: str, env: dict[str, str], task_count: int) -> str:
    """Start an execution of a Cloud Run Job with these variables and tasks; its name."""
    from google.cloud import run_v2  # the types only; the client comes from common.cloud.clients
    variables = [run_v2.EnvVar(name=k, value=v) for k, v in env.items()]
    request = run_v2.RunJobRequest(name=job_name, overrides=run_v2.RunJobRequest.Overrides(
        container_overrides=[run_v2.RunJobRequest.Overrides.ContainerOverride(env=variables)],
        task_count=task_count))
    operation = clients.cloud_run_jobs().run_job(request=request)
    return operation.metadata.name  # the execution; run_job returns once it is created


def newest_cloud_run_execution(job_name: str, env: dict[str, str]) -> str | None:
    """The newest execution of the job whose overrides hold all of `env`."""
    for execution in clients.cloud_run_executions().list_executions(parent=job_name,
                                                                    timeout=config.cloud_deadline()):
        overrides = {var.name: var.value for container in execution.template.containers for var in container.env}
        if all(overrides.get(name) == value for name, value in env.items()):
            return execution.name
    return None


def spawn_local(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """A job's entry point as a subprocess of this process, with the repository on its path, logging to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


class LocalLauncher:
    """Runs the trainer as a local Cloud Run Job (common/cloud/local_runner.py) supervised by this process (the
    local stack's training function), logging to <log_dir>/trainer-<job>.log. `module` is the entry point; a
    test may name one that wraps the trainer. `settings` (the task timeout, the retries): the local trainer
    job's, read at each launch, unless given."""

    def __init__(self, log_dir: Path, module: str = "jobs.trainer", args: tuple[str, ...] = (),
                 settings: local_runner.JobSettings | None = None):
        self.log_dir, self.argv, self.settings = log_dir, [sys.executable, "-m", module, *args], settings
        self.executions: dict[str, local_runner.LocalExecution] = {}  # by job id: its latest

    @property
    def processes(self) -> dict[str, subprocess.Popen]:
        """The current attempt of each job's latest execution."""
        return {job_id: execution.processes[0] for job_id, execution in self.executions.items()}

    def launch(self, job_id: str, manifest_uri: str, continues_run: int | None = None) -> str:
        name = training_job.local_execution_name(job_id, continues_run)
        env = {**trainer_env(job_id, manifest_uri, continues_run), **TRAINER_SAFETY_ENV}
        self.executions[job_id] = local_runner.LocalExecution(
            name, self.argv, env, self.settings or local_runner.job_settings("trainer"),
            self.log_dir / f"trainer-{job_id}.log", spawn_local).start()
        return name

    def existing(self, job_id: str, continues_run: int | None = None) -> str | None:
        name = training_job.local_execution_name(job_id, continues_run)
        return name if local_runner.read_record(name) else None


def from_config() -> Launcher:
    kind = config.trainer_launcher()
    if kind == "local":
        return LocalLauncher(config.trainer_log_dir())
    if kind == "cloud-run":
        return CloudRunLauncher(config.project(), config.trainer_region(), config.trainer_job())
    raise ValueError(f"TRAINER_LAUNCHER must be local or cloud-run, got {kind!r}")
