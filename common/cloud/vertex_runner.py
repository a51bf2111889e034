"""A training on several GPUs: an Execution (common/cloud/runner.py) as a Vertex AI custom job.

One machine (accelerators.MACHINES: the machine type that has `count` GPUs of the type asked for), one replica,
the trainer's image running `python -m jobs.trainer` with the execution's variables and the trainer job's own
(the project, the progress topic, the task timeout, Ultralytics' safety switches), as the trainer's service
account. The trainer sees several GPUs and trains with Ultralytics' DDP over all of them (jobs/trainer/main.py).

Vertex AI's REST API through google-auth's AuthorizedSession (public interfaces of google-auth and requests,
which the training function and the watch pin already): google-cloud-aiplatform would add its SDK's whole
dependency tree (BigQuery, Resource Manager, shapely, ...) to two small functions for three calls.

Launch once: every custom job carries its execution's identity as labels (yd_job_id, yd_continues_run) and a
display name made of it; `existing` lists the custom jobs with those labels before `start` creates one, so a
redelivered request whose create raised after Vertex AI made the job finds it instead of making a second.
The watch reads a custom job's state (`execution_state`) into the same ExecutionState as a Cloud Run execution's.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.api_core import exceptions as api_exceptions

from common.cloud import clients
from common.cloud.runner import Execution
from common.domain.accelerators import Accelerator
from common.domain.training_job import ExecutionState
from common.platform import config

RUNNING_STATES = ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_CANCELLING",
                  "JOB_STATE_UPDATING", "JOB_STATE_PAUSED")
SUCCEEDED = "JOB_STATE_SUCCEEDED"
LABEL_PREFIX = "yd_"
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{1,63}$")
MARKER = {"yolodrop": "trainer"}  # every custom job this runner makes: what an operator filters the console by
LIST_PAGES = 10  # at most 10 pages of 100 custom jobs of one identity (there is one, or a few after a bug)
BOOT_DISK_GB = 200  # the image, the training set as materialized and the run's files


@dataclass(frozen=True)
class Trainer:
    """What every custom job of the trainer gets: the image, the account it runs as, how long it may run,
    and the trainer job's own variables."""
    image: str
    service_account: str
    timeout_seconds: int
    env: dict[str, str]


def identity_labels(execution: Execution) -> dict[str, str]:
    labels = {}
    for name, value in execution.identifying.items():
        if not LABEL_VALUE.match(value):
            raise ValueError(f"{name}={value!r} cannot be a Vertex AI label value (1-63 of a-z 0-9 _ -)")
        labels[LABEL_PREFIX + name.lower()] = value
    return labels


def display_name(execution: Execution) -> str:
    return "-".join(["yolodrop-trainer", *execution.identifying.values()])[:128]


def custom_job(execution: Execution, accelerator: Accelerator, trainer: Trainer) -> dict[str, Any]:
    """The CustomJob (REST, v1) that runs the execution on one machine with the accelerator's GPUs. Vertex AI
    restarts the job when its machine restarts (maintenance): the trainer resumes from its bucket checkpoint."""
    env = {**trainer.env, **execution.env}
    return {
        "displayName": display_name(execution),
        "labels": {**MARKER, **identity_labels(execution)},
        "jobSpec": {
            "workerPoolSpecs": [{
                "machineSpec": {"machineType": accelerator.machine_type,
                                "acceleratorType": accelerator.vertex_type,
                                "acceleratorCount": accelerator.count},
                "replicaCount": "1",
                "diskSpec": {"bootDiskType": "pd-ssd", "bootDiskSizeGb": BOOT_DISK_GB},
                "containerSpec": {"imageUri": trainer.image, "command": ["python", "-m", "jobs.trainer"],
                                  "env": [{"name": name, "value": value} for name, value in env.items()]},
            }],
            "serviceAccount": trainer.service_account,
            "scheduling": {"timeout": f"{trainer.timeout_seconds}s", "restartJobOnWorkerRestart": True},
        },
    }


def list_filter(execution: Execution) -> str:
    """The custom jobs' list filter (AIP-160) that finds those carrying the execution's identity labels."""
    return " AND ".join(f'labels.{key}="{value}"' for key, value in identity_labels(execution).items())


def matching(found: list[dict[str, Any]], execution: Execution) -> str | None:
    """The newest custom job among `found` (a list's customJobs) whose identity labels are exactly the
    execution's: a job's first execution never matches one of its continuations."""
    wanted = identity_labels(execution)
    same = [job for job in found if {key: value for key, value in (job.get("labels") or {}).items()
                                     if key.startswith(LABEL_PREFIX)} == wanted]
    newest = max(same, key=lambda job: timestamp(job["createTime"]) if job.get("createTime") else 0.0, default=None)
    return None if newest is None else str(newest["name"])


class VertexRunner:
    """A Runner (common/cloud/runner.py): each execution a Vertex AI custom job in `region`."""

    def __init__(self, project: str, region: str, accelerator: Accelerator, trainer: Trainer):
        self.parent = f"projects/{project}/locations/{region}"
        self.accelerator, self.trainer = accelerator, trainer

    def start(self, execution: Execution) -> str:
        try:
            created = _call("POST", f"{self.parent}/customJobs", json=custom_job(execution, self.accelerator,
                                                                                 self.trainer))
        except api_exceptions.TooManyRequests as refused:
            quota = quota_refusal(refused)
            if quota is None:
                raise
            raise quota from refused
        return str(created["name"])

    def existing(self, execution: Execution) -> str | None:
        labels = list_filter(execution)
        found: list[dict[str, Any]] = []
        token = ""
        for _ in range(LIST_PAGES):
            page = _call("GET", f"{self.parent}/customJobs",
                         params={"filter": labels, "pageSize": 100, **({"pageToken": token} if token else {})})
            found += page.get("customJobs") or []
            token = page.get("nextPageToken") or ""
            if not token:
                break
        return matching(found, execution)


class QuotaExceeded(RuntimeError):
    """Vertex AI refused the custom job for the project's quota: no retry raises a quota, so the job fails at
    once saying which quota, where a 429 of the request rate is retried."""


def quota_refusal(refused: api_exceptions.GoogleAPICallError) -> QuotaExceeded | None:
    """The quota refusal a 429 is ('The following quota metrics exceed quota limits: ...', or a QuotaFailure
    'Quota failure for project ...'), None for any other (a rate limit: retried)."""
    message = str(refused.message or "")
    if "exceed quota limits" not in message and "quota failure" not in message.lower():
        return None
    return QuotaExceeded(f"Vertex AI refused the custom job for the project's quota ({message}): ask for more "
                         "(Google Cloud console, IAM & Admin > Quotas, the metric it names, in the trainer's "
                         "region) or train with fewer GPUs or another type")


def read(name: str) -> dict[str, Any] | None:
    """The custom job, or None when Vertex AI no longer knows it."""
    try:
        return _call("GET", name)
    except api_exceptions.NotFound:
        return None


def _call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One call of Vertex AI's REST API in the path's region; an error raised as google.api_core's (so
    common.platform.failures tells a transient one)."""
    response = clients.vertex_session().request(method, f"{endpoint(path)}/v1/{path}",
                                                timeout=config.cloud_deadline(), **kwargs)
    if response.status_code >= 400:
        raise api_exceptions.from_http_response(response)
    answer: dict[str, Any] = response.json()
    return answer


def endpoint(path: str) -> str:
    """Vertex AI's regional endpoint for a resource under projects/P/locations/R/..."""
    return f"https://{path.split('/')[3]}-aiplatform.googleapis.com"


# ---- the watch ---------------------------------------------------------------------------

def execution_state(name: str, job: dict[str, Any] | None, rerun: str) -> ExecutionState:
    """What a custom job's state says, as the watch reads a Cloud Run execution's: running while Vertex AI
    queues, provisions or runs it; then succeeded, or ended with how."""
    if job is None:
        return ExecutionState(name, running=False, detail="Vertex AI no longer knows this custom job", rerun=rerun)
    state = str(job.get("state") or "JOB_STATE_UNSPECIFIED")
    if state in RUNNING_STATES or state == "JOB_STATE_UNSPECIFIED":
        return ExecutionState(name, running=True)
    ended = job.get("endTime") or job.get("updateTime")
    return ExecutionState(name, running=False, succeeded=state == SUCCEEDED,
                          ended_at=timestamp(ended) if ended else None,
                          detail="" if state == SUCCEEDED else ended_detail(state, job), rerun=rerun)


def ended_detail(state: str, job: dict[str, Any]) -> str:
    how = state.removeprefix("JOB_STATE_").lower().replace("_", " ")
    message = (job.get("error") or {}).get("message")
    return f"the Vertex AI custom job ended {how}" + (f": {message}" if message else "")


def timestamp(text: str) -> float:
    """An RFC 3339 time as Vertex AI writes it (nanoseconds, Z) in seconds since the epoch."""
    match = re.match(r"^(.*?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, zone = match.groups()
    seconds = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).timestamp()
    return seconds + (float(fraction) if fraction else 0.0)


def rerun_command(name: str, job_id: str) -> str:
    """The commands that run the same custom job again (its spec, its variables): the trainer resumes from
    the job's bucket checkpoint."""
    region = name.split("/")[3]
    return (f"gcloud ai custom-jobs describe {shlex.quote(name)} --format=json | jq .jobSpec > spec.json && "
            f"gcloud ai custom-jobs create --region={region} --display-name=yolodrop-trainer-{job_id}-rerun "
            "--config=spec.json")
