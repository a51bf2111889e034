"""ONNX models for prediction, loaded once per instance.

A model is downloaded from the bucket pinned to its generation, so the cache key
(URI, generation) names exactly one file; the few most recently used stay
loaded, as many as PREDICT_MODELS_CACHED and no more ONNX bytes together than
PREDICT_MODELS_CACHED_BYTES (the one just loaded always stays): one person who
trains large models cannot fill an instance's memory with them. Loading checks that the graph is a detector
(rank-3 output), reads the class names and input size from the metadata Ultralytics embeds, and runs one
inference so the first request does not pay ONNX Runtime's lazy set-up. The
thread count follows the CPUs this instance may use: its affinity and its cgroup
quota, not the host's cores (microsoft/onnxruntime#29510).
"""
from __future__ import annotations

import ast
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cachetools
import numpy as np
from google.api_core.exceptions import NotFound

from common.cloud import storage
from common.platform import config, log

Key = tuple[str, int]  # (gs:// URI, generation)


class ModelUnusable(Exception):
    """The ONNX file cannot serve predictions; the message says why (a 409 for the caller)."""


class InferenceSession(Protocol):
    """What prediction asks of onnxruntime's InferenceSession (onnxruntime ships no types)."""
    def run(self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


@dataclass
class LoadedModel:
    key: Key
    session: InferenceSession = field(repr=False)
    input_name: str
    input_size: tuple[int, int]  # (h, w): the static graph's, or a dynamic one's trained size
    stride: int | None           # a dynamic graph's stride (minimum-rectangle letterbox); None: static
    names: list[str]
    end_to_end: bool             # NMS inside the graph: output rows x1 y1 x2 y2 conf class
    threads: int
    load_seconds: float
    size: int = 0                # bytes of the ONNX file: what the cache counts
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One inference at a time per model: each already uses every CPU of the instance."""
        with self.lock:
            return self.session.run(None, {self.input_name: batch})[0]


# Least recently used first; evict() bounds it by count and bytes together at each load (the settings read then).
_models: cachetools.LRUCache[Key, LoadedModel] = cachetools.LRUCache(maxsize=math.inf)
_loading: dict[Key, threading.Lock] = {}
_lock = threading.Lock()  # concurrent requests share _models and _loading


def get(uri: str, generation: int) -> LoadedModel:
    """The loaded model of this ONNX file generation, loading it on first use."""
    key = (uri, generation)
    with _lock:
        found = _models.get(key)  # a use: it becomes the most recently used
        if found is not None:
            return found
        loading = _loading.setdefault(key, threading.Lock())
    with loading:  # concurrent first requests load the file once
        with _lock:
            found = _models.get(key)
            if found is not None:
                return found
        model = load(key)
        with _lock:
            _models[key] = model
            evict(_models, config.predict_models_cached(), config.predict_models_cached_bytes())
            _loading.pop(key, None)
        return model


def evict(models: cachetools.LRUCache[Key, LoadedModel], count: int, size: int) -> None:
    """Least recently used first, until at most `count` models of at most `size` bytes together stay; the newest
    always stays (cachetools' own byte bound would refuse a model over it). A request still using an evicted model
    keeps it until it answers."""
    while len(models) > 1 and (len(models) > count or sum(m.size for m in models.values()) > size):
        models.popitem()


def current_generation(uri: str) -> int:
    """The live generation of an object named by URI (for a model registered without one)."""
    blob = storage.blob_at(uri)
    try:
        blob.reload()
    except NotFound:
        raise ModelUnusable(f"the ONNX weights {uri} are not in the bucket") from None
    return int(blob.generation)


def load(key: Key) -> LoadedModel:
    started = time.monotonic()
    data = _download(*key)
    model = from_bytes(data, key)
    model.size = len(data)
    model.load_seconds = round(time.monotonic() - started, 3)
    log.info("model loaded", uri=key[0], generation=key[1], seconds=model.load_seconds, threads=model.threads,
             input_size=model.input_size, stride=model.stride, classes=len(model.names),
             end_to_end=model.end_to_end)
    return model


def from_bytes(data: bytes, key: Key) -> LoadedModel:
    """A model from the bytes of an ONNX file, checked and warmed up; ModelUnusable when it cannot predict.
    The trainer checks its export with this too, so a registered ONNX is one this code can serve."""
    threads = available_cpus()
    model = _describe(key, _session(data, threads, key[0]), threads)
    try:
        model.run(np.zeros((1, 3, *_warm_up_size(model)), dtype=np.float32))
    except Exception as error:  # ONNX Runtime's own types: a graph that loads but does not run
        raise ModelUnusable(f"{key[0]} does not run: {str(error)[:300]}") from None
    return model


def _warm_up_size(model: LoadedModel) -> tuple[int, int]:
    """A static graph runs at its size only; a dynamic one is set up (threads, kernels) as well by a
    small input, which saves the cold first request a whole inference (61 against 2 ms at 640 here)."""
    return model.input_size if model.stride is None else (2 * model.stride, 2 * model.stride)


def _download(uri: str, generation: int) -> bytes:
    blob = storage.blob_at(uri)
    pinned = blob.bucket.blob(blob.name, generation=generation)
    try:
        return pinned.download_as_bytes()
    except NotFound:
        raise ModelUnusable(f"the ONNX weights {uri} (generation {generation}) are not in the bucket") from None


def _session(data: bytes, threads: int, uri: str):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Idle pool threads sleep instead of spinning: a spinning pool burns the instance's CPU quota
    # (and a shared host's cores) between inferences; measured here, it was slower under load.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime raises its own types for a file it cannot load
        raise ModelUnusable(f"{uri} is not a loadable ONNX model: {str(error)[:300]}") from None


def _describe(key: Key, session, threads: int) -> LoadedModel:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    metadata = session.get_modelmeta().custom_metadata_map
    if len(inputs) != 1 or len(outputs[0].shape) != 3:
        raise ModelUnusable(f"{key[0]} is not a YOLO detector: inputs {[i.shape for i in inputs]}, "
                            f"first output {outputs[0].shape}")
    dynamic = not all(isinstance(side, int) for side in inputs[0].shape[2:])
    return LoadedModel(key=key, session=session, input_name=inputs[0].name,
                       input_size=_input_size(inputs[0].shape, metadata, key[0]),
                       stride=_stride(metadata) if dynamic else None, names=_names(metadata, key[0]),
                       end_to_end=metadata.get("end2end") == "True" or outputs[0].shape[-1] == 6,
                       threads=threads, load_seconds=0.0)


def _input_size(shape: list, metadata: dict, uri: str) -> tuple[int, int]:
    if all(isinstance(side, int) for side in shape[2:]):
        return int(shape[2]), int(shape[3])
    try:
        size = ast.literal_eval(metadata["imgsz"])
        return int(size[0]), int(size[1])
    except (KeyError, ValueError, SyntaxError, TypeError, IndexError):
        raise ModelUnusable(f"{uri} has a dynamic input and no imgsz in its metadata") from None


def _stride(metadata: dict) -> int:
    try:
        return max(1, int(metadata.get("stride", 32)))
    except ValueError:
        return 32


def _names(metadata: dict, uri: str) -> list[str]:
    """Ultralytics writes names as the repr of {id: name}."""
    try:
        names = ast.literal_eval(metadata["names"])
        return [str(names[i]) for i in range(len(names))]
    except (KeyError, ValueError, SyntaxError, TypeError):
        raise ModelUnusable(f"{uri} has no class names in its metadata (not an Ultralytics export)") from None


def available_cpus() -> int:
    """PREDICT_THREADS, else the CPUs this process may run on, bounded by its cgroup CPU quota."""
    configured = config.predict_threads()
    if configured:
        return configured
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by cgroup v2 cpu.max or v1 cfs quota; None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 else None
    except (OSError, ValueError):
        return None
