"""The trainer with a SIGKILL drill installed: a test hook, not a production path.

    JOB_ID=... MANIFEST_URI=... python -m tests.integration.trainer_drill <epoch>

runs exactly what `python -m jobs.trainer` runs, except that the process
SIGKILLs itself once epoch <epoch> is checkpointed and its progress event is
published, as a preempted or out-of-memory Cloud Run task dies: no cleanup, no
`failed` event. The resume test starts the trainer this way (drill_launcher),
then runs the task again as Cloud Run retries it.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from common.cloud.launcher import LocalLauncher
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


def drill_launcher(kill_after_epoch: int, log_dir: Path) -> LocalLauncher:
    """The local launcher, starting the trainer with the drill installed; it keeps
    each process so the test can wait for it and read how it ended."""
    return LocalLauncher(log_dir, MODULE, (str(kill_after_epoch),))


if __name__ == "__main__":
    install(int(sys.argv[1]))
    sys.exit(trainer.main(trainer.Config.from_env()))
