"""The local Cloud Run Job (common/cloud/local_runner.py) with real processes: Cloud Run's task variables, the
task timeout (SIGTERM, then SIGKILL after the grace period), retries as new attempts of the same execution, and
what the watch reads of it (common/cloud/executions.local_run_state)."""
from __future__ import annotations

import sys
import textwrap

import pytest

from common.cloud import executions, local_runner
from common.cloud.runner import spawn_local
from common.domain.training_job import local_execution_name
from infra.local.client import wait_for

# A task that prints its variables, then does what its first argument says for its attempt.
TASK = textwrap.dedent("""
    import os, signal, sys, time
    print("ATTEMPT", os.environ["CLOUD_RUN_TASK_ATTEMPT"], os.environ["CLOUD_RUN_EXECUTION"],
          os.environ["CLOUD_RUN_TASK_INDEX"], os.environ["CLOUD_RUN_TASK_COUNT"], os.environ["TASK_TIMEOUT_SECONDS"],
          flush=True)
    print("JOB_VARIABLE", os.environ.get("JOB_VARIABLE"), os.environ["JOB_ID"], flush=True)
    plan = sys.argv[1].split(",")[int(os.environ["CLOUD_RUN_TASK_ATTEMPT"])]
    if plan == "hang":        # deaf to SIGTERM: only SIGKILL ends it
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if plan in ("hang", "sleep"):
        time.sleep(3600)
    sys.exit(int(plan))
""")


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINER_LOG_DIR", str(tmp_path))
    return tmp_path


def run(name: str, plan: str, settings: local_runner.JobSettings, log_dir, task_count: int = 1):
    execution = local_runner.LocalExecution(name, [sys.executable, "-c", TASK, plan], {"JOB_ID": name}, settings,
                                            log_dir / f"{name}.log", spawn_local, task_count).start()
    return execution


def ended(name: str, timeout: float = 60) -> dict:
    return wait_for(lambda: local_runner.read_record(name), lambda record: bool(record and record["completion_time"]),
                    timeout, f"execution {name} to end")


def attempts_logged(log_dir, name: str) -> list[list[str]]:
    return [line.split()[1:] for line in (log_dir / f"{name}.log").read_text().splitlines()
            if line.startswith("ATTEMPT")]


def test_a_task_that_succeeds_runs_once_with_cloud_runs_variables(log_dir):
    run("ok", "0", local_runner.JobSettings(task_timeout_seconds=60, max_retries=3), log_dir, task_count=2)
    record = ended("ok")
    assert (record["succeeded_count"], record["failed_count"], record["message"]) == (2, 0, "")
    assert [len(task["attempts"]) for task in record["tasks"]] == [1, 1]
    assert sorted(attempts_logged(log_dir, "ok")) == [["0", "ok", "0", "2", "60"], ["0", "ok", "1", "2", "60"]]
    state = executions.local_run_state({"id": "job-x", "execution": "ok"})
    assert (state.running, state.succeeded, state.ended_at) == (False, True, record["completion_time"])


def test_a_failed_task_is_run_again_as_the_next_attempt_of_the_same_execution(log_dir):
    run("flaky", "1,3,0", local_runner.JobSettings(task_timeout_seconds=60, max_retries=3), log_dir)
    record = ended("flaky")
    assert record["succeeded_count"] == 1 and sum(len(task["attempts"]) - 1 for task in record["tasks"]) == 2
    assert [a["exit_code"] for a in record["tasks"][0]["attempts"]] == [1, 3, 0]
    assert [line[:2] for line in attempts_logged(log_dir, "flaky")] == [["0", "flaky"], ["1", "flaky"], ["2", "flaky"]]


def test_a_task_past_its_timeout_gets_sigterm_then_sigkill_and_fails_once_out_of_retries(log_dir):
    settings = local_runner.JobSettings(task_timeout_seconds=1, max_retries=1, grace_seconds=0.5)
    run("hung", "hang,sleep", settings, log_dir)
    assert executions.local_run_state({"id": "job-x", "execution": "hung"}).running
    record = ended("hung")
    attempts = record["tasks"][0]["attempts"]
    # the first ignores SIGTERM and is killed after the grace; the second ends at SIGTERM
    assert [(a["timed_out"], a["exit_code"]) for a in attempts] == [(True, -9), (True, -15)]
    assert all(a["ended_at"] - a["started_at"] >= 1 for a in attempts)
    assert record["failed_count"] == 1
    state = executions.local_run_state({"id": "job-x", "execution": "hung", "manifest": "gs://b/m.json"})
    assert (state.running, state.succeeded) == (False, False)
    assert "Task hung-task0 failed after 1 retry: its last attempt (1) was stopped by the task timeout of 1 s" \
        in state.detail


def test_every_task_gets_the_jobs_own_variables_and_the_executions_override_them(log_dir):
    settings = local_runner.JobSettings(task_timeout_seconds=60, max_retries=0,
                                        env={"JOB_VARIABLE": "/mnt/data", "JOB_ID": "the job's"})
    run("variables", "0", settings, log_dir)
    ended("variables")
    logged = [line.split()[1:] for line in (log_dir / "variables.log").read_text().splitlines()
              if line.startswith("JOB_VARIABLE")]
    assert logged == [["/mnt/data", "variables"]]


def test_a_failure_out_of_retries_says_its_exit_code(log_dir):
    run("broken", "2,2", local_runner.JobSettings(task_timeout_seconds=60, max_retries=1), log_dir)
    assert "failed after 1 retry: its last attempt (1) exited with code 2" in ended("broken")["message"]


def test_the_settings_are_the_jobs_as_last_updated_and_an_execution_without_a_record_is_not_running(log_dir):
    assert local_runner.job_settings("trainer") == local_runner.JobSettings()  # no stack: Cloud Run's GPU hour
    local_runner.write_job_settings("trainer", local_runner.JobSettings(task_timeout_seconds=3600, max_retries=3))
    before = local_runner.update_job_settings("trainer", task_timeout_seconds=40)
    assert before.task_timeout_seconds == 3600
    assert local_runner.job_settings("trainer") == local_runner.JobSettings(task_timeout_seconds=40, max_retries=3)
    name = local_execution_name("job-none")
    state = executions.local_run_state({"id": "job-none", "execution": name, "manifest": "gs://b/m.json"})
    assert not state.running and "no record of this execution" in state.detail
