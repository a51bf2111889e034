"""When the trainer stops to continue in the next execution (jobs/trainer/main.py): its deadline is the task
timeout less a reserve for exiting, and after an epoch it stops unless one more (as slow as its slowest, with
the checkpoint upload; two before the last, for evaluating and exporting) ends before it."""
from __future__ import annotations

import time

import pytest

from common.platform import limits
from jobs.trainer.main import Config, EpochReporter, Job, TaskTimeUp


def config(timeout: float, elapsed: float = 0.0) -> Config:
    return Config("job-1", "gs://b/derived/training/job-1/manifest.json", "p", task_timeout=timeout,
                  started=time.monotonic() - elapsed)


@pytest.mark.parametrize("timeout, reserve", [(20, 5), (600, 18), (3600, 108), (86400, 120)])
def test_the_deadline_keeps_a_reserve_of_three_percent_from_5_s_to_2_minutes(timeout, reserve):
    at = config(timeout)
    assert at.deadline == pytest.approx(at.started + timeout - reserve)


def test_without_its_timeout_in_the_environment_the_trainer_counts_on_a_gpu_task_hour():
    env = {"JOB_ID": "job-1", "MANIFEST_URI": "gs://b/m.json", "GOOGLE_CLOUD_PROJECT": "p"}
    assert Config.from_env(env).task_timeout == limits.GPU_TASK_TIMEOUT_MAX_SECONDS == 3600
    assert Config.from_env({**env, "TASK_TIMEOUT_SECONDS": "40"}).task_timeout == 40


def reporter(timeout: float, elapsed: float, slowest_epoch: float, slowest_upload: float = 1.0) -> EpochReporter:
    watching = EpochReporter(Job(config(timeout, elapsed), bucket=None, progress=None))
    watching.slowest_epoch, watching.slowest_upload = slowest_epoch, slowest_upload
    return watching


EPOCH = {"epoch": 3, "epochs": 10, "metrics": {"mAP50": 0.5}, "seconds": 60.0}


def test_an_epoch_that_fits_goes_on():
    reporter(3600, elapsed=1000, slowest_epoch=60).stop_if_out_of_time(EPOCH)  # ~2400 s left


def test_an_epoch_that_would_end_past_the_deadline_stops_with_the_epoch_it_repeats():
    with pytest.raises(TaskTimeUp) as stopped:
        reporter(3600, elapsed=3440, slowest_epoch=60).stop_if_out_of_time(EPOCH)  # ~52 s left, 61 needed
    assert (stopped.value.epoch, stopped.value.epochs, stopped.value.epoch_event) == (3, 10, EPOCH)
    assert 0 < stopped.value.seconds_left < 61


def test_before_the_last_epoch_its_evaluation_and_export_must_fit_too():
    before_last = {**EPOCH, "epoch": 9}
    reporter(3600, elapsed=3400, slowest_epoch=60).stop_if_out_of_time(EPOCH)  # ~92 s left: one epoch fits
    with pytest.raises(TaskTimeUp):
        reporter(3600, elapsed=3400, slowest_epoch=60).stop_if_out_of_time(before_last)  # 121 needed: 2 epochs
