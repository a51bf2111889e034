"""Training requests: what a request may say, and what it means. Pure rules.

A request is JSON: {"dataset", "model", "epochs", "imgsz", "batch", "patience",
"request_id"?, "val_fraction"?, "version"?, "accelerator"?: {"type", "count"},
<allowlisted Ultralytics train arguments>...}.
`validate` turns it into a TrainingRequest or raises InvalidRequest with a
reason a person understands; nothing here touches a cloud.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, cast

from common.domain import accelerators

# Ultralytics detection model YAMLs: the scaled families (yolov8n.yaml, yolo11s.yaml)
# and the ones shipped per size (yolov9t.yaml, yolov10b.yaml, yolov3-tiny.yaml).
MODEL_YAML = re.compile(r"^((yolov5|yolov6|yolov8|yolo11|yolo12|yolo26)[nsmlx]?|yolov3(-tiny)?"
                        r"|yolov9[tsmce]|yolov10[nsmblx])\.yaml$")
MODEL_YAML_HELP = ("an Ultralytics detection model YAML (yolov8n.yaml, yolo11s.yaml, ...), pretrained "
                   "weights by their official name (yolo11n.pt, yolov8s.pt, ...: the base-model cache) "
                   "or the id of a registered model you may view (GET /models)")
NO_PATHS = ("weights are never read from a path (gs://, a URL or a file): a training starts from "
            + MODEL_YAML_HELP + "; to start from your own weights, train a model here and name its id")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
OPTIMIZERS = ("SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp", "auto")


@dataclass(frozen=True)
class Arg:
    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    def check(self, name: str, value: Any) -> Any:
        if self.kind is bool:
            if not isinstance(value, bool):
                raise InvalidRequest(f"{name} must be true or false, got {value!r}")
            return value
        if self.choices:
            if value not in self.choices:
                raise InvalidRequest(f"{name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
            return value
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (self.kind is int and value != int(value)):
            raise InvalidRequest(f"{name} must be {'an integer' if self.kind is int else 'a number'}, got {value!r}")
        if not self.low <= value <= self.high:
            raise InvalidRequest(f"{name} must be from {self.low} to {self.high}, got {value!r}")
        return self.kind(value)


# The request's own fields, with their defaults.
CORE_ARGS = {
    "epochs": (Arg(int, 1, 1000), 50),
    "imgsz": (Arg(int, 32, 2048), 640),
    "batch": (Arg(int, -1, 512), 16),  # -1: Ultralytics picks the batch for the GPU memory
    "patience": (Arg(int, 0, 1000), 50),
}
# Further Ultralytics train arguments a request may pass through. Everything
# else (data, project, device, resume, save, ...) belongs to the trainer.
PASSTHROUGH_ARGS = {
    "optimizer": Arg(str, choices=OPTIMIZERS),
    "lr0": Arg(float, 1e-6, 1.0), "lrf": Arg(float, 1e-6, 1.0),
    "momentum": Arg(float, 0.0, 1.0), "weight_decay": Arg(float, 0.0, 0.1),
    "warmup_epochs": Arg(float, 0.0, 100.0), "cos_lr": Arg(bool),
    "close_mosaic": Arg(int, 0, 1000), "seed": Arg(int, 0, 2**31 - 1),
    "deterministic": Arg(bool), "single_cls": Arg(bool), "rect": Arg(bool),
    "freeze": Arg(int, 0, 100), "dropout": Arg(float, 0.0, 0.9), "fraction": Arg(float, 0.01, 1.0),
    "box": Arg(float, 0.0, 100.0), "cls": Arg(float, 0.0, 100.0), "dfl": Arg(float, 0.0, 100.0),
    "hsv_h": Arg(float, 0.0, 1.0), "hsv_s": Arg(float, 0.0, 1.0), "hsv_v": Arg(float, 0.0, 1.0),
    "degrees": Arg(float, 0.0, 180.0), "translate": Arg(float, 0.0, 1.0), "scale": Arg(float, 0.0, 1.0),
    "shear": Arg(float, 0.0, 180.0), "perspective": Arg(float, 0.0, 0.001),
    "flipud": Arg(float, 0.0, 1.0), "fliplr": Arg(float, 0.0, 1.0),
    "mosaic": Arg(float, 0.0, 1.0), "mixup": Arg(float, 0.0, 1.0), "cutmix": Arg(float, 0.0, 1.0),
    "workers": Arg(int, 0, 32), "amp": Arg(bool), "cache": Arg(bool),
}
OWN_FIELDS = {"dataset", "model", "request_id", "val_fraction", "version", "accelerator"}
VERSION_ID = re.compile(r"^v[1-9][0-9]{0,8}$")  # common.domain.versions.VERSION_ID
DEFAULT_VAL_FRACTION = 0.2


class InvalidRequest(ValueError):
    """The request can never succeed; the message says why."""


@dataclass(frozen=True)
class TrainingRequest:
    dataset: str
    model: str
    request_id: str
    val_fraction: float
    train_args: dict[str, Any] = field(default_factory=dict)  # epochs, imgsz, batch, patience + passthrough
    version: str | None = None  # a frozen version of the dataset to train on; None: the dataset as it is now
    accelerator: accelerators.Accelerator | None = None  # several GPUs on Vertex AI; None: the Cloud Run Job

    @property
    def epochs(self) -> int:
        return cast(int, self.train_args["epochs"])


ADMINISTRATOR = "admin"  # the requester the API names for the administrator (common.api.context.Principal.name)


def job_id_for(request_id: str, requester: str | None = None) -> str:
    """The job of a request: the same requester's request_id always names the same job, and no
    one else's can. A person's ids are namespaced by their uid, so a chosen request_id cannot
    squat or guess another person's job; the administrator and a direct Pub/Sub publisher
    (requester None: whoever may publish is an operator) share the plain namespace."""
    operator = requester is None or requester == ADMINISTRATOR
    key = request_id if operator else f"person:{requester}\n{request_id}"  # no \n in a request_id
    return "job-" + hashlib.sha256(key.encode()).hexdigest()[:20]


def model_kind(model: str) -> str:
    """'yaml', 'pretrained' (yolo11n.pt), 'path' (refused: gs://..., a URL, a file) or 'registered' (a model id)."""
    if "/" in model or ":" in model or "\\" in model:
        return "path"
    if model.endswith(".yaml"):
        return "yaml"
    if model.endswith(".pt"):
        return "pretrained"
    return "registered"


def is_official_weights(name: str) -> bool:
    """Ultralytics' pretrained detectors: the name of a detection YAML with .pt (yolov5 and yolov3 end in u)."""
    stem = name.removesuffix(".pt")
    return bool(MODEL_YAML.match(f"{stem}.yaml") or MODEL_YAML.match(f"{stem.removesuffix('u')}.yaml"))


def validate(body: object, default_request_id: str,
             limits: accelerators.Limits = accelerators.CLOUD_RUN_ONLY) -> TrainingRequest:
    """The request, checked; `limits` are the accelerators the operator allows (none: the Cloud Run Job only)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request must be a JSON object")
    dataset = body.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise InvalidRequest("dataset is required: the name of a dataset under datasets/")
    request_id = body.get("request_id", default_request_id)
    if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
        raise InvalidRequest("request_id must be 1-128 letters, digits or . _ : -")
    not_allowed = sorted(set(body) - OWN_FIELDS - set(CORE_ARGS) - set(PASSTHROUGH_ARGS))
    if not_allowed:
        raise InvalidRequest(f"argument(s) not allowed: {', '.join(not_allowed)}; allowed: "
                             f"{', '.join(sorted(OWN_FIELDS | set(CORE_ARGS) | set(PASSTHROUGH_ARGS)))}")
    train_args = {name: arg.check(name, body.get(name, default)) for name, (arg, default) in CORE_ARGS.items()}
    if train_args["batch"] == 0:
        raise InvalidRequest("batch must be -1 (automatic) or from 1 to 512, got 0")
    train_args.update({name: PASSTHROUGH_ARGS[name].check(name, value)
                       for name, value in body.items() if name in PASSTHROUGH_ARGS})
    val_fraction = Arg(float, 0.05, 0.5).check("val_fraction", body.get("val_fraction", DEFAULT_VAL_FRACTION))
    version = body.get("version")
    if version is not None and (not isinstance(version, str) or not VERSION_ID.match(version)):
        raise InvalidRequest(f"version must be a version id of the dataset (v1, v2, ...), got {version!r}")
    accelerator = _accelerator(body.get("accelerator"), limits, train_args["batch"])
    return TrainingRequest(dataset, check_model(body.get("model")), request_id, val_fraction, train_args, version,
                           accelerator)


def _accelerator(value: object, limits: accelerators.Limits, batch: int) -> accelerators.Accelerator | None:
    try:
        accelerator = accelerators.check(value, limits)
    except accelerators.InvalidAccelerator as exc:
        raise InvalidRequest(str(exc)) from None
    refusal = accelerators.batch_refusal(accelerator, batch)
    if refusal:
        raise InvalidRequest(refusal)
    return accelerator


def check_model(model: object) -> str:
    """The model a request names, or InvalidRequest saying what it may name instead."""
    if not isinstance(model, str) or not model:
        raise InvalidRequest(f"model is required: {MODEL_YAML_HELP}")
    kind = model_kind(model)
    if kind == "path":
        raise InvalidRequest(f"model {model!r} refused: {NO_PATHS}")
    if kind == "yaml" and not MODEL_YAML.match(model):
        raise InvalidRequest(f"unknown model {model!r}: expected {MODEL_YAML_HELP}")
    if kind == "pretrained" and not is_official_weights(model):
        raise InvalidRequest(f"unknown model {model!r}: not an Ultralytics detector's weights (yolo11n.pt, ...)")
    return model


def in_val_split(sha256: str, val_fraction: float) -> bool:
    """The deterministic split for a dataset with no val images: by content hash,
    so the same image always lands on the same side, whatever else arrives."""
    return int(sha256[:8], 16) / 0x1_0000_0000 < val_fraction
