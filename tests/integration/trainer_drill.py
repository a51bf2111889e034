"""The trainer with a SIGKILL drill installed: a test hook, not a production path.

    JOB_ID=... MANIFEST_URI=... python -m tests.integration.trainer_drill <epoch>

runs exactly what `python -m jobs.trainer` runs, except that the process
SIGKILLs itself once epoch <epoch> is checkpointed and its progress event is
published, as a preempted or out-of-memory Cloud Run task dies: no cleanup, no
`failed` event. The resume test starts the trainer this way (drill_launcher),
then runs the task again as Cloud Run retries it.

    JOB_ID=... MANIFEST_URI=... python -m tests.integration.trainer_drill hang

is a task that never ends and ignores SIGTERM (a trainer stuck in a hung
download): only the task timeout's SIGKILL ends it.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import time

from common.cloud import launcher, local_runner
from common.cloud.runner import LocalRunner
from jobs.trainer import main as trainer

MODULE = "tests.integration.trainer_drill"


def install(kill_after_epoch: int) -> None:
    """Wrap the trainer's per-epoch callback: SIGKILL after epoch `kill_after_epoch`."""
    reported = trainer.EpochReporter.on_fit_epoch_end

    def on_fit_epoch_end(self, fitting) -> None:
        reported(self, fitting)
        if self.last_epoch == kill_after_epoch:  # checkpointed and published by the real callback
            os.kill(os.getpid(), signal.SIGKILL)

    trainer.EpochReporter.on_fit_epoch_end = on_fit_epoch_end


def drill_launcher(kill_after_epoch: int | str, log_dir: Path,
                   settings: local_runner.JobSettings | None = None) -> LocalRunner:
    """The local launcher, starting the trainer with the drill installed; it keeps
    each process so the test can wait for it and read how it ended. Unless told
    otherwise its task is not retried: the test plays the retry."""
    return launcher.local(log_dir, MODULE, (str(kill_after_epoch),),
                          settings or local_runner.JobSettings(max_retries=0))


def hang() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"hung: attempt {os.environ.get('CLOUD_RUN_TASK_ATTEMPT')} of {os.environ.get('CLOUD_RUN_EXECUTION')}",
          flush=True)
    while True:
        time.sleep(3600)  # hung: nothing ends it but SIGKILL


if __name__ == "__main__":
    if sys.argv[1] == "hang":
        hang()
    install(int(sys.argv[1]))
    sys.exit(trainer.main(trainer.Config.from_env()))
