"""The trainer on several GPUs (jobs/trainer/main.py): Ultralytics' DDP pickles the callbacks into worker
processes with cloudpickle, where only the first rank reports, and the launching process takes on what it saw
(its epochs, cancel, metrics, its events' count, the time it ran out). No GPU here: DDP itself needs several;
what crosses the processes is tested as it crosses them."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest

from jobs.trainer.main import Config, EpochReporter, Job, TaskTimeUp, distributed
from jobs.trainer.progress_events import Progress

REPO = Path(__file__).resolve().parents[2]
EVENT = {"epoch": 3, "epochs": 10, "metrics": {"mAP50": 0.5}, "seconds": 60.0}
# A worker process rebuilds the job: its clients are made, never used, against addresses nobody serves.
NO_SERVICES = {"PUBSUB_EMULATOR_HOST": "127.0.0.1:9", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
               "GOOGLE_CLOUD_PROJECT": "p"}


@pytest.fixture
def job(tmp_path, monkeypatch) -> Job:
    for name, value in NO_SERVICES.items():
        monkeypatch.setenv(name, value)
    from common.cloud import clients
    clients.reset()
    config = Config("job-1", "gs://b/derived/training/job-1/manifest.json", "p", work_dir=tmp_path)
    progress = Progress("p", "training-progress", "job-1", run=2)
    progress.count = 1  # `started`, published before Ultralytics starts the workers
    return Job(config, bucket=None, progress=progress)


def test_several_gpus_are_distributed_one_or_the_cpu_are_not():
    assert distributed("0,1,2,3") and not distributed("0") and not distributed("cpu")


def test_the_callbacks_cross_into_a_worker_process_and_rebuild_the_job_there(job, tmp_path):
    """As Ultralytics' DDP file does: cloudpickle the callbacks, load them in a new interpreter."""
    reporter = EpochReporter(job)
    pickled = tmp_path / "callbacks.pkl"
    pickled.write_bytes(cloudpickle.dumps({"on_fit_epoch_end": [reporter.on_fit_epoch_end]}))
    worker = f"""
import json, pickle, sys
callback = pickle.loads(open({str(pickled)!r}, "rb").read())["on_fit_epoch_end"][0]
job = callback.__self__.job
print(json.dumps({{"job_id": job.config.job_id, "work_dir": str(job.config.work_dir), "run": job.progress.run,
                  "count": job.progress.count, "topic": job.progress.topic, "bucket": job.bucket.name}}))
"""
    done = subprocess.run([sys.executable, "-c", worker], capture_output=True, text=True, timeout=120,
                          env={**NO_SERVICES, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"job_id": "job-1", "work_dir": str(tmp_path), "run": 2, "count": 1,
                                       "topic": "projects/p/topics/training-progress", "bucket": "b"}


def test_a_worker_of_another_rank_reports_nothing(job, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    EpochReporter(job).on_fit_epoch_end(trainer=None)  # it would read the trainer, upload and publish otherwise
    assert not job.ddp_outcome.exists()


def test_the_first_rank_out_of_time_tells_the_launching_process_which_continues(job, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    worker = EpochReporter(job)
    worker.slowest_epoch, worker.last_epoch, worker.last_metrics = 60.0, 3, {"mAP50": 0.5}
    job.progress.count = 4  # it published epochs 1 to 3
    job.config = Config("job-1", job.config.manifest_uri, "p", work_dir=job.config.work_dir, task_timeout=3600,
                        started=time.monotonic() - 3440)  # ~52 s left, 61 needed
    with pytest.raises(TaskTimeUp):
        worker.stop_if_out_of_time(EVENT)
    worker.save_outcome()

    launching = EpochReporter(Job(job.config, bucket=None, progress=Progress("p", "t", "job-1", run=2)))
    launching.job.progress.count = 1
    stop = launching.adopt(job.ddp_outcome)
    assert (stop.epoch, stop.epochs, stop.epoch_event) == (3, 10, EVENT) and 0 < stop.seconds_left < 61
    assert launching.job.progress.count == 4, "its next event numbers above the workers'"
    assert (launching.last_epoch, launching.last_metrics, launching.cancelled) == (3, {"mAP50": 0.5}, False)


def test_a_cancel_and_the_final_metrics_reach_the_launching_process(job, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    worker = EpochReporter(job)
    worker.cancelled, worker.last_epoch, worker.final_metrics = True, 2, {"mAP50": 0.7}
    worker.save_outcome()
    launching = EpochReporter(Job(job.config, bucket=None, progress=job.progress))
    assert launching.adopt(job.ddp_outcome) is None
    assert (launching.cancelled, launching.last_epoch, launching.final_metrics) == (True, 2, {"mAP50": 0.7})


def test_workers_that_saved_nothing_change_nothing(job):
    launching = EpochReporter(job)
    assert launching.adopt(job.ddp_outcome) is None
    assert (launching.last_epoch, launching.cancelled, job.progress.count) == (0, False, 1)
