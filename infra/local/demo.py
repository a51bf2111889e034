"""The main job, end to end on the local stack: drop the sample dataset into the
bucket in a shuffled order, wait until the index is exact, show it; then train a
YOLO model on it, printing each epoch as its progress event arrives, and show
the registered model.

Uses a stack already started with `make up` when there is one; otherwise starts
one and stops it at the end.
"""
from __future__ import annotations

import os
import random
import sys

from common.domain import layout
from infra.local import stack as local_stack
from infra.local.client import ApiClient, wait_for
from infra.local.sample import sample_dataset

DATASET = "sample"
INDEX_DEADLINE_SECONDS = 120
TRAINING_DEADLINE_SECONDS = 900
# A few epochs at a small image size: minutes on a CPU.
TRAINING_REQUEST = {"dataset": DATASET, "model": "yolov8n.yaml", "epochs": 5, "imgsz": 160, "batch": 4}


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
    from common.cloud import storage  # reads the emulator variables just set
    sample = sample_dataset()
    names = list(sample.files)
    random.Random(7).shuffle(names)
    names.remove("data.yaml")
    names.append("data.yaml")  # classes last: labels must be revalidated against them
    bucket = storage.bucket()
    print(f"dropping {len(names)} files into gs://{env['DATA_BUCKET']}/{layout.dataset_prefix(DATASET)} "
          f"(shuffled, data.yaml last)", flush=True)
    for name in names:
        bucket.blob(layout.dataset_object(DATASET, name)).upload_from_string(sample.files[name])
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
    return train(api)


def train(api: ApiClient) -> int:
    answer = api.session.post(f"{api.url}/training", json=TRAINING_REQUEST, timeout=30)
    if answer.status_code != 202:
        print(f"error: POST /training answered {answer.status_code}: {answer.text}", file=sys.stderr)
        return 1
    job_id = answer.json()["job_id"]
    print(f"\ntraining {TRAINING_REQUEST} -> job {job_id}", flush=True)
    shown: set[int] = set()

    def progress():
        job = api.get_or_none(f"/training/{job_id}")
        for row in (job or {}).get("history", []):
            if row["epoch"] not in shown:
                shown.add(row["epoch"])
                print(f"  epoch {row['epoch']}/{job['epochs']}  box {row.get('box_loss')}  cls {row.get('cls_loss')}"
                      f"  dfl {row.get('dfl_loss')}  P {row.get('precision')}  R {row.get('recall')}"
                      f"  mAP50 {row.get('mAP50')}  mAP50-95 {row.get('mAP50-95')}  {row.get('seconds')}s", flush=True)
        return job

    job = wait_for(progress, lambda j: j is not None and j["status"] in ("completed", "failed", "cancelled"),
                   TRAINING_DEADLINE_SECONDS, f"training job {job_id}", interval=0.5)
    if job["status"] != "completed":
        print(f"error: training {job['status']}: {job['error']}", file=sys.stderr)
        return 1
    model = api.get(f"/models/{job['model_id']}")
    print(f"\nregistered model {model['id']} (dataset {model['dataset']}, job {model['job_id']})")
    print(f"  classes  {model['classes']}")
    print(f"  metrics  {model['metrics']}")
    for kind, uri in model["weights"].items():
        print(f"  {kind:<8} {uri}")
    return 0


def _matches(dataset: dict, expected: dict) -> bool:
    stats = dataset["stats"]
    return dataset["classes_known"] and dataset["pending_jobs"] == 0 and \
        all(stats[key] == value for key, value in expected.items())


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
