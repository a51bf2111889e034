"""The import job (Cloud Run Job, N tasks): IMPORT_ID=... IMPORT_PHASE=unpack|stage python -m jobs.importer

Cloud Run sets CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT and CLOUD_RUN_TASK_ATTEMPT;
the local launcher sets the same. See common.services.import_job.
"""
import os
import sys

from common.services import import_job


def task_from_env(env=os.environ) -> import_job.Task:
    return import_job.Task(import_id=env["IMPORT_ID"], phase=env.get("IMPORT_PHASE", "unpack"),
                           index=int(env.get("CLOUD_RUN_TASK_INDEX", "0")),
                           count=int(env.get("CLOUD_RUN_TASK_COUNT", "1")),
                           attempt=int(env.get("CLOUD_RUN_TASK_ATTEMPT", "0")))


if __name__ == "__main__":
    sys.exit(import_job.run(task_from_env()))
