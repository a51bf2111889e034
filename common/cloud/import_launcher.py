"""Starting an import's phase: an execution of the importer job on the one runner (common/cloud/runner.py).

Each execution runs `python -m jobs.importer` with IMPORT_ID and IMPORT_PHASE
in N tasks (each with CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT and
CLOUD_RUN_TASK_ATTEMPT). A failed task runs again up to the job's retries, on
Cloud Run and on the local runner alike, so a task that dies half-way is
retried and resumes in both.
"""
from __future__ import annotations

from pathlib import Path

from common.cloud import executions, runner
from common.platform import config

LOCAL_PREFIX = executions.LOCAL_IMPORT_PREFIX


def import_execution(import_id: str, phase: str, task_count: int = 1) -> runner.Execution:
    return runner.Execution(import_id, {"IMPORT_ID": import_id, "IMPORT_PHASE": phase}, ("IMPORT_ID", "IMPORT_PHASE"),
                            execution_name(import_id, phase), f"import-{import_id}-{phase}-{{task}}.log", task_count)


def launch_once(chosen: runner.Runner, import_id: str, phase: str, task_count: int) -> str:
    """Start `task_count` tasks of one phase of an import unless that phase was started already."""
    return runner.start_once(chosen, import_execution(import_id, phase, task_count))


def execution_name(import_id: str, phase: str) -> str:
    return f"{LOCAL_PREFIX}{import_id}-{phase}"


def local(log_dir: Path, module: str = "jobs.importer", args: tuple[str, ...] = (),
          retries: int | None = None) -> runner.LocalRunner:
    """The importer as a local job: a failed task runs again up to `retries` times (IMPORT_TASK_RETRIES), and the
    importer job's task timeout stops an attempt. A test may name another entry module."""
    return runner.LocalRunner("importer", log_dir, module, args,
                              retries=config.import_task_retries() if retries is None else retries)


def from_config() -> runner.Runner:
    kind = config.importer_launcher()
    if kind == "local":
        return local(config.import_log_dir())
    if kind == "cloud-run":
        return runner.CloudRunRunner(config.project(), config.importer_region(), config.importer_job())
    raise ValueError(f"IMPORTER_LAUNCHER must be local or cloud-run, got {kind!r}")
