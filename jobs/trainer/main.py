"""The trainer: one training job, from its manifest to registered weights.

    JOB_ID=... MANIFEST_URI=gs://.../manifest.json python -m jobs.trainer

It materializes the manifest, trains with Ultralytics (on every GPU there is: on
several, Ultralytics' own DDP, one worker process per GPU; else on the CPU),
publishes progress (started, one event per epoch, then completed, failed or
cancelled), checkpoints last.pt to the bucket every epoch and resumes from it
when the task runs again, checks for cancellation between epochs, and uploads
best.pt, last.pt, results.csv and an ONNX export at the end.

A task may run TASK_TIMEOUT_SECONDS (a Cloud Run GPU task: 1 hour). The trainer
stops after its last whole epoch that fits (its slowest epoch and checkpoint
upload so far must fit before the end), publishes `continued` and exits 0: the
training function starts the next execution, which resumes from the bucket
checkpoint (docs/training.md, Longer than a task).

No file a person could supply is unpickled: Ultralytics loads every weight file with
its safe loader (jobs/trainer/__init__.py), a restored checkpoint is checked by that
loader before Ultralytics resumes from it, and official pretrained weights load only
when their SHA-256 is the pin the training function wrote into the manifest.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from google.api_core.exceptions import PreconditionFailed

from common.cloud import model_cache, storage
from common.domain import layout, training_job
from common.platform import config as platform_config
from common.platform import limits, log
from jobs.trainer.materialize import materialize
from jobs.trainer.progress_events import Progress, claim_run

CHECKPOINT_FILES = ("last.pt", "best.pt", "results.csv")


@dataclass(frozen=True)
class Config:
    job_id: str
    manifest_uri: str
    project: str
    progress_topic: str = platform_config.PROGRESS_TOPIC
    work_dir: Path = Path(tempfile.gettempdir()) / "yolodrop-trainer"
    attempt: int = 0                      # CLOUD_RUN_TASK_ATTEMPT: > 0 when the task is retried
    device: str | None = None             # None: the first GPU when there is one, else the CPU
    download_workers: int = 16
    data_mount: Path | None = None        # TRAINER_DATA_MOUNT: the data bucket mounted read-only (materialize)
    task_timeout: float = limits.GPU_TASK_TIMEOUT_MAX_SECONDS  # TASK_TIMEOUT_SECONDS: this task attempt's
    started: float = field(default_factory=time.monotonic)  # when this task attempt started (monotonic)

    @classmethod
    def from_env(cls, env=os.environ) -> Config:
        return cls(job_id=env["JOB_ID"], manifest_uri=env["MANIFEST_URI"], project=env["GOOGLE_CLOUD_PROJECT"],
                   progress_topic=env.get("PROGRESS_TOPIC", platform_config.PROGRESS_TOPIC),
                   work_dir=Path(env.get("TRAINER_WORK_DIR") or cls.work_dir),
                   attempt=int(env.get("CLOUD_RUN_TASK_ATTEMPT", "0")), device=env.get("TRAINER_DEVICE") or None,
                   download_workers=int(env.get("TRAINER_DOWNLOAD_WORKERS", "16")),
                   data_mount=Path(env["TRAINER_DATA_MOUNT"]) if env.get("TRAINER_DATA_MOUNT") else None,
                   task_timeout=float(env.get("TASK_TIMEOUT_SECONDS") or limits.GPU_TASK_TIMEOUT_MAX_SECONDS))

    @property
    def job_dir(self) -> Path:
        return self.work_dir / self.job_id

    @property
    def deadline(self) -> float:
        """The monotonic time by which this attempt has stopped, a reserve before its task timeout for
        publishing and exiting (3 % of the timeout, 5 s to 2 minutes)."""
        return self.started + self.task_timeout - min(120.0, max(5.0, 0.03 * self.task_timeout))


class TaskTimeUp(Exception):
    """Raised between epochs when the next one would not end before the task's deadline: the epochs done are
    checkpointed in the bucket, and the next execution goes on from them."""

    def __init__(self, epoch: int, epochs: int, seconds_left: float, epoch_event: dict):
        super().__init__(f"stopping after epoch {epoch} of {epochs}: {seconds_left:.0f} s left in this task")
        self.epoch, self.epochs, self.seconds_left = epoch, epochs, seconds_left
        self.epoch_event = epoch_event  # the last epoch's metrics and seconds, repeated in `continued`


def main(config: Config) -> int:
    bucket = storage.blob_at(config.manifest_uri).bucket  # the job's files live beside its manifest
    progress = Progress(config.project, config.progress_topic, config.job_id, claim_run(bucket, config.job_id))
    try:
        return Job(config, bucket, progress).run()
    except Exception as exc:
        log.error("training failed", job_id=config.job_id, error=repr(exc), traceback=traceback.format_exc())
        progress.publish("failed", error=f"{type(exc).__name__}: {exc}")
        return 1


def execution_name() -> str:
    """The execution this process runs in, as the watch looks it up: Cloud Run's (its short name; the job's
    full one completes it), a Vertex AI custom job's (its id, completed alike), or the local launcher's."""
    return (os.environ.get("CLOUD_RUN_EXECUTION") or os.environ.get("CLOUD_ML_JOB_ID")
            or f"{training_job.LOCAL_EXECUTION_PREFIX}{os.getpid()}")


class Job:
    def __init__(self, config: Config, bucket, progress: Progress):
        self.config, self.bucket, self.progress = config, bucket, progress
        self.run_dir = config.job_dir / "run"
        self.weights = self.run_dir / "weights"

    def __reduce__(self):
        """Ultralytics' DDP pickles the callbacks into each worker process: a worker rebuilds the job from its
        config and its run's progress (the count of events so far), so no client crosses processes."""
        return _rebuilt_job, (self.config, self.progress.run, self.progress.count)

    @property
    def ddp_outcome(self) -> Path:
        """What the DDP workers' first rank reports to this process (EpochReporter.save_outcome)."""
        return self.config.job_dir / "ddp-outcome.json"

    def run(self) -> int:
        manifest = json.loads(storage.blob_at(self.config.manifest_uri).download_as_bytes())
        if self.cancel_requested():
            self.progress.publish("cancelled", epoch=0, weights={})
            return 0
        resumed_from = self.restore_checkpoint()
        data = materialize(manifest, self.config.job_dir / "data", self.config.download_workers,
                           self.config.data_mount)
        log.info("materialized", job_id=self.config.job_id, images=data.counts, linked=data.linked,
                 downloaded_bytes=data.downloaded_bytes, seconds=round(data.seconds, 3))
        device = self.config.device or _default_device()
        self.progress.publish("started", device=device, attempt=self.config.attempt, execution=execution_name(),
                              resumed_from_epoch=resumed_from,
                              images=data.counts, skipped=data.skipped[:100], skipped_count=len(data.skipped),
                              materialize_seconds=round(data.seconds, 3))
        reporter = EpochReporter(self)
        model = self.model(manifest, resumed_from)
        for event in ("on_model_save", "on_fit_epoch_end"):
            model.add_callback(event, getattr(reporter, event))
        self.ddp_outcome.unlink(missing_ok=True)
        try:
            model.train(**self.train_args(manifest, data.data_yaml, device, resumed_from))
        except TaskTimeUp as stop:  # neither a failure nor a retry: the next execution goes on
            return self.continue_later(stop)
        except subprocess.CalledProcessError:  # the DDP workers ended: out of time is the one way they mean to
            time_up = reporter.adopt(self.ddp_outcome)
            if time_up is None:
                raise
            return self.continue_later(time_up)
        if distributed(device):
            reporter.adopt(self.ddp_outcome)
            device = device.split(",")[0]  # evaluation and export on one GPU
        if reporter.cancelled:
            self.progress.publish("cancelled", epoch=reporter.last_epoch, weights=self.upload_checkpoint())
            return 0
        onnx = self.export_onnx(manifest["train_args"]["imgsz"], manifest["classes"])
        self.progress.publish("completed", epoch=reporter.last_epoch, classes=manifest["classes"],
                              metrics=reporter.final_metrics or reporter.last_metrics,
                              evaluation=self.evaluate(manifest, data, device),
                              weights={**self.upload_results(), **({"onnx": onnx["uri"]} if "uri" in onnx else {})},
                              onnx=onnx)
        return 0

    def continue_later(self, stop: TaskTimeUp) -> int:
        log.info("out of task time: continuing in the next execution", job_id=self.config.job_id,
                 epoch=stop.epoch, seconds_left=round(stop.seconds_left, 1))
        self.progress.publish("continued", **stop.epoch_event, execution=execution_name(),
                              seconds_left=round(stop.seconds_left, 1), task_timeout=self.config.task_timeout)
        return 0

    # -- the model and its arguments ----------------------------------------

    def model(self, manifest: dict, resumed_from: int | None):
        require_safe_load()
        from ultralytics import YOLO
        if resumed_from:
            return YOLO(str(self.weights / "last.pt"))
        source = manifest["model"]
        if "yaml" in source:
            return YOLO(source["yaml"])
        base = self.config.job_dir / "base.pt"
        if "pretrained" in source:
            return YOLO(str(pretrained(source["pretrained"], source["cache"], source.get("sha256"), base)))
        # a registered model's best.pt, resolved and access-checked by the training function
        storage.blob_at(source["weights"]).download_to_filename(str(base))
        return YOLO(str(base))

    def train_args(self, manifest: dict, data_yaml: Path, device: str, resumed_from: int | None) -> dict:
        common = {"data": str(data_yaml), "device": device, "plots": False, "exist_ok": True}
        if resumed_from:
            return {**common, "resume": str(self.weights / "last.pt"), "save_dir": str(self.run_dir)}
        return {**common, **manifest["train_args"], "project": str(self.config.job_dir), "name": "run",
                "save": True, "val": True}

    # -- the bucket ------------------------------------------------------------

    def _blob(self, name: str):
        return self.bucket.blob(name)

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket.name}/{name}"

    def cancel_requested(self) -> bool:
        return self._blob(layout.training_cancel_marker(self.config.job_id)).exists()

    def restore_checkpoint(self) -> int | None:
        """Bring the bucket's checkpoint to disk; the number of epochs it holds, or None."""
        last = self._blob(layout.training_checkpoint(self.config.job_id, "last.pt"))
        if not last.exists():
            if self.config.attempt > 0:
                log.warning("task retried but no checkpoint was saved yet: starting over", job_id=self.config.job_id)
            return None
        self.weights.mkdir(parents=True, exist_ok=True)
        for name in CHECKPOINT_FILES:
            blob = self._blob(layout.training_checkpoint(self.config.job_id, name))
            target = (self.run_dir if name.endswith(".csv") else self.weights) / name
            if blob.exists():
                blob.download_to_filename(str(target))
        # Ultralytics' last step loads best.pt and last.pt without its safe loader (strip_optimizer):
        # both are checked here first, so a planted checkpoint fails the job before anything runs.
        checkpoints = {name: load_safely(self.weights / name, f"the checkpoint {name} of job {self.config.job_id}")
                       for name in ("last.pt", "best.pt") if (self.weights / name).exists()}
        epochs_done = int(checkpoints["last.pt"].get("epoch", -1)) + 1
        log.info("resuming from the checkpoint", job_id=self.config.job_id, epochs_done=epochs_done)
        return epochs_done

    def upload_checkpoint(self, best_changed: bool = True) -> dict:
        uploaded = {}
        for name in CHECKPOINT_FILES:
            local = (self.run_dir if name.endswith(".csv") else self.weights) / name
            if local.exists() and (best_changed or name != "best.pt"):
                key = layout.training_checkpoint(self.config.job_id, name)
                self._blob(key).upload_from_filename(str(local))
                uploaded[name.replace(".", "_")] = self.uri(key)
        return uploaded

    def best_weights(self) -> Path:
        return self.weights / "best.pt" if (self.weights / "best.pt").exists() else self.weights / "last.pt"

    def upload_results(self) -> dict:
        """best.pt, last.pt and results.csv under <job>/weights/ (best.onnx is export_onnx's)."""
        files = {"pt": (self.best_weights(), "best.pt"), "last": (self.weights / "last.pt", "last.pt"),
                 "results": (self.run_dir / "results.csv", "results.csv")}
        weights = {}
        for kind, (local, name) in files.items():
            key = layout.training_weights(self.config.job_id, name)
            self._blob(key).upload_from_filename(str(local))
            weights[kind] = self.uri(key)
        return weights

    def evaluate(self, manifest: dict, data, device: str) -> dict:
        """Per-class metrics and the confusion matrix of best.pt on the test split (val without one);
        {"error"} when it fails: evaluation, like the export, never fails a finished training."""
        split = "test" if data.counts.get("test") else "val"
        args = {"imgsz": manifest["train_args"]["imgsz"], "batch": max(1, manifest["train_args"]["batch"]),
                "device": device, "workers": 0, "project": str(self.config.job_dir), "name": "eval",
                "exist_ok": True}
        try:
            from jobs.trainer.evaluation import evaluate
            return evaluate(self.best_weights(), data.data_yaml, split, manifest["classes"], args)
        except Exception as exc:
            log.error("evaluation failed", job_id=self.config.job_id, error=repr(exc), traceback=traceback.format_exc())
            return {"split": split, "error": f"{type(exc).__name__}: {str(exc)[:500]}"}

    def export_onnx(self, imgsz: int, classes: list[str]) -> dict:
        """best.onnx, checked by the prediction function's own loader and uploaded: {"uri", "generation",
        "imgsz", "classes"}; or {"error"}. A failed export never fails the job: the model is registered
        with its .pt and the error, and prediction answers 409 naming it."""
        try:
            onnx = Path(export(self.best_weights(), imgsz))
            checked = model_cache.from_bytes(onnx.read_bytes(), (str(onnx), 0))
            if checked.names != classes:
                raise model_cache.ModelUnusable(f"the export has the classes {checked.names}, the job {classes}")
            blob = self._blob(layout.training_weights(self.config.job_id, "best.onnx"))
            blob.upload_from_filename(str(onnx))
            return {"uri": self.uri(blob.name), "generation": int(blob.generation),
                    "imgsz": list(checked.input_size), "classes": checked.names}
        except Exception as exc:
            log.error("ONNX export failed; registering the model without it", job_id=self.config.job_id,
                      error=repr(exc), traceback=traceback.format_exc())
            return {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}


def _rebuilt_job(config: Config, run: int, count: int) -> Job:
    """The job in a DDP worker: its own clients, its events numbered on from the launching process's."""
    progress = Progress(config.project, config.progress_topic, config.job_id, run)
    progress.count = count
    return Job(config, storage.blob_at(config.manifest_uri).bucket, progress)


def distributed(device: str) -> bool:
    """Several GPUs: Ultralytics trains with DDP, in worker processes of its own."""
    return "," in device


def rank() -> int:
    """This process's rank among DDP workers (torch.distributed.run sets RANK); -1 outside DDP."""
    return int(os.environ.get("RANK", "-1"))


class UnsafeWeights(RuntimeError):
    """A weight file that is not what it must be: never loaded."""


def require_safe_load() -> None:
    from ultralytics.utils import AUTOINSTALL, SAFE_LOAD
    if not SAFE_LOAD or AUTOINSTALL:
        raise UnsafeWeights("Ultralytics was imported before jobs.trainer set ULTRALYTICS_SAFE_LOAD=1 and "
                            "YOLO_AUTOINSTALL=false: refusing to load weights; set them in the environment")


def load_safely(path: Path, what: str) -> dict:
    """A checkpoint through Ultralytics' safe loader (torch.load(weights_only=True), only known model
    classes): a file that needs anything else is refused and never unpickled."""
    from ultralytics.nn.tasks import torch_safe_load
    try:
        checkpoint, _ = torch_safe_load(str(path), safe_only=True)
    except Exception as exc:
        raise UnsafeWeights(f"{what} refused: it is not a checkpoint Ultralytics' safe loader accepts "
                            f"({type(exc).__name__}: {str(exc)[:300]}); it was not loaded") from None
    if not isinstance(checkpoint, dict):
        raise UnsafeWeights(f"{what} refused: not an Ultralytics checkpoint (a {type(checkpoint).__name__})")
    return checkpoint


def check_pin(path: Path, name: str, sha256: str | None, what: str) -> None:
    """Refuse `path` unless its SHA-256 is the pin of `name` (common.domain.base_models)."""
    if not sha256:
        raise UnsafeWeights(f"the manifest pins no SHA-256 for {name}: ask again (the training function "
                            "now pins official weights)")
    with path.open("rb") as file:
        actual = hashlib.file_digest(file, "sha256").hexdigest()
    if actual != sha256:
        raise UnsafeWeights(f"{what} for {name} has SHA-256 {actual}, not its pin {sha256}: refused, not loaded; "
                            "replace it with the pinned file, or an operator corrects the pin in BASE_MODEL_SHA256")


def pretrained(name: str, cache_uri: str, sha256: str | None, local: Path) -> Path:
    """Ultralytics' pretrained weights `name` from the base-model cache; where it lacks them, downloaded
    from Ultralytics (production has the internet) into the cache; else a failure saying where to put them.
    Either file must have the pinned SHA-256; a download that has not is never cached."""
    cached = storage.blob_at(cache_uri)
    local.parent.mkdir(parents=True, exist_ok=True)
    if cached.exists():
        cached.download_to_filename(str(local))
        check_pin(local, name, sha256, f"the cached file {cache_uri}")
        return local
    from ultralytics.utils.downloads import attempt_download_asset
    try:
        downloaded = Path(attempt_download_asset(str(local.parent / name)))
    except Exception as exc:
        raise RuntimeError(f"the pretrained weights {name} are not in the base-model cache and could not be "
                           f"downloaded ({type(exc).__name__}); put the file at {cache_uri}") from None
    check_pin(downloaded, name, sha256, "the file downloaded from Ultralytics")
    try:
        cached.upload_from_filename(str(downloaded), if_generation_match=0)
    except PreconditionFailed:
        pass  # another job cached them first: the same file
    return downloaded


def export(weights: Path, imgsz: int) -> str:
    """Ultralytics' ONNX export of a detector, NMS outside the graph: prediction runs it in numpy with
    the request's conf, iou and max_det (a graph with NMS inside fixes them at export). The input is
    dynamic so an image is letterboxed into the minimum rectangle, as Ultralytics predicts with best.pt:
    a 640x480 photo costs 640x480 of inference, not 640x640 (measured: 43 against 57 ms here)."""
    from ultralytics import YOLO
    return YOLO(str(weights)).export(format="onnx", imgsz=imgsz, dynamic=True)


class EpochReporter:
    """Ultralytics callbacks: per-epoch checkpoint, progress event and cancel check.

    Under DDP they run in every worker: only the first rank reports (the others stop when it sets
    trainer.stop, which Ultralytics broadcasts), and it saves what it saw after each epoch for the launching
    process (save_outcome), which then publishes the end: completed, cancelled, or continued when the first
    rank ran out of time (it raises TaskTimeUp there as here, which ends the workers)."""

    def __init__(self, job: Job):
        self.job = job
        self.saved_epoch: int | None = None
        self.last_epoch = 0
        self.last_metrics: dict = {}
        self.final_metrics: dict | None = None
        self.cancelled = False
        self.epoch_started = time.monotonic()  # the first epoch's time includes building the model: on the safe side
        self.slowest_epoch = self.slowest_upload = 0.0
        self.time_up: TaskTimeUp | None = None

    def on_model_save(self, trainer) -> None:
        self.saved_epoch = trainer.epoch

    def on_fit_epoch_end(self, trainer) -> None:
        if rank() > 0:
            return
        try:
            self.report_epoch(trainer)
        finally:
            self.save_outcome()

    def report_epoch(self, trainer) -> None:
        if self.saved_epoch != trainer.epoch:  # Ultralytics' final validation of best.pt
            self.final_metrics = epoch_metrics(trainer)
            return
        epoch = trainer.epoch + 1
        final = trainer.stop or epoch >= trainer.epochs
        self.slowest_epoch = max(self.slowest_epoch, time.monotonic() - self.epoch_started)
        if not final:  # the final weights are uploaded at the end; a kill now redoes the last epoch
            uploading = time.monotonic()
            self.job.upload_checkpoint(best_changed=trainer.best_fitness == trainer.fitness)
            self.slowest_upload = max(self.slowest_upload, time.monotonic() - uploading)
        self.last_epoch, self.last_metrics = epoch, epoch_metrics(trainer)
        event = {"epoch": epoch, "epochs": trainer.epochs, "metrics": self.last_metrics,
                 "seconds": round(float(trainer.epoch_time or 0), 3)}
        self.job.progress.publish("epoch", **event)
        if not final and self.job.cancel_requested():
            log.info("cancel requested: stopping after this epoch", job_id=self.job.config.job_id, epoch=epoch)
            self.cancelled = trainer.stop = True
        if not final and not self.cancelled:
            self.stop_if_out_of_time(event)
        self.epoch_started = time.monotonic()

    def stop_if_out_of_time(self, event: dict) -> None:
        """Raise TaskTimeUp unless one more epoch (as slow as the slowest yet) and its checkpoint upload end
        before the deadline; before the last epoch, its evaluation and export too (counted as one more epoch)."""
        last_next = event["epoch"] + 1 >= event["epochs"]
        needed = self.slowest_epoch * (2 if last_next else 1) + self.slowest_upload
        left = self.job.config.deadline - time.monotonic()
        if needed > left:
            self.time_up = TaskTimeUp(event["epoch"], event["epochs"], left, event)
            raise self.time_up

    def save_outcome(self) -> None:
        """What this (first) rank saw, for the launching process (adopt); written whole, then renamed."""
        if rank() != 0:
            return
        stop = self.time_up
        outcome = {"count": self.job.progress.count, "last_epoch": self.last_epoch, "last_metrics": self.last_metrics,
                   "final_metrics": self.final_metrics, "cancelled": self.cancelled,
                   "time_up": None if stop is None else {"epoch": stop.epoch, "epochs": stop.epochs,
                                                          "seconds_left": stop.seconds_left,
                                                          "event": stop.epoch_event}}
        path = self.job.ddp_outcome
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".part").write_text(json.dumps(outcome))
        path.with_suffix(".part").replace(path)

    def adopt(self, path: Path) -> TaskTimeUp | None:
        """Take on what the DDP workers' first rank saved (its epochs, cancel and metrics, the events it
        published); the TaskTimeUp it stopped with, if it ran out of time. Nothing saved: nothing changes."""
        if not path.exists():
            return None
        outcome = json.loads(path.read_text())
        self.job.progress.count = max(self.job.progress.count, int(outcome["count"]))
        self.last_epoch, self.last_metrics = int(outcome["last_epoch"]), outcome["last_metrics"]
        self.final_metrics, self.cancelled = outcome["final_metrics"], bool(outcome["cancelled"])
        stop = outcome["time_up"]
        return None if stop is None else TaskTimeUp(stop["epoch"], stop["epochs"], stop["seconds_left"], stop["event"])


METRIC_NAMES = {"metrics/precision(B)": "precision", "metrics/recall(B)": "recall",
                "metrics/mAP50(B)": "mAP50", "metrics/mAP50-95(B)": "mAP50-95"}


def epoch_metrics(trainer) -> dict:
    losses = trainer.label_loss_items(trainer.tloss, prefix="train") if trainer.tloss is not None else {}
    metrics = {key.split("/", 1)[1]: round(float(value), 5) for key, value in losses.items()}
    for key, value in (trainer.metrics or {}).items():
        if key in METRIC_NAMES:
            metrics[METRIC_NAMES[key]] = round(float(value), 5)
        elif key.startswith("val/"):
            metrics["val_" + key.split("/", 1)[1]] = round(float(value), 5)
    return metrics


def _default_device() -> str:
    """Every GPU there is ("0,1,2,3", as Ultralytics reads device=[0, 1, 2, 3]: DDP over them), else the CPU."""
    import torch
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ",".join(str(index) for index in range(count)) if count else "cpu"
