"""Prediction with a YOLO detector exported to ONNX, exactly as Ultralytics predicts. numpy, Pillow and OpenCV.

    decode_image -> letterbox -> to_input -> (the ONNX session) -> detections -> Box

Each step is the one Ultralytics' predictor takes for an ONNX model
(ultralytics/engine/predictor.py, data/augment.py LetterBox, utils/nms.py,
utils/ops.py scale_boxes), so the same file on the same image gives the same
boxes: the image as cv2.imread(IMREAD_COLOR) reads it (a JPEG by OpenCV itself; the
rest by Pillow the same way: EXIF orientation applied, alpha dropped, 16-bit
samples keep their high byte), the letterbox Ultralytics
picks for the graph (a square for a static input; for a dynamic one the minimum
rectangle, padded only to a multiple of the stride; ultralytics#14285 was a
letterbox that differed), resized and padded by the same OpenCV calls
(cv2.resize INTER_LINEAR, copyMakeBorder grey 114), class-aware greedy NMS
(torchvision's rule, run by OpenCV's cv2.dnn.NMSBoxes), and boxes scaled back
per axis and clipped to the image.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common.domain.imaging import JPEG_END_MARKER, open_image

PAD_VALUE = 114
MAX_NMS = 30_000      # boxes that enter NMS at most (by confidence), as Ultralytics
MAX_WH = 7680         # the class offset that keeps NMS per class
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
BAND_PIXELS = 1 << 20  # pixels converted at once: 4 MiB of int32 at most
# OpenCV runs in the calling thread, as under Ultralytics (cv2.setNumThreads(0)): images are decoded and
# letterboxed in prediction's own threads, beside ONNX Runtime's pool, which already takes every CPU.
cv2.setNumThreads(0)


class ImageRejected(ValueError):
    """An input that is not an image prediction can run on; the message says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Thresholds:
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    classes: frozenset[int] | None = None  # class ids to keep; None keeps all


@dataclass(frozen=True)
class Letterbox:
    """How an image of `shape` (h, w) was placed on a model input of `size` (h, w)."""
    shape: tuple[int, int]
    size: tuple[int, int]
    resized: tuple[int, int]  # (h, w) of the image inside the input
    top: int
    left: int


@dataclass(frozen=True)
class Detection:
    class_id: int
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float


# ---- decoding ----------------------------------------------------------------

def decode_image(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """The upright RGB pixels (h, w, 3, uint8) of an encoded image, as cv2.imread(IMREAD_COLOR)
    reads it; ImageRejected when it is empty, not an image, too large to decode safely, or corrupt."""
    if not data:
        raise ImageRejected("image_empty", "the image is empty (0 bytes)")
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        image = open_image(io.BytesIO(data))  # HEIC too, through the plugin Ultralytics reads it with
    except Image.DecompressionBombError as error:  # over twice the limit: Pillow refuses before decoding
        raise ImageRejected("image_too_large", f"{error}; not decoded") from None
    except UnidentifiedImageError:
        raise ImageRejected("image_unreadable",
                            f"not an image in any format Pillow reads ({len(data)} bytes)") from None
    except Exception as error:  # Pillow raises many types for data it cannot parse
        raise ImageRejected("image_unreadable", f"not a readable image: {_reason(error)}") from None
    with image:
        width, height = image.size
        if limit is not None and width * height > limit:  # checked before any pixel is decoded
            raise ImageRejected("image_too_large", f"{width}x{height} is {width * height} pixels, over the "
                                f"limit of {limit} pixels an image may have here; not decoded: send it smaller")
        try:
            if image.format == "JPEG" and data.endswith(JPEG_END_MARKER):
                return _jpeg_rgb(data)
            return _upright_rgb(image)
        except MemoryError:  # not the image's fault: say so rather than call it corrupt
            raise ImageRejected("image_too_large", f"{width}x{height} could not be decoded in the memory free now; "
                                "try again, or send it smaller") from None
        except Exception as error:  # truncated or broken data
            raise ImageRejected("image_corrupt", f"the image data is corrupt or truncated: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _jpeg_rgb(data: bytes) -> np.ndarray:
    """A whole JPEG decoded as Ultralytics' cv2.imread decodes it (OpenCV's libjpeg-turbo, EXIF orientation
    applied, CMYK too), turned to RGB in place: 3 bytes a pixel and no other copy, where Pillow holds 4 and
    hands them over through 3 more. One cut short (no end marker) goes through Pillow, which refuses it
    where OpenCV would fill the rest with grey."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("OpenCV could not decode the JPEG data")
    rgb: np.ndarray = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)
    return rgb


def _upright_rgb(image: Image.Image) -> np.ndarray:
    """Decoded once, turned upright in place, then converted to 8-bit RGB a band of rows at a time:
    besides Pillow's own pixels, memory holds only the 3-byte result and one band (no full-size
    copies, no 16-bit image widened to 64-bit integers)."""
    image.load()
    ImageOps.exif_transpose(image, in_place=True)
    width, height = image.size
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rows = max(1, BAND_PIXELS // width)
    if rows >= height:  # one band: the image itself, not a copy of it
        rgb[:] = _rgb_band(image)
        return rgb
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        rgb[top:bottom] = _rgb_band(image.crop((0, top, width, bottom)))
    return rgb


def _rgb_band(band: Image.Image) -> np.ndarray:
    if band.mode in _SIXTEEN_BIT_MODES:  # cv2 keeps the high byte of 16-bit samples (Pillow would clip)
        grey = (np.clip(np.asarray(band).astype(np.int32, copy=False), 0, 65535) >> 8).astype(np.uint8)
        return grey[..., None]
    if band.mode == "F":
        return np.expand_dims(np.clip(np.asarray(band), 0, 255).astype(np.uint8), -1)
    return np.asarray(band if band.mode == "RGB" else band.convert("RGB"))


# ---- letterbox and the model input -------------------------------------------

def letterbox_for(shape: tuple[int, int], size: tuple[int, int], stride: int | None = None) -> Letterbox:
    """Ultralytics LetterBox(scaleup=True, center=True) for an image of (h, w) `shape` into `size`:
    auto=False (the whole square) without a stride, auto=True (the minimum rectangle: padding only up
    to a multiple of the stride) with one, as Ultralytics letterboxes for a dynamic input."""
    (h, w), (target_h, target_w) = shape, size
    ratio = min(target_h / h, target_w / w)
    new_w, new_h = max(round(w * ratio), 1), max(round(h * ratio), 1)
    pad_w, pad_h = target_w - new_w, target_h - new_h
    if stride:
        pad_w, pad_h = pad_w % stride, pad_h % stride
    top, bottom = round(pad_h / 2 - 0.1), round(pad_h / 2 + 0.1)
    left, right = round(pad_w / 2 - 0.1), round(pad_w / 2 + 0.1)
    return Letterbox(shape=(h, w), size=(new_h + top + bottom, new_w + left + right), resized=(new_h, new_w),
                     top=top, left=left)


def letterbox(pixels: np.ndarray, size: tuple[int, int], stride: int | None = None) -> tuple[np.ndarray, Letterbox]:
    """The image resized into `size` (h, w) keeping its aspect ratio, padded with grey 114: the two OpenCV
    calls of Ultralytics' LetterBox (cv2.resize INTER_LINEAR, then copyMakeBorder), so the same pixels."""
    placement = letterbox_for(pixels.shape[:2], size, stride)
    (new_h, new_w), (height, width), top, left = placement.resized, placement.size, placement.top, placement.left
    resized = pixels
    if placement.resized != placement.shape:
        resized = cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas: np.ndarray = cv2.copyMakeBorder(resized, top, height - new_h - top, left, width - new_w - left,
                                cv2.BORDER_CONSTANT, value=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    return canvas, placement


def to_input(canvases: list[np.ndarray]) -> np.ndarray:
    """A float32 NCHW batch scaled to 0..1, as the model was trained to read it (divided by 255 as
    Ultralytics divides, in one pass into the batch)."""
    batch = np.empty((len(canvases), 3, *canvases[0].shape[:2]), dtype=np.float32)
    for slot, canvas in zip(batch, canvases):
        np.divide(canvas.transpose(2, 0, 1), np.float32(255), out=slot, dtype=np.float32)
    return batch


# ---- from the model's output to boxes ----------------------------------------

def detections(output: np.ndarray, placement: Letterbox, thresholds: Thresholds,
               nms_in_graph: bool = False) -> list[Detection]:
    """The boxes of one image's output: (4 + classes, anchors) goes through NMS; a graph exported
    with NMS inside gives (n, 6) rows of x1 y1 x2 y2 conf class, which are only filtered."""
    rows = end_to_end(output, thresholds) if nms_in_graph else non_max_suppression(output, thresholds)
    boxes = scale_boxes(rows[:, :4], placement)
    return [Detection(int(row[5]), float(row[4]), *map(float, box)) for row, box in zip(rows, boxes)]


def end_to_end(rows: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    keep = rows[:, 4] > thresholds.conf
    if thresholds.classes is not None:
        keep &= np.isin(rows[:, 5].astype(np.int64), list(thresholds.classes))
    return rows[keep][:thresholds.max_det].astype(np.float32)


def non_max_suppression(output: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Ultralytics non_max_suppression for one image, best class per box: rows of x1 y1 x2 y2 conf class."""
    scores = output[4:]
    candidates = output[:, scores.max(axis=0) > thresholds.conf].T
    if not len(candidates):
        return np.zeros((0, 6), dtype=np.float32)
    class_scores = candidates[:, 4:]
    best = class_scores.argmax(axis=1)
    rows = np.concatenate([xywh_to_xyxy(candidates[:, :4]), class_scores.max(axis=1, keepdims=True),
                           best[:, None].astype(np.float32)], axis=1)
    if thresholds.classes is not None:
        rows = rows[np.isin(best, list(thresholds.classes))]
    if len(rows) > MAX_NMS:
        rows = rows[np.argsort(-rows[:, 4], kind="stable")[:MAX_NMS]]
    keep = greedy_nms(rows[:, :4] + rows[:, 5:6] * MAX_WH, rows[:, 4], thresholds.iou)
    return np.take(rows, keep[:thresholds.max_det], axis=0)


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """torchvision.ops.nms, the indices kept best first: highest score first (ties in input order), dropping
    every later box that overlaps a kept one by more than `iou`. cv2.dnn.NMSBoxes keeps by that same rule, in
    C++; it takes (x, y, w, h) in doubles (exact for float32 corners) and keeps only scores above 0, which every
    candidate has (its score is above conf >= 0). Classes are kept apart by the caller's offset, as Ultralytics
    does: NMSBoxesBatched's own offset (the largest coordinate + 1) lets a box left of 0 reach the class before."""
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    corners = boxes.astype(np.float64)
    rectangles = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxes(rectangles.tolist(), scores.astype(np.float32).tolist(), 0.0, float(iou))
    return np.asarray(kept, dtype=np.int64).reshape(-1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def scale_boxes(boxes: np.ndarray, placement: Letterbox) -> np.ndarray:
    """Boxes on the model input back to pixels of the image, per axis, clipped to it: Ultralytics'
    scale_boxes, which works the placement out again from the input's size and the image's."""
    (h, w), (input_h, input_w) = placement.shape, placement.size
    gain = min(input_h / h, input_w / w)
    new_h, new_w = max(round(h * gain), 1), max(round(w * gain), 1)
    offset = np.array([round((input_w - new_w) / 2 - 0.1), round((input_h - new_h) / 2 - 0.1)] * 2, dtype=np.float32)
    scaled = (boxes - offset) / np.array([new_w / w, new_h / h] * 2, dtype=np.float32)
    return np.clip(scaled, 0, np.array([w, h, w, h], dtype=np.float32))


# ---- boxes as the answer shows them ------------------------------------------

def box_view(detection: Detection, image_size: tuple[int, int], names: list[str]) -> dict[str, Any]:
    """One box: pixels of the upright image and the YOLO label row of it (normalized cx cy w h)."""
    width, height = image_size
    x1, y1, x2, y2 = detection.x1, detection.y1, detection.x2, detection.y2
    return {"class_id": detection.class_id, "class_name": _name(names, detection.class_id),
            "confidence": round(detection.confidence, 5),
            "x1": round(x1, 2), "y1": round(y1, 2), "x2": round(x2, 2), "y2": round(y2, 2),
            "cx": _unit((x1 + x2) / 2 / width), "cy": _unit((y1 + y2) / 2 / height),
            "w": _unit((x2 - x1) / width), "h": _unit((y2 - y1) / height)}


def _name(names: list[str], class_id: int) -> str | None:
    return names[class_id] if 0 <= class_id < len(names) else None


def _unit(value: float) -> float:
    return round(min(max(value, 0.0), 1.0), 6)
