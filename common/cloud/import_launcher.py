"""Starting the import job: the Cloud Run Job IMPORTER_JOB with N tasks, or locally N subprocesses.

Both run `python -m jobs.importer` with IMPORT_ID and IMPORT_PHASE, and each
task with CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT and CLOUD_RUN_TASK_ATTEMPT.
Cloud Run runs a failed task again up to the job's max_retries; the local
launcher runs it as a local Cloud Run Job (common/cloud/local_runner.py) that
does the same and enforces the task timeout, so a task that dies half-way is
retried and resumes in both.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Protocol

from common.cloud import executions, launcher, local_runner
from common.platform import config

LOCAL_PREFIX = executions.LOCAL_IMPORT_PREFIX


class ImportLauncher(Protocol):
    def launch(self, import_id: str, phase: str, task_count: int) -> str:
        """Start `task_count` tasks of one phase of an import; a name for the execution."""

    def existing(self, import_id: str, phase: str) -> str | None:
        """The execution already started for this phase, if any (a redelivered request must not start two)."""


def import_env(import_id: str, phase: str) -> dict[str, str]:
    return {"IMPORT_ID": import_id, "IMPORT_PHASE": phase}


def launch_once(chosen: ImportLauncher, import_id: str, phase: str, task_count: int) -> str:
    return chosen.existing(import_id, phase) or chosen.launch(import_id, phase, task_count)


class CloudRunImportLauncher:
    def __init__(self, project: str, region: str, job: str):
        self.name = launcher.cloud_run_job_name(project, region, job)

    def launch(self, import_id: str, phase: str, task_count: int) -> str:
        return launcher.run_cloud_run_job(self.name, import_env(import_id, phase), task_count)

    def existing(self, import_id: str, phase: str) -> str | None:
        return launcher.newest_cloud_run_execution(self.name, import_env(import_id, phase))


class LocalImportLauncher:
    """Each execution a local Cloud Run Job of `task_count` tasks supervised by this process: a failed task runs
    again up to `retries` times (IMPORT_TASK_RETRIES), and the importer job's task timeout stops an attempt
    (logs: <log_dir>/import-<id>-<phase>-<task>.log). A test may name another entry module."""

    def __init__(self, log_dir: Path, module: str = "jobs.importer", args: tuple[str, ...] = (),
                 retries: int | None = None):
        self.log_dir, self.argv = log_dir, [sys.executable, "-m", module, *args]
        self.retries = config.import_task_retries() if retries is None else retries

    def launch(self, import_id: str, phase: str, task_count: int) -> str:
        name = execution_name(import_id, phase)
        settings = dataclasses.replace(local_runner.job_settings("importer"), max_retries=self.retries)
        local_runner.LocalExecution(name, self.argv, import_env(import_id, phase), settings,
                                    lambda index: self.log_dir / f"import-{import_id}-{phase}-{index}.log",
                                    launcher.spawn_local, task_count).start()
        return name

    def existing(self, import_id: str, phase: str) -> str | None:
        name = execution_name(import_id, phase)
        return name if local_runner.read_record(name) else None


def execution_name(import_id: str, phase: str) -> str:
    return f"{LOCAL_PREFIX}{import_id}-{phase}"


def from_config() -> ImportLauncher:
    kind = config.importer_launcher()
    if kind == "local":
        return LocalImportLauncher(config.import_log_dir())
    if kind == "cloud-run":
        return CloudRunImportLauncher(config.project(), config.importer_region(), config.importer_job())
    raise ValueError(f"IMPORTER_LAUNCHER must be local or cloud-run, got {kind!r}")
