"""One runner for work longer than a function call: an execution of N tasks of a Cloud Run Job.

Work that fits a function call (a dataset job's unit, an export's part) runs in the function that receives its
message. Longer work (a training run, an import's phase) is an Execution: which variables it gets, which of them
say what it is, how many tasks run it. A Runner starts one:

- CloudRunRunner runs an execution of a Cloud Run Job (the job's task timeout and retries apply);
- LocalRunner runs it as a local Cloud Run Job (common/cloud/local_runner.py): the same entry point as
  subprocesses, the task timeout (SIGTERM, then SIGKILL) and the retries enforced, so the local stack and the
  tests see production's behaviour.
- VertexRunner (common/cloud/vertex_runner.py) runs it as a Vertex AI custom job on one machine with several GPUs
  (a training that asks for them).

`start_once` starts an execution unless one with the same identity exists, so a redelivered request (a start
that raised after Cloud Run created the execution, or whose record failed) never starts a second one.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from common.cloud import clients, local_runner
from common.platform import config

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Execution:
    owner: str                # the job it runs for (a training job's id, an import's id)
    env: dict[str, str]       # the variables its tasks get
    identity: tuple[str, ...]  # the names in env that say which execution it is (a redelivery finds it by them)
    local_name: str           # its name on the local runner (and the record the watch reads there)
    log_name: str             # its log file on the local runner; "{task}" stands for the task's index
    tasks: int = 1

    @property
    def identifying(self) -> dict[str, str]:
        return {name: self.env[name] for name in self.identity}


class Runner(Protocol):
    def start(self, execution: Execution) -> str:
        """Start the execution; its name (what the watch reads its state by)."""

    def existing(self, execution: Execution) -> str | None:
        """The name of an execution already started with the same identity, if there is one."""


def start_once(runner: Runner, execution: Execution) -> str:
    return runner.existing(execution) or runner.start(execution)


class CloudRunRunner:
    def __init__(self, project: str, region: str, job: str):
        self.name = f"projects/{project}/locations/{region}/jobs/{job}"

    def start(self, execution: Execution) -> str:
        from google.cloud import run_v2  # the types only; the client comes from common.cloud.clients
        variables = [run_v2.EnvVar(name=k, value=v) for k, v in execution.env.items()]
        request = run_v2.RunJobRequest(name=self.name, overrides=run_v2.RunJobRequest.Overrides(
            container_overrides=[run_v2.RunJobRequest.Overrides.ContainerOverride(env=variables)],
            task_count=execution.tasks))
        operation = clients.cloud_run_jobs().run_job(request=request)
        return operation.metadata.name  # the execution; run_job returns once it is created

    def existing(self, execution: Execution) -> str | None:
        """The newest execution of the job whose overrides hold the execution's identity."""
        wanted = execution.identifying
        for found in clients.cloud_run_executions().list_executions(parent=self.name,
                                                                    timeout=config.cloud_deadline()):
            overrides = {var.name: var.value for container in found.template.containers for var in container.env}
            if all(overrides.get(name) == value for name, value in wanted.items()):
                return found.name
        return None


class LocalRunner:
    """Runs `python -m <module> <args>` as local job `job` (its settings: <log dir>/jobs/<job>.json, read at each
    start unless `settings` is given; `retries` overrides their max_retries), supervised by this process, with
    `env` added to every execution's variables. `module` may be a test's wrapper of the real entry point."""

    def __init__(self, job: str, log_dir: Path, module: str, args: tuple[str, ...] = (),
                 settings: local_runner.JobSettings | None = None, retries: int | None = None,
                 env: dict[str, str] | None = None):
        self.job, self.log_dir, self.argv = job, log_dir, [sys.executable, "-m", module, *args]
        self.settings, self.retries, self.env = settings, retries, env or {}
        self.executions: dict[str, local_runner.LocalExecution] = {}  # by owner: its latest

    @property
    def processes(self) -> dict[str, subprocess.Popen]:
        """The current attempt of the first task of each owner's latest execution."""
        return {owner: execution.processes[0] for owner, execution in self.executions.items()}

    def start(self, execution: Execution) -> str:
        settings = self.settings or local_runner.job_settings(self.job)
        if self.retries is not None:
            settings = dataclasses.replace(settings, max_retries=self.retries)
        self.executions[execution.owner] = local_runner.LocalExecution(
            execution.local_name, self.argv, {**execution.env, **self.env}, settings,
            lambda index: self.log_dir / execution.log_name.format(task=index), spawn_local,
            execution.tasks).start()
        return execution.local_name

    def existing(self, execution: Execution) -> str | None:
        return execution.local_name if local_runner.read_record(execution.local_name) else None


def spawn_local(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """A job's entry point as a subprocess of this process, with the repository on its path, logging to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
