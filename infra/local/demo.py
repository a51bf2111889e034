"""The main job, end to end on the local stack: drop the sample dataset into the
bucket in a shuffled order, wait until the index is exact, show it; then train a
YOLO model on it, printing each epoch as its progress event arrives, and show
the registered model; then use it: predict one image through the prediction
function and print its boxes, and auto-label the dataset's unlabeled images and
print the proposals.

Uses a stack already started with `make up` when there is one; otherwise starts
one and stops it at the end.
"""
from __future__ import annotations

import os
import random
import sys

import requests

from common.domain import layout
from infra.local import stack as local_stack
from infra.local.client import ApiClient, wait_for, wait_for_found
from infra.local.sample import CLASSES, SQUARE_COLOURS, demo_dataset, drawn_label

DATASET = "sample"
INDEX_DEADLINE_SECONDS = 120
TRAINING_DEADLINE_SECONDS = 900
AUTOLABEL_DEADLINE_SECONDS = 120
# 30 epochs at 160 px from scratch: about a minute on a CPU, and the squares are found.
TRAINING_REQUEST = {"dataset": DATASET, "model": "yolov8n.yaml", "epochs": 30, "imgsz": 160, "batch": 8,
                    "seed": 0, "workers": 0}
PREDICTED_IMAGE = "images/val/squares_08.jpg"  # a val image: the model never trained on it
PROPOSALS_SHOWN = 5  # per image, the most confident: a weak model may propose a hundred boxes on one image


def main() -> int:
    running = local_stack.default_stack()
    started_here = not running.pid_file.exists()
    if started_here:
        print("starting the local stack (emulators, fake-gcs-server, the functions)...", flush=True)
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
    sample = demo_dataset()
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
    dataset = wait_for_found(lambda: api.get_or_none(f"/datasets/{DATASET}"), lambda d: _matches(d, sample.expected),
                             INDEX_DEADLINE_SECONDS, "the sample dataset's index")
    show(api, dataset)
    codes = {issue["code"] for issue in api.all_pages(f"/datasets/{DATASET}/issues", "issues")}
    missing = sample.expected_issue_codes - codes
    if missing:
        print(f"error: expected issues not reported: {sorted(missing)}", file=sys.stderr)
        return 1
    model = train(api)
    if model is None:
        return 1
    return predict(env, model) or autolabel(api, model)


def train(api: ApiClient) -> dict | None:
    answer = api.session.post(f"{api.url}/training", json=TRAINING_REQUEST, timeout=30)
    if answer.status_code != 202:
        print(f"error: POST /training answered {answer.status_code}: {answer.text}", file=sys.stderr)
        return None
    job_id = answer.json()["job_id"]
    print(f"\ntraining {TRAINING_REQUEST} -> job {job_id}", flush=True)
    shown: set[int] = set()

    def progress() -> dict | None:
        job = api.get_or_none(f"/training/{job_id}")
        if job is None:
            return None
        for row in job.get("history", []):
            if row["epoch"] not in shown:
                shown.add(row["epoch"])
                print(f"  epoch {row['epoch']}/{job['epochs']}  box {row.get('box_loss')}  cls {row.get('cls_loss')}"
                      f"  dfl {row.get('dfl_loss')}  P {row.get('precision')}  R {row.get('recall')}"
                      f"  mAP50 {row.get('mAP50')}  mAP50-95 {row.get('mAP50-95')}  {row.get('seconds')}s", flush=True)
        return job

    job = wait_for_found(progress, lambda j: j["status"] in ("completed", "failed", "cancelled"),
                         TRAINING_DEADLINE_SECONDS, f"training job {job_id}", interval=0.5)
    if job["status"] != "completed":
        print(f"error: training {job['status']}: {job['error']}", file=sys.stderr)
        return None
    model = api.get(f"/models/{job['model_id']}")
    print(f"\nregistered model {model['id']} (dataset {model['dataset']}, job {model['job_id']})")
    print(f"  classes  {model['classes']}")
    print(f"  metrics  {model['metrics']}")
    for kind, uri in model["weights"].items():
        print(f"  {kind:<8} {uri}")
    return model


def predict(env: dict[str, str], model: dict) -> int:
    """POST one dataset image to the prediction function and print its boxes; 1 when it fails."""
    uri = f"gs://{env['DATA_BUCKET']}/{layout.dataset_object(DATASET, PREDICTED_IMAGE)}"
    answer = requests.post(f"{env['PREDICT_URL']}/models/{model['id']}/predict", json={"images": [uri]},
                           headers={"Authorization": f"Bearer {env['API_TOKEN']}"}, timeout=120)
    if answer.status_code != 200:
        print(f"error: prediction answered {answer.status_code}: {answer.text}", file=sys.stderr)
        return 1
    result = answer.json()
    found = result["predictions"][0]
    speed = ", ".join(f"{step} {ms} ms" for step, ms in result["speed_ms"].items())
    print(f"\nprediction on {uri} ({found['width']}x{found['height']}; {speed}); "
          f"the squares' colours are the classes: {_colours()}")
    truth = demo_dataset().files[PREDICTED_IMAGE.replace("images/", "labels/").replace(".jpg", ".txt")]
    print(f"  the label says:  {truth.decode().strip().replace(chr(10), ' | ')}")
    for box in found["boxes"]:
        print(f"  {box['class_name']:<8} {box['confidence']:.2f}  pixels ({box['x1']:.0f}, {box['y1']:.0f})-"
              f"({box['x2']:.0f}, {box['y2']:.0f})  label row {box['class_id']} {box['cx']} {box['cy']} "
              f"{box['w']} {box['h']}")
    if not found["boxes"]:
        print("  no boxes")
    return 0


def autolabel(api: ApiClient, model: dict) -> int:
    """Auto-label the dataset's unlabeled images with the model and print the proposals to review."""
    answer = api.session.post(f"{api.url}/datasets/{DATASET}/autolabel",
                              json={"model_id": model["id"], "images": "unlabeled"}, timeout=30)
    if answer.status_code != 202:
        print(f"error: POST .../autolabel answered {answer.status_code}: {answer.text}", file=sys.stderr)
        return 1
    job_id = answer.json()["job_id"]
    job = wait_for(lambda: api.get(f"/autolabel/{job_id}"), lambda j: j["status"] in ("completed", "failed"),
                   AUTOLABEL_DEADLINE_SECONDS, f"auto-labelling job {job_id}")
    print(f"\nauto-labelling the unlabeled images -> job {job_id}: {job['status']}, {job['images_done']}/"
          f"{job['images_total']} images, {job['boxes']} boxes proposed, {job['dropped']} dropped")
    for failure in job["failed"]:
        print(f"  failed  {failure['image']}: {failure['reason']}")
    for image in api.all_pages(f"/datasets/{DATASET}/images", "images", has_proposals="true"):
        print(f"  {image['id']:<30} {_proposal_rows(image['proposals'])}")
        drawn = drawn_label(image["id"])
        if drawn:
            print(f"  {'':<30} drawn: {_named_rows(drawn)}")
    stats = api.get(f"/datasets/{DATASET}")["stats"]
    print(f"  {stats['proposals']} images have proposals to review: POST /datasets/{DATASET}/images/{{id}}/"
          f"proposals/accept or .../reject, or POST /datasets/{DATASET}/proposals/accept for all")
    return 0 if job["status"] == "completed" else 1


def _proposal_rows(proposals: list[dict]) -> str:
    """The most confident few, and how many more there are to review."""
    shown = sorted(proposals, key=lambda p: -p["confidence"])[:PROPOSALS_SHOWN]
    rows = ", ".join(f"{p['class_name']} {p['confidence']:.2f} ({p['cx']:.3f} {p['cy']:.3f} {p['w']:.3f} "
                     f"{p['h']:.3f})" for p in shown)
    more = len(proposals) - len(shown)
    return f"{rows} ... and {more} more" if more else rows


def _named_rows(label: str) -> str:
    rows = (line.split() for line in label.splitlines())
    return ", ".join(f"{CLASSES[int(r[0])]} ({float(r[1]):.3f} {float(r[2]):.3f} {float(r[3]):.3f} {float(r[4]):.3f})"
                     for r in rows)


def _colours() -> str:
    return ", ".join(f"{CLASSES[class_id]} = rgb{colour}" for class_id, colour in SQUARE_COLOURS.items())


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
