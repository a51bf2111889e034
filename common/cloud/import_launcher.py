"""Starting the import job: the Cloud Run Job IMPORTER_JOB with N tasks, or locally N subprocesses.

Both run `python -m jobs.importer` with IMPORT_ID and IMPORT_PHASE, and each
task with CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT and CLOUD_RUN_TASK_ATTEMPT.
Cloud Run runs a failed task again up to the job's max_retries; the local
launcher does the same, so a task that dies half-way is retried and resumes
in both.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Protocol

from common.cloud import executions, launcher
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
    """Each task a subprocess of this process, run again when it fails, up to `retries` times
    (logs: <log_dir>/import-<id>-<phase>-<task>.log). A test may name another entry module."""

    def __init__(self, log_dir: Path, module: str = "jobs.importer", args: tuple[str, ...] = (),
                 retries: int | None = None):
        self.log_dir, self.argv = log_dir, [sys.executable, "-m", module, *args]
        self.retries = config.import_task_retries() if retries is None else retries
        self.supervisors: dict[tuple[str, str], list[threading.Thread]] = {}

    def launch(self, import_id: str, phase: str, task_count: int) -> str:
        threads = [threading.Thread(target=self._run_task, args=(import_id, phase, index, task_count), daemon=True)
                   for index in range(task_count)]
        for thread in threads:
            thread.start()
        self.supervisors[(import_id, phase)] = threads
        return f"{LOCAL_PREFIX}{import_id}-{phase}"

    def _run_task(self, import_id: str, phase: str, index: int, count: int) -> None:
        for attempt in range(self.retries + 1):
            env = {**import_env(import_id, phase), "CLOUD_RUN_TASK_INDEX": str(index),
                   "CLOUD_RUN_TASK_COUNT": str(count), "CLOUD_RUN_TASK_ATTEMPT": str(attempt)}
            log = self.log_dir / f"import-{import_id}-{phase}-{index}.log"
            if launcher.spawn_local(self.argv, env, log).wait() == 0:
                return

    def existing(self, import_id: str, phase: str) -> str | None:
        running = any(thread.is_alive() for thread in self.supervisors.get((import_id, phase), []))
        if running or executions.local_process_with(import_env(import_id, phase)):
            return f"{LOCAL_PREFIX}{import_id}-{phase}"
        return None


def from_config() -> ImportLauncher:
    kind = config.importer_launcher()
    if kind == "local":
        return LocalImportLauncher(config.import_log_dir())
    if kind == "cloud-run":
        return CloudRunImportLauncher(config.project(), config.importer_region(), config.importer_job())
    raise ValueError(f"IMPORTER_LAUNCHER must be local or cloud-run, got {kind!r}")
