"""The import job with a drill installed: a test hook, not a production path.

    IMPORT_ID=... python -m tests.integration.import_drill kill <n> <record-file>
    IMPORT_ID=... python -m tests.integration.import_drill pause <n>
    IMPORT_ID=... python -m tests.integration.import_drill die <n>

runs exactly what `python -m jobs.importer` runs, except that after <n> members
are uploaded, on the task's first attempt:
  kill   the process SIGKILLs itself, as a preempted Cloud Run task dies (no
         cleanup); every member it wrote is appended to <record-file> with its
         generation first, so the test can tell whether a retry wrote it again;
  pause  it waits until the import has ended (a cancel), so that the test
         cancels an import known to be half-way;
  die    as kill, on every attempt: the task runs out of retries.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from common.cloud import import_store
from common.cloud import import_launcher
from common.cloud.runner import LocalRunner
from common.domain import imports
from common.services import archive_import, import_job
from infra.local.client import wait_for
from jobs.importer.__main__ import task_from_env

MODULE = "tests.integration.import_drill"


def install(mode: str, after: int, record: Path | None) -> None:
    if mode in ("kill", "die"):
        install_kill(after, record)
    else:
        install_pause(after)


def install_kill(after: int, record: Path | None) -> None:
    upload = archive_import.Unpacker._upload
    lock, uploaded = threading.Lock(), []

    def drilled(self, target, data, size):
        blob = upload(self, target, data, size)
        with lock:
            uploaded.append(blob)
            if record:
                with record.open("a") as out:
                    out.write(f"{blob.name} {blob.generation}\n")
            if len(uploaded) == after:
                os.kill(os.getpid(), signal.SIGKILL)
        return blob

    archive_import.Unpacker._upload = drilled


def install_pause(after: int) -> None:
    """Before member `after` + 1: the first `after` uploaded and counted, then wait for the import to end."""
    tick = import_job._Progress.tick
    ticks = []

    def drilled(self) -> None:
        ticks.append(1)
        if len(ticks) == after + 1:
            wait_for(lambda: self.unpacker.members_done, lambda done: done >= after, timeout=60,
                     what=f"{after} members uploaded")
            self.write()
            wait_for(lambda: import_store.status_of(os.environ["IMPORT_ID"]), lambda s: s in imports.FINAL,
                     timeout=60, what="the import to be cancelled")
            self.last = 0.0  # the real tick reads the status now
        tick(self)

    import_job._Progress.tick = drilled


def drill_launcher(log_dir: Path, *args: str) -> LocalRunner:
    return import_launcher.local(log_dir, MODULE, args)


if __name__ == "__main__":
    task = task_from_env()
    if task.index == 0 and (task.attempt == 0 or sys.argv[1] == "die"):
        install(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
    sys.exit(import_job.run(task))
