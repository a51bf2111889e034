"""The main job, end to end on the local stack: drop the sample dataset into the
bucket in a shuffled order, wait until the index is exact, show it.

Uses a stack already started with `make up` when there is one; otherwise starts
one and stops it at the end.
"""
from __future__ import annotations

import os
import random
import sys

from infra.local import stack as local_stack
from infra.local.client import ApiClient, wait_for
from infra.local.sample import sample_dataset

DATASET = "sample"
INDEX_DEADLINE_SECONDS = 120


def main() -> int:
    running = local_stack.default_stack()
    started_here = not running.pid_file.exists()
    if started_here:
        print("starting the local stack (emulators, fake-gcs-server, functions)...", flush=True)
        try:
            local_stack.start(running)
        except local_stack.StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    try:
        return run_demo(read_env(running.env_file))
    finally:
        if started_here:
            local_stack.stop(running)
            print("local stack stopped")


def read_env(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def run_demo(env: dict[str, str]) -> int:
    os.environ.update(env)
    from common import storage  # reads the emulator variables just set
    sample = sample_dataset()
    names = list(sample.files)
    random.Random(7).shuffle(names)
    names.remove("data.yaml")
    names.append("data.yaml")  # classes last: labels must be revalidated against them
    bucket = storage.bucket()
    print(f"dropping {len(names)} files into gs://{env['DATA_BUCKET']}/datasets/{DATASET}/ "
          f"(shuffled, data.yaml last)", flush=True)
    for name in names:
        bucket.blob(f"datasets/{DATASET}/{name}").upload_from_string(sample.files[name])
    api = ApiClient(env["API_URL"], env["API_TOKEN"])
    dataset = wait_for(lambda: api.get_or_none(f"/datasets/{DATASET}"),
                       lambda d: d is not None and _matches(d, sample.expected),
                       INDEX_DEADLINE_SECONDS, "the sample dataset's index")
    show(api, dataset)
    codes = {issue["code"] for issue in api.all_pages(f"/datasets/{DATASET}/issues", "issues")}
    missing = sample.expected_issue_codes - codes
    if missing:
        print(f"error: expected issues not reported: {sorted(missing)}", file=sys.stderr)
        return 1
    return 0


def _matches(dataset: dict, expected: dict) -> bool:
    stats = dataset["stats"]
    return dataset["classes_known"] and all(stats[key] == value for key, value in expected.items())


def show(api: ApiClient, dataset: dict) -> None:
    stats = dataset["stats"]
    print(f"\ndataset {dataset['id']}: classes {dataset['classes']}")
    for key in ("images", "labeled", "background", "unlabeled", "labels_without_image",
                "boxes", "duplicates", "issues"):
        print(f"  {key:<22}{stats[key]}")
    print(f"  {'boxes_per_class':<22}{stats['boxes_per_class']}")
    print(f"  {'splits':<22}{stats['splits']}")
    print("\nissues:")
    for issue in api.all_pages(f"/datasets/{DATASET}/issues", "issues"):
        where = issue["file"] + (f":{issue['line']}" if issue.get("line") else "")
        print(f"  {issue['code']:<26}{where}\n  {'':<26}{issue['message']}")


if __name__ == "__main__":
    sys.exit(main())
