"""The prediction function against Ultralytics on the CPU, in one run.

    python -m bench.predict [--imgsz 640] [--requests 50] [--batches 3] [--autolabel 500] [--latency-only]

Starts its own stack on free ports, trains and registers a small model at
--imgsz (1 epoch: the weights do not matter, the work per image does), then:

1. cold start: from starting a fresh prediction process (functions-framework)
   to its first prediction answered, against `python -c "from ultralytics import
   YOLO; YOLO('best.pt').predict(img)"`, the wait a person has with Ultralytics;
2. warm latency: median and p95 of N single-image requests through HTTP, of a
   640x480 JPEG (no resize) and of a real photo, Ultralytics' bus.jpg (810x1080,
   resized to 640x480 on both sides), each against Ultralytics' warm predict of
   the same file on best.pt (kept loaded in a process of its own and asked in
   turn with ours, request by request), and each also against ONNX
   Runtime's own inference time for each request (its Server-Timing); the
   load average before and after says how busy the machine was;
3. throughput: images per second in batches of 32 (multipart), against
   Ultralytics predicting the same 32 files as a list;
4. auto-labelling: images per second of an auto-labelling job over --autolabel
   (500) generated 640x480 images of a dataset, from POST .../autolabel to the
   job completed (chunks of DATASET_JOB_CHUNK_SIZE, 200, run by the dataset-jobs
   function), against the batch throughput above.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from PIL import Image

from common.domain import layout
from infra.local import sample, stack as local_stack
from infra.local.client import ApiClient, upload_all, wait_for

# Ultralytics' warm predict, asked over stdin one line at a time ("<image>" or "batch <folder>"), each answered
# with one "ULTRALYTICS <seconds>" line, so that each of its predictions runs right beside one of ours.
ULTRALYTICS_WARM = """
import sys, time
from pathlib import Path
from ultralytics import YOLO
model = YOLO(sys.argv[1])
for line in sys.stdin:
    command = line.rstrip("\\n")
    what = sorted(map(str, Path(command[6:]).iterdir())) if command.startswith("batch ") else command
    started = time.perf_counter()
    model.predict(what, verbose=False)
    print("ULTRALYTICS", time.perf_counter() - started, flush=True)
"""
ULTRALYTICS_COLD = "from ultralytics import YOLO; import sys; YOLO(sys.argv[1]).predict(sys.argv[2], verbose=False)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--autolabel", type=int, default=500, help="images auto-labelled (0: skip)")
    parser.add_argument("--latency-only", action="store_true",
                        help="only the warm latencies (no cold start, batches or auto-labelling)")
    args = parser.parse_args()
    with local_stack.temporary_stack("yolodrop-bench-predict-") as stack:
        run(stack, args)


def run(stack: local_stack.Stack, args) -> None:
    env = stack.env()
    api = ApiClient(env["API_URL"], stack.token)
    model = registered_model(api, args.imgsz)
    work = Path(tempfile.mkdtemp(prefix="yolodrop-bench-predict-"))
    weights, image, photo, batch_dir = local_files(model, work)
    print(f"model {model['id']} (imgsz {args.imgsz}); ONNX Runtime threads: see predict.log 'model loaded'",
          flush=True)
    if not args.latency_only:
        cold_ours = cold_start(stack, model["id"], image)
        cold_theirs = timed(lambda: subprocess.run([sys.executable, "-c", ULTRALYTICS_COLD, str(weights),
                                                    str(image)], check=True, capture_output=True,
                                                   env=ultralytics_env(work)))
        print(f"cold start: prediction function {cold_ours:.2f} s, Ultralytics (import, load best.pt, predict) "
              f"{cold_theirs:.2f} s -> {cold_ours / cold_theirs:.2f}x", flush=True)
    with UltralyticsWarm(weights, work) as theirs:
        print(f"load average before the warm latencies: {load_average()}", flush=True)
        for path, label in ((image, "640x480 JPEG"), (photo, "a real photo, bus.jpg 810x1080")):
            ours, stages, their_times = warm_latency(env["PREDICT_URL"], stack.token, model["id"], path,
                                                     args.requests, theirs)
            report_latency(ours, their_times, label)
            report_against_inference(ours, stages, label)
        print(f"load average after: {load_average()}", flush=True)
        if args.latency_only:
            return
        their_rate = len(list(batch_dir.iterdir())) / theirs.predict(f"batch {batch_dir}")
    batch_rate = batch_throughput(env["PREDICT_URL"], stack.token, model["id"], batch_dir, args.batches)
    print(f"throughput, batches of 32 (multipart): {batch_rate:.1f} images/s; Ultralytics predict on the "
          f"same 32 files: {their_rate:.1f} images/s -> {batch_rate / their_rate:.2f}x", flush=True)
    if args.autolabel:
        rate = autolabel_throughput(api, model, args.autolabel)
        print(f"auto-labelling {args.autolabel} images (640x480 JPEG, dataset job in chunks): {rate:.1f} images/s; "
              f"against batches of 32: {rate / batch_rate:.2f}x", flush=True)


def registered_model(api: ApiClient, imgsz: int) -> dict:
    from common.cloud import storage
    dataset = f"bench-{uuid.uuid4().hex[:6]}"
    files = sample.generated_dataset(8, 0, size=(640, 480))
    upload_all(storage.bucket(), {layout.dataset_object(dataset, k): v for k, v in files.items()})
    wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"), lambda d: d and d["stats"]["labeled"] == 8, 120,
             "the bench dataset's index")
    body = {"dataset": dataset, "model": "yolov8n.yaml", "epochs": 1, "imgsz": imgsz, "batch": 4, "workers": 0}
    print(f"training {body} ...", flush=True)
    job_id = api.session.post(f"{api.url}/training", json=body, timeout=30).json()["job_id"]
    job = wait_for(lambda: api.get(f"/training/{job_id}"), lambda j: j["status"] in ("completed", "failed"), 900,
                   "the bench model's training", interval=1)
    if job["status"] != "completed":
        raise SystemExit(f"training failed: {job['error']}")
    return api.get(f"/models/{job['model_id']}")


def local_files(model: dict, work: Path) -> tuple[Path, Path, Path, Path]:
    """best.pt, one 640x480 photo, bus.jpg as it is (810x1080), and a folder of 32 photos of several sizes."""
    from common.cloud import storage
    weights = work / "best.pt"
    storage.blob_at(model["weights"]["pt"]).download_to_filename(str(weights))
    bus, zidane = (Image.open(io.BytesIO(sample.ultralytics_photo(n))) for n in ("bus.jpg", "zidane.jpg"))
    image = work / "image.jpg"
    zidane.resize((640, 480)).save(image, quality=90)
    real_photo = work / "bus.jpg"
    real_photo.write_bytes(sample.ultralytics_photo("bus.jpg"))
    assert bus.size == (810, 1080), bus.size
    batch_dir = work / "batch"
    batch_dir.mkdir()
    for i in range(32):
        photo = (bus, zidane)[i % 2]
        photo.resize((photo.width * (2 + i % 3) // 4, photo.height * (2 + i % 3) // 4)).save(
            batch_dir / f"{i:02d}.jpg", quality=90)
    return weights, image, real_photo, batch_dir


def load_average() -> str:
    return " ".join(f"{load:.1f}" for load in os.getloadavg()) + f" (1, 5, 15 min; {os.cpu_count()} CPUs)"


def ultralytics_env(work: Path) -> dict:
    return {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "ultralytics")}


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def cold_start(stack: local_stack.Stack, model_id: str, image: Path) -> float:
    """A fresh prediction process on a free port: from its start to its first prediction answered."""
    port = local_stack.free_ports()["predict"]
    argv = [str(Path(sys.executable).parent / "functions-framework"), f"--source={local_stack.REPO}/functions/"
            "predict/main.py", "--target=predict", "--signature-type=http", "--host=127.0.0.1", f"--port={port}"]
    data = image.read_bytes()
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=local_stack.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, **stack.env(), "PYTHONPATH": str(local_stack.REPO)})
    try:
        answer = wait_for(lambda: _first_answer(port, stack.token, model_id, data),
                          lambda status: status is not None, 120, "the cold prediction process", interval=0.01)
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)
    if answer != 200:
        raise SystemExit(f"the cold prediction process answered {answer}")
    return elapsed


def _first_answer(port: int, token: str, model_id: str, data: bytes) -> int | None:
    try:
        return requests.post(f"http://127.0.0.1:{port}/models/{model_id}/predict", data=data, timeout=120,
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}).status_code
    except requests.ConnectionError:
        return None  # not listening yet


class UltralyticsWarm:
    """Ultralytics' warm predict on best.pt in a process of its own, kept loaded and asked one prediction at a
    time: each of its predictions runs right beside one of ours, so a load that comes and goes on a shared
    machine weighs on both sides alike (measured one whole side after the other, the ratio moved with it)."""

    def __init__(self, weights: Path, work: Path):
        self.process = subprocess.Popen([sys.executable, "-c", ULTRALYTICS_WARM, str(weights)], text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ultralytics_env(work))

    def predict(self, what: str | Path) -> float:
        """Seconds of one predict of an image, or of "batch <folder>" (its files as one list)."""
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{what}\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith("ULTRALYTICS "):
                return float(line.split()[1])
        raise SystemExit(f"Ultralytics' predict process ended ({self.process.wait()}) while predicting {what}")

    def __enter__(self) -> UltralyticsWarm:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def warm_latency(url: str, token: str, model_id: str, image: Path, n: int,
                 theirs: UltralyticsWarm) -> tuple[list[float], list[dict], list[float]]:
    """Seconds of n requests after three, each one's Server-Timing stages (ms), and the seconds of Ultralytics'
    predict of the same file beside each: one of each in turn, who goes first alternating."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"})
    data, times, stages, their_times = image.read_bytes(), [], [], []
    for i in range(n + 3):
        their_seconds = theirs.predict(image) if i % 2 else None
        started = time.perf_counter()
        answer = session.post(f"{url}/models/{model_id}/predict", data=data, timeout=60)
        seconds = time.perf_counter() - started
        if answer.status_code != 200:
            raise SystemExit(f"predict answered {answer.status_code}: {answer.text[:300]}")
        their_seconds = their_seconds if their_seconds is not None else theirs.predict(image)
        if i >= 3:  # the first three warm the connection, the caches and Ultralytics' predictor
            times.append(seconds)
            stages.append(server_timing(answer.headers["Server-Timing"]))
            their_times.append(their_seconds)
    report_stages(times, stages)
    return times, stages, their_times


def server_timing(header: str) -> dict[str, float]:
    """{"auth": 1.2, ...} from "auth;dur=1.2, ..."."""
    return {name.strip(): float(duration) for name, duration in
            (part.split(";dur=") for part in header.split(","))}


def report_stages(times: list[float], stages: list[dict[str, float]]) -> None:
    medians = {name: statistics.median(s[name] for s in stages) for name in stages[0]}
    rest = statistics.median(t * 1000 - sum(s.values()) for t, s in zip(times, stages))
    print("  per request, median ms: " + ", ".join(f"{name} {ms:.1f}" for name, ms in medians.items())
          + f", the rest (HTTP, the framework, JSON) {rest:.1f}", flush=True)


def report_latency(ours: list[float], theirs: list[float], label: str) -> None:
    def p95(values):
        return sorted(values)[max(0, round(0.95 * len(values)) - 1)]
    mine, base = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    print(f"warm latency, {len(ours)} single-image requests ({label}) through HTTP: median {mine:.1f} ms, "
          f"p95 {p95(ours) * 1000:.1f} ms; Ultralytics warm predict on best.pt in-process: median {base:.1f} ms, "
          f"p95 {p95(theirs) * 1000:.1f} ms -> {mine / base:.2f}x", flush=True)


def report_against_inference(ours: list[float], stages: list[dict[str, float]], label: str) -> None:
    """The request's whole latency over ONNX Runtime's inference in it, request by request."""
    ratios = [seconds * 1000 / stage["inference"] for seconds, stage in zip(ours, stages)]
    inference = statistics.median(stage["inference"] for stage in stages)
    print(f"  ({label}) against ONNX Runtime's own inference in the same requests (Server-Timing, median "
          f"{inference:.1f} ms): median of latency / inference {statistics.median(ratios):.2f}x", flush=True)


def batch_throughput(url: str, token: str, model_id: str, batch_dir: Path, batches: int) -> float:
    files = [(p.name, p.read_bytes()) for p in sorted(batch_dir.iterdir())]
    parts = [("file", (name, data, "image/jpeg")) for name, data in files]
    started = time.perf_counter()
    for _ in range(batches):
        answer = requests.post(f"{url}/models/{model_id}/predict", files=parts, timeout=300,
                               headers={"Authorization": f"Bearer {token}"})
        if answer.status_code != 200:
            raise SystemExit(f"predict answered {answer.status_code}: {answer.text[:300]}")
    return batches * len(files) / (time.perf_counter() - started)


def autolabel_throughput(api: ApiClient, model: dict, n: int) -> float:
    """Images per second of one auto-labelling job over `n` new images, POST to completed."""
    from common.cloud import storage
    dataset = f"bench-al-{uuid.uuid4().hex[:6]}"
    files = {"data.yaml": sample.data_yaml(model["classes"]).encode(),
             **{f"images/a{i:04d}.jpg": sample.synthetic_image(20_000 + i, size=(640, 480))[0] for i in range(n)}}
    upload_all(storage.bucket(), {layout.dataset_object(dataset, k): v for k, v in files.items()})
    wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"),
             lambda d: d and d["stats"]["images"] == n and d["pending_jobs"] == 0, 300, "the auto-labelling dataset")
    started = time.perf_counter()
    job_id = api.session.post(f"{api.url}/datasets/{dataset}/autolabel", timeout=30,
                              json={"model_id": model["id"], "images": "all"}).json()["job_id"]
    job = wait_for(lambda: api.get(f"/autolabel/{job_id}"), lambda j: j["status"] in ("completed", "failed"), 900,
                   "the auto-labelling job", interval=0.2)
    seconds = time.perf_counter() - started
    if job["status"] != "completed" or job["images_done"] != n:
        raise SystemExit(f"auto-labelling ended {job['status']}: {job.get('error')} {job['failed'][:3]}")
    return n / seconds


if __name__ == "__main__":
    main()
