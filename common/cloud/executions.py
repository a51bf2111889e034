"""What became of a trainer execution: asked of Cloud Run, or of the local process table.

The execution name says which: the CloudRunRunner records Cloud Run's full
name (projects/…/jobs/…/executions/…), the VertexRunner a Vertex AI custom job's
(projects/…/customJobs/…), the LocalRunner `local-run-<job>…`
(a local Cloud Run Job, whose record common/cloud/local_runner.py keeps), and a
trainer started by hand reports `local-pid-<pid>` (a process of this machine).
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

from google.api_core.exceptions import NotFound

from common.cloud import clients, local_runner, vertex_runner
from common.domain.training_job import LOCAL_EXECUTION_PREFIX, LOCAL_RUN_PREFIX, ExecutionState
from common.platform import config

LOCAL_IMPORT_PREFIX = "local-import-"  # the local runner's import executions
PROC = Path("/proc")


def observe(job: dict) -> ExecutionState:
    """The state of the execution that runs `job` now (job["execution"])."""
    if job["execution"].startswith(LOCAL_RUN_PREFIX):
        return local_run_state(job)
    if job["execution"].startswith(LOCAL_EXECUTION_PREFIX):
        return local_state(job)
    if "/customJobs/" in job["execution"]:
        return vertex_state(job)
    return cloud_run_state(job)


def vertex_state(job: dict) -> ExecutionState:
    name = job["execution"]
    return vertex_runner.execution_state(name, vertex_runner.read(name), vertex_runner.rerun_command(name, job["id"]))


# ---- Cloud Run -------------------------------------------------------------------------

def cloud_run_state(job: dict) -> ExecutionState:
    name = job["execution"]
    try:
        execution = clients.cloud_run_executions().get_execution(name=name, timeout=config.cloud_deadline())
    except NotFound:
        return ExecutionState(name, running=False, detail="Cloud Run no longer knows this execution",
                              rerun=cloud_run_rerun(job))
    if execution.completion_time is None:
        return ExecutionState(name, running=True)
    succeeded = execution.succeeded_count >= execution.task_count and not execution.failed_count
    return ExecutionState(name, running=False, succeeded=succeeded,
                          ended_at=execution.completion_time.timestamp(),
                          detail=cloud_run_detail(execution), rerun=cloud_run_rerun(job))


def cloud_run_detail(execution) -> str:
    """How the execution ended: cancelled or failed, its retries, Cloud Run's own message."""
    how = "cancelled" if execution.cancelled_count else "failed"
    retries = execution.retried_count
    parts = [f"{how} after {retries} {'retry' if retries == 1 else 'retries'}"
             + (", out of retries" if how == "failed" else "")]
    completed = next((c for c in execution.conditions if c.type_ == "Completed"), None)
    if completed is not None and completed.message:
        parts.append(completed.message)
    return "; ".join(parts)


def cloud_run_rerun(job: dict) -> str:
    """The command that runs the trainer job again for this training job."""
    path = job["execution"].split("/")  # projects/P/locations/R/jobs/J/executions/E
    region, trainer = path[3], path[5]
    return (f"gcloud run jobs execute {trainer} --region={region} "
            f"--update-env-vars=JOB_ID={job['id']},MANIFEST_URI={job.get('manifest')}")


def import_execution(document: dict) -> tuple[bool, float | None, str]:
    """(running, ended at, how it ended) of the execution an import waits on."""
    name = document["execution"]
    if name.startswith(LOCAL_IMPORT_PREFIX):
        return local_import_execution(name)
    try:
        execution = clients.cloud_run_executions().get_execution(name=name, timeout=config.cloud_deadline())
    except NotFound:
        return False, None, "Cloud Run no longer knows this execution"
    if execution.completion_time is None:
        return True, None, ""
    return False, execution.completion_time.timestamp(), cloud_run_detail(execution)


# ---- a local Cloud Run Job ----------------------------------------------------------------

def local_run_state(job: dict) -> ExecutionState:
    """What the local runner's record says of the execution, as Cloud Run would: running while a task attempt
    runs or is yet to be retried; then succeeded, or failed with how (the timeout, an exit code, the retries)."""
    name = job["execution"]
    record = local_runner.read_record(name)
    if record is None:
        return ExecutionState(name, running=False, detail="the local runner has no record of this execution "
                              "(the stack was started again since)", rerun=local_rerun(job))
    if record["completion_time"] is None:
        if local_run_alive(record):
            return ExecutionState(name, running=True)
        return ExecutionState(name, running=False, rerun=local_rerun(job),
                              detail=f"the local runner (process {record['supervisor']}) and its task are gone: "
                                     f"the stack was stopped; the log is trainer-{job['id']}.log in TRAINER_LOG_DIR")
    succeeded = record["succeeded_count"] >= record["task_count"]
    return ExecutionState(name, running=False, succeeded=succeeded, ended_at=record["completion_time"],
                          detail="" if succeeded else record["message"], rerun=local_rerun(job))


def local_import_execution(name: str) -> tuple[bool, float | None, str]:
    record = local_runner.read_record(name)
    if record is None:
        return False, None, "the local runner has no record of this execution (the stack was started again since)"
    if record["completion_time"] is None:
        return local_run_alive(record), None, "its local runner and task processes are gone"
    return False, record["completion_time"], record["message"] or "all its tasks succeeded"


def local_run_alive(record: dict) -> bool:
    """Its supervisor still runs it, or an attempt of it still runs (its supervisor gone)."""
    if process_has_env(record["supervisor"], {}):
        return True
    return local_process_with({"CLOUD_RUN_EXECUTION": record["name"]}) is not None


# ---- a local process -------------------------------------------------------------------

def local_state(job: dict) -> ExecutionState:
    name = job["execution"]
    pid = int(name.removeprefix(LOCAL_EXECUTION_PREFIX))
    return ExecutionState(name, running=trainer_alive(pid, job["id"]),
                          detail=f"the local trainer process {pid} is gone: killed, or the stack was stopped; "
                                 f"its log is trainer-{job['id']}.log in TRAINER_LOG_DIR",
                          rerun=local_rerun(job))


def trainer_alive(pid: int, job_id: str) -> bool:
    """The process exists and is still the trainer of `job_id` (a pid can be reused)."""
    return process_has_env(pid, {"JOB_ID": job_id})


def process_has_env(pid: int, env: dict[str, str]) -> bool:
    """The process exists and its environment holds all of `env`. Where there
    is no /proc (macOS), existence is all that can be checked."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not PROC.is_dir():
        return True
    try:  # a zombie, or another program under the same pid, has not this environment
        entries = set((PROC / str(pid) / "environ").read_bytes().split(b"\0"))
    except OSError:
        return False
    return all(f"{name}={value}".encode() in entries for name, value in env.items())


def local_process_with(env: dict[str, str]) -> int | None:
    """The pid of a live process of this machine whose environment holds all of `env`."""
    if not PROC.is_dir():
        return None
    for entry in PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and process_has_env(int(entry.name), env):
            return int(entry.name)
    return None


def local_rerun(job: dict) -> str:
    return (f"JOB_ID={shlex.quote(job['id'])} MANIFEST_URI={shlex.quote(str(job.get('manifest')))} "
            "python -m jobs.trainer")
