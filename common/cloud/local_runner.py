"""A Cloud Run Job on this machine: the local stack runs long work (the trainer, the importer) as Cloud Run runs it.

An execution runs `task_count` tasks, each a subprocess given Cloud Run's task variables (CLOUD_RUN_EXECUTION,
CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT, CLOUD_RUN_TASK_ATTEMPT) and its timeout (TASK_TIMEOUT_SECONDS). An
attempt that outlives the task timeout gets SIGTERM, then SIGKILL after the grace period (Cloud Run's 10 s); a
failed attempt (a non-zero exit, or stopped at the timeout) runs again, as a new attempt of the same execution, up
to max_retries times. The job's settings are read when an execution starts, from <log dir>/jobs/<job>.json, which
the stack writes from infra/settings.json (`gcloud run jobs update` in production; update_job_settings here).

Each execution keeps a record, <log dir>/executions/<name>.json, rewritten at every change: what Cloud Run's
Executions API answers of it (running, succeeded or failed, when it ended, how). The watch reads it
(common/cloud/executions.py).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from common.platform import config, limits, log

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(frozen=True)
class JobSettings:
    """A Cloud Run Job's settings that shape its executions (infra/settings.json's task_timeout_seconds and
    max_retries); grace_seconds is Cloud Run's own, a setting here only so a test need not wait 10 s. env: the
    job's own variables, which every task gets (Terraform sets the trainer's TRAINER_DATA_MOUNT so)."""
    task_timeout_seconds: float = limits.GPU_TASK_TIMEOUT_MAX_SECONDS
    max_retries: int = 3
    grace_seconds: float = limits.SIGTERM_GRACE_SECONDS
    env: dict[str, str] = field(default_factory=dict)


def jobs_dir() -> Path:
    return config.trainer_log_dir() / "jobs"


def records_dir() -> Path:
    return config.trainer_log_dir() / "executions"


def job_settings(job: str) -> JobSettings:
    """The settings of local job `job` (trainer, importer) as the stack wrote them; the defaults without a stack."""
    path = jobs_dir() / f"{job}.json"
    return JobSettings(**json.loads(path.read_text())) if path.exists() else JobSettings()


def write_job_settings(job: str, settings: JobSettings, directory: Path | None = None) -> None:
    directory = directory or jobs_dir()
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / f"{job}.json", asdict(settings))


def update_job_settings(job: str, **changes) -> JobSettings:
    """Change some settings of a local job, as `gcloud run jobs update` does: executions started from now on
    have them. The settings before, to restore."""
    before = job_settings(job)
    write_job_settings(job, JobSettings(**{**asdict(before), **changes}))
    return before


def read_record(name: str, directory: Path | None = None) -> dict | None:
    path = (directory or records_dir()) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _write_json(path: Path, value: dict) -> None:
    """Written whole or not at all: a reader never sees half a record."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(json.dumps(value))
    os.replace(partial, path)


class LocalExecution:
    """One execution of a local job. start() starts each task's first attempt before it returns (so the caller
    may look at the processes at once); a thread per task supervises it from then on."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], settings: JobSettings,
                 log_path: Path | Callable[[int], Path], spawn, task_count: int = 1, directory: Path | None = None):
        """`log_path`: where every task logs, or each task index's own log."""
        self.name, self.argv, self.env, self.settings = name, argv, env, settings
        self.log_path = log_path if callable(log_path) else lambda index: log_path
        self.spawn, self.task_count = spawn, task_count
        self.path = (directory or records_dir()) / f"{name}.json"
        self.lock = threading.Lock()
        self.processes: dict[int, subprocess.Popen] = {}  # task index -> its current attempt
        self.record: dict[str, Any] = {  # as JSON, on disk
            "name": name, "env": env, "task_count": task_count, "settings": asdict(settings),
            "supervisor": os.getpid(), "created_at": time.time(), "completion_time": None,
            "tasks": [{"index": i, "state": RUNNING, "attempts": []} for i in range(task_count)]}

    def start(self) -> LocalExecution:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for index in range(self.task_count):
            self._spawn(index, 0)
        for index in range(self.task_count):
            threading.Thread(target=self._supervise, args=(index,), daemon=True,
                             name=f"{self.name}-task{index}").start()
        return self

    def _spawn(self, index: int, attempt: int) -> None:
        env = {**self.settings.env, **self.env, "CLOUD_RUN_EXECUTION": self.name, "CLOUD_RUN_TASK_INDEX": str(index),
               "CLOUD_RUN_TASK_COUNT": str(self.task_count), "CLOUD_RUN_TASK_ATTEMPT": str(attempt),
               "TASK_TIMEOUT_SECONDS": str(self.settings.task_timeout_seconds)}
        process = self.spawn(self.argv, env, self.log_path(index))
        with self.lock:
            self.processes[index] = process
            self.record["tasks"][index]["attempts"].append(
                {"attempt": attempt, "pid": process.pid, "started_at": time.time(), "ended_at": None,
                 "exit_code": None, "timed_out": False})
            self._save()

    def _supervise(self, index: int) -> None:
        attempt = 0
        while True:
            exit_code, timed_out = self._wait(self.processes[index])
            succeeded = exit_code == 0 and not timed_out
            with self.lock:
                self.record["tasks"][index]["attempts"][-1].update(ended_at=time.time(), exit_code=exit_code,
                                                                   timed_out=timed_out)
                if succeeded or attempt >= self.settings.max_retries:
                    self.record["tasks"][index]["state"] = SUCCEEDED if succeeded else FAILED
                    self._end_if_done()
                    self._save()
                    return
                self._save()
            attempt += 1
            log.info("local task retried", execution=self.name, task=index, attempt=attempt, exit_code=exit_code,
                     timed_out=timed_out)
            self._spawn(index, attempt)

    def _wait(self, process: subprocess.Popen) -> tuple[int, bool]:
        """Its exit code, and whether the task timeout stopped it: SIGTERM at the timeout, SIGKILL after the grace."""
        try:
            return process.wait(timeout=self.settings.task_timeout_seconds), False
        except subprocess.TimeoutExpired:
            pass
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=self.settings.grace_seconds), True
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(), True

    def _end_if_done(self) -> None:
        tasks = self.record["tasks"]
        if any(task["state"] == RUNNING for task in tasks):
            return
        self.record.update(completion_time=time.time(),
                           succeeded_count=sum(task["state"] == SUCCEEDED for task in tasks),
                           failed_count=sum(task["state"] == FAILED for task in tasks),
                           message="; ".join(task_failure(self.name, task, self.settings) for task in tasks
                                             if task["state"] == FAILED))

    def _save(self) -> None:
        _write_json(self.path, self.record)


def task_failure(execution: str, task: dict, settings: dict | JobSettings) -> str:
    """How a failed task ended, in Cloud Run's manner: its last attempt, and how many retries it had."""
    settings = asdict(settings) if isinstance(settings, JobSettings) else settings
    last = task["attempts"][-1]
    if last["timed_out"]:
        how = (f"was stopped by the task timeout of {settings['task_timeout_seconds']:g} s "
               f"(SIGTERM, then SIGKILL {settings['grace_seconds']:g} s later if still running)")
    elif last["exit_code"] is not None and last["exit_code"] < 0:
        how = f"was killed by signal {-last['exit_code']}"
    else:
        how = f"exited with code {last['exit_code']}"
    retries = len(task["attempts"]) - 1
    return (f"Task {execution}-task{task['index']} failed after {retries} {'retry' if retries == 1 else 'retries'}: "
            f"its last attempt ({last['attempt']}) {how}")
