"""The trainer with a SIGKILL drill installed: a test hook, not a production path.

    JOB_ID=... MANIFEST_URI=... python -m tests.integration.trainer_drill <epoch>

runs exactly what `python -m jobs.trainer` runs, except that the process
SIGKILLs itself once epoch <epoch> is checkpointed and its progress event is
published, as a preempted or out-of-memory Cloud Run task dies: no cleanup, no
`failed` event. The resume test starts the trainer this way (DrillLauncher),
then runs the task again as Cloud Run retries it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from jobs.trainer import main as trainer

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests.integration.trainer_drill"


def install(kill_after_epoch: int) -> None:
    """Wrap the trainer's per-epoch callback: SIGKILL after epoch `kill_after_epoch`."""
    reported = trainer.EpochReporter.on_fit_epoch_end

    def on_fit_epoch_end(self, fitting) -> None:
        reported(self, fitting)
        if self.last_epoch == kill_after_epoch:  # checkpointed and published by the real callback
            os.kill(os.getpid(), signal.SIGKILL)

    trainer.EpochReporter.on_fit_epoch_end = on_fit_epoch_end


class DrillLauncher:
    """A Launcher (common.cloud.launcher) that starts the trainer with the drill
    installed, as the local launcher starts `python -m jobs.trainer`; it keeps
    each process so the test can wait for it and read how it ended."""

    def __init__(self, kill_after_epoch: int, log_dir: Path):
        self.kill_after_epoch, self.log_dir = kill_after_epoch, log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    def launch(self, job_id: str, manifest_uri: str) -> str:
        from common.cloud.launcher import trainer_env
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **trainer_env(job_id, manifest_uri),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        with (self.log_dir / f"trainer-{job_id}.log").open("ab") as log:
            process = subprocess.Popen([sys.executable, "-m", MODULE, str(self.kill_after_epoch)], cwd=REPO,
                                       env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes[job_id] = process
        return f"drill-pid-{process.pid}"


if __name__ == "__main__":
    install(int(sys.argv[1]))
    sys.exit(trainer.main(trainer.Config.from_env()))
