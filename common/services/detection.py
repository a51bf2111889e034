"""One image through a loaded ONNX model, as Ultralytics predicts it: decode, letterbox,
inference, NMS. Shared by the prediction function and auto-labelling (which runs it
in-process in the dataset-jobs function), so both give the same boxes."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from common.cloud import model_cache
from common.domain import prediction
from common.domain.prediction import Thresholds


@dataclass
class Timer:
    """Milliseconds spent per stage, over every image of a request."""
    spent: dict[str, float] = field(default_factory=lambda: {"preprocess": 0.0, "inference": 0.0,
                                                              "postprocess": 0.0})

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.spent[stage] += (now - started) * 1000
        return now

    def view(self) -> dict:
        return {stage: round(ms, 2) for stage, ms in self.spent.items()}


def detect(session: model_cache.LoadedModel, data: bytes, thresholds: Thresholds,
           timer: Timer | None = None) -> tuple[tuple[int, int], list[prediction.Detection]]:
    """The upright size (w, h) of one encoded image and its detections; ImageRejected when it is no image."""
    timer = timer or Timer()
    started = time.perf_counter()
    pixels = prediction.decode_image(data)
    timer.add("preprocess", started)
    return detect_pixels(session, pixels, thresholds, timer)


def detect_pixels(session: model_cache.LoadedModel, pixels, thresholds: Thresholds,
                  timer: Timer) -> tuple[tuple[int, int], list[prediction.Detection]]:
    """The same for an image already decoded (upright RGB, h x w x 3)."""
    started = time.perf_counter()
    canvas, placement = prediction.letterbox(pixels, session.input_size, session.stride)
    batch = prediction.to_input([canvas])
    started = timer.add("preprocess", started)
    output = session.run(batch)
    started = timer.add("inference", started)
    found = prediction.detections(output[0], placement, thresholds, session.end_to_end)
    timer.add("postprocess", started)
    return (pixels.shape[1], pixels.shape[0]), found
