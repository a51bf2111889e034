"""The import job (Cloud Run Job, N tasks): IMPORT_ID=... IMPORT_PHASE=unpack|stage python -m jobs.importer

Cloud Run sets CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT and CLOUD_RUN_TASK_ATTEMPT;
the local launcher sets the same. See common.services.import_job. Each task logs its peak
resident memory as it ends (against the job's limit, infra/settings.json importer.memory).
"""
import os
import resource
import sys

from common.platform import log
from common.services import import_job


def task_from_env(env=os.environ) -> import_job.Task:
    return import_job.Task(import_id=env["IMPORT_ID"], phase=env.get("IMPORT_PHASE", "unpack"),
                           index=int(env.get("CLOUD_RUN_TASK_INDEX", "0")),
                           count=int(env.get("CLOUD_RUN_TASK_COUNT", "1")),
                           attempt=int(env.get("CLOUD_RUN_TASK_ATTEMPT", "0")))


def run_and_report(task: import_job.Task) -> int:
    code = import_job.run(task)
    log.info("import task ended", import_id=task.import_id, phase=task.phase, index=task.index, exit_code=code,
             peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return code


if __name__ == "__main__":
    sys.exit(run_and_report(task_from_env()))
