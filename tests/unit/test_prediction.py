"""The prediction rules, pure: decoding of every image mode (in bounded memory), the letterbox, NMS, box
conversion and what the model cache keeps. (Parity with Ultralytics itself is tests/integration/test_predict.py.)"""
from __future__ import annotations

import io
import math
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib

import cachetools
import cv2
import numpy as np
import pytest
from PIL import Image

from common.cloud import model_cache
from common.domain import prediction
from common.domain.prediction import Detection, ImageRejected, Thresholds

RNG = np.random.default_rng(5)
RGB = RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# ---- decoding ------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK"])
def test_every_mode_decodes_to_rgb_of_the_same_size(mode):
    image = Image.fromarray(RGB).convert(mode)
    pixels = prediction.decode_image(encoded(image, "JPEG" if mode == "CMYK" else "PNG"))
    assert pixels.shape == (30, 40, 3) and pixels.dtype == np.uint8


def test_alpha_is_dropped_not_composited_and_grey_is_repeated():
    rgba = np.dstack([RGB, np.zeros((30, 40), dtype=np.uint8)])
    assert (prediction.decode_image(encoded(Image.fromarray(rgba))) == RGB).all()
    grey = prediction.decode_image(encoded(Image.fromarray(RGB[..., 0])))
    assert (grey == RGB[..., :1]).all()


def test_sixteen_bit_samples_keep_their_high_byte():
    samples = np.array([[0, 255, 256, 65535, 40000]], dtype=np.uint16)
    pixels = prediction.decode_image(encoded(Image.fromarray(samples)))
    assert pixels[0, :, 0].tolist() == [0, 0, 1, 255, 156]


@pytest.mark.parametrize("orientation, upright", [(1, RGB), (3, RGB[::-1, ::-1]), (6, np.rot90(RGB, -1)),
                                                  (8, np.rot90(RGB))])
def test_exif_orientation_is_applied(orientation, upright):
    exif = Image.Exif()
    exif[274] = orientation
    pixels = prediction.decode_image(encoded(Image.fromarray(RGB), "PNG", exif=exif.tobytes()))
    assert (pixels == upright).all()


@pytest.mark.parametrize("data, code", [
    (b"", "image_empty"), (b"text, not pixels", "image_unreadable"),
    (encoded(Image.fromarray(RGB), "JPEG")[:-100], "image_corrupt"),
])
def test_what_is_no_image_is_rejected_with_a_code(data, code):
    with pytest.raises(ImageRejected) as rejected:
        prediction.decode_image(data)
    assert rejected.value.code == code


def test_a_heic_decodes_to_the_pixels_pillow_gives_it():
    import pillow_heif
    ramp = np.zeros((48, 64, 3), dtype=np.uint8)
    ramp[..., 0], ramp[..., 2] = np.arange(64, dtype=np.uint8) * 4, 200
    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(ramp)).save(buffer, quality=95)
    pixels = prediction.decode_image(buffer.getvalue())
    assert pixels.shape == ramp.shape and pixels.dtype == np.uint8
    assert np.abs(pixels.astype(int) - ramp.astype(int)).mean() < 4  # lossy, but the same picture


def png16_grey(samples: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG (Pillow opens it as I;16)."""
    height, width = samples.shape
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_a_sixteen_bit_image_taller_than_a_band_keeps_every_high_byte():
    samples = RNG.integers(0, 65536, (2 * prediction.BAND_PIXELS // 300 + 7, 300), dtype=np.uint16)
    pixels = prediction.decode_image(png16_grey(samples))
    assert pixels.shape == (*samples.shape, 3)
    assert (pixels == (samples >> 8).astype(np.uint8)[..., None]).all()


@pytest.mark.parametrize("mode, values, expected", [
    ("I", [-5, 0, 255, 256, 65535, 70000], [0, 0, 0, 1, 255, 255]),      # 32-bit integers: clipped to 16 bits
    ("F", [-1.5, 0.0, 17.9, 254.5, 300.0, 1e9], [0, 0, 17, 254, 255, 255]),  # floats: clipped to 0..255
])
def test_wide_sample_modes_become_8_bit_as_cv2_reads_them(mode, values, expected):
    image = Image.fromarray(np.array([values], dtype=np.int32 if mode == "I" else np.float32), mode)
    pixels = prediction.decode_image(encoded(image, "TIFF"))
    assert pixels[0, :, 0].tolist() == expected and (pixels[..., 0] == pixels[..., 2]).all()


def test_decoding_a_sixteen_bit_image_allocates_only_its_8_bit_rgb_and_one_band():
    """The int64 copies it once made (three of 8 bytes a pixel) would be 24 bytes a pixel."""
    samples = np.full((1500, 2000), 40000, dtype=np.uint16)
    data = png16_grey(samples)
    tracemalloc.start()
    try:
        prediction.decode_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * samples.size + 12 * prediction.BAND_PIXELS, peak


def opencv_rgb(data: bytes) -> np.ndarray:
    """What Ultralytics decodes a file into (cv2.imread is cv2.imdecode of its bytes), as RGB."""
    return np.ascontiguousarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1])


@pytest.mark.parametrize("mode, orientation", [("RGB", 1), ("RGB", 6), ("L", 8), ("CMYK", 1)])
def test_a_jpeg_is_decoded_as_ultralytics_decodes_it(mode, orientation):
    """OpenCV's own decoder, EXIF orientation applied: a CMYK JPEG too (Pillow's was 1 level off)."""
    exif = Image.Exif()
    exif[274] = orientation
    photo = RNG.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(photo).convert(mode), "JPEG", quality=90, exif=exif.tobytes())
    pixels = prediction.decode_image(data)
    assert pixels.shape == ((90, 60, 3) if orientation in (5, 6, 7, 8) else (60, 90, 3))
    assert np.array_equal(pixels, opencv_rgb(data))


def test_a_jpeg_with_bytes_after_its_end_still_decodes_and_one_cut_short_is_refused():
    data = encoded(Image.fromarray(RGB), "JPEG", quality=90)
    assert np.array_equal(prediction.decode_image(data + b"a trailer some cameras add"), opencv_rgb(data))
    with pytest.raises(ImageRejected) as rejected:
        prediction.decode_image(data[:len(data) // 2])
    assert rejected.value.code == "image_corrupt"


def test_decoding_a_jpeg_photo_allocates_only_its_rgb():
    """Through Pillow the pixels were handed over as bytes, then copied: twice the 3 bytes a pixel."""
    data = encoded(Image.fromarray(RNG.integers(0, 256, (1080, 810, 3), dtype=np.uint8)), "JPEG", quality=90)
    tracemalloc.start()
    try:
        pixels = prediction.decode_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pixels.nbytes <= peak < pixels.nbytes + 262144, peak


def test_an_image_over_the_pixel_limit_is_refused_undecoded_whatever_its_depth():
    data = png16_grey(np.zeros((100, 120), dtype=np.uint16))
    with pytest.raises(ImageRejected) as rejected:
        prediction.decode_image(data, max_pixels=100 * 120 - 1)
    assert rejected.value.code == "image_too_large" and "120x100" in rejected.value.message
    assert prediction.decode_image(data, max_pixels=100 * 120).shape == (100, 120, 3)


def test_a_decompression_bomb_is_refused_before_its_pixels_are_decoded():
    with pytest.raises(ImageRejected) as rejected:
        prediction.decode_image(encoded(Image.fromarray(RGB)), max_pixels=1000)
    assert rejected.value.code == "image_too_large" and "40x30" in rejected.value.message


# ---- letterbox -----------------------------------------------------------------

@pytest.mark.parametrize("shape, size, resized, top, left", [
    ((1080, 810), (640, 640), (640, 480), 0, 80),   # bus.jpg: tall
    ((720, 1280), (640, 640), (360, 640), 140, 0),  # zidane.jpg: wide
    ((72, 96), (64, 64), (48, 64), 8, 0),
    ((23, 37), (64, 64), (40, 64), 12, 0),           # scaled up
    ((1, 3000), (64, 64), (1, 64), 31, 0),           # a thin image stays at least 1 pixel
    ((101, 100), (64, 64), (64, 63), 0, 0),          # odd padding: the extra pixel goes right/bottom
])
def test_the_letterbox_is_ultralytics(shape, size, resized, top, left):
    placement = prediction.letterbox_for(shape, size)
    assert (placement.resized, placement.top, placement.left) == (resized, top, left)


def test_the_letterboxed_canvas_holds_the_image_and_grey_padding():
    canvas, placement = prediction.letterbox(RGB, (64, 64))
    assert canvas.shape == (64, 64, 3) and placement.resized == (48, 64)
    assert (canvas[:placement.top] == 114).all() and (canvas[placement.top + 48:] == 114).all()
    batch = prediction.to_input([canvas])
    assert batch.shape == (1, 3, 64, 64) and batch.dtype == np.float32 and batch.max() <= 1.0


def test_resizing_keeps_a_flat_image_flat_and_matches_the_half_pixel_rule():
    flat = np.full((50, 70, 3), 77, dtype=np.uint8)
    canvas, placement = prediction.letterbox(flat, (29, 29))
    assert placement.resized == (21, 29) and (canvas[placement.top:placement.top + 21] == 77).all()
    ramp = np.repeat(np.arange(0, 256, 2, dtype=np.uint8)[None, :, None], 3, axis=2)  # 1 x 128
    halved, _ = prediction.letterbox(ramp, (1, 64))
    assert halved[0, :4, 0].tolist() == [1, 5, 9, 13]  # the mean of each pair (half-pixel centres)
    checker = np.repeat(np.tile(np.array([0, 240], dtype=np.uint8), 64)[None, :, None], 3, axis=2)  # 1 x 128
    shrunk, _ = prediction.letterbox(checker, (1, 48))
    # Two taps at (x + 0.5) * 8/3 - 0.5 with 11-bit weights, not an average over the footprint (INTER_AREA).
    assert shrunk[0, :4, 0].tolist() == [200, 120, 40, 200]  # INTER_AREA would give 90, 120, 150, 90


ULTRALYTICS_LETTERBOX = """
import sys, numpy as np
from ultralytics.data.augment import LetterBox
for path in sys.argv[1:]:
    case = np.load(path)
    stride = int(case["stride"])
    letterbox = LetterBox(tuple(int(side) for side in case["size"]), auto=stride > 0, stride=stride or 32)
    np.save(path + ".out.npy", letterbox(image=case["image"]))
"""


@pytest.mark.parametrize("shape, size, stride", [
    ((1080, 810), (640, 640), 32),   # bus.jpg's size into the trainer's dynamic graph: shrunk
    ((23, 37), (64, 64), 0),         # enlarged into a static graph (the numpy copy of cv2 was 1 off here)
    ((400, 90), (640, 640), 32),     # enlarged, tall
    ((1, 3000), (64, 64), 0),        # a thin line
])
def test_the_letterbox_gives_ultralytics_pixels(shape, size, stride, tmp_path):
    """Ultralytics' own LetterBox (in a process of its own: importing it registers Pillow plugins) on the same
    pixels gives the same canvas, byte for byte, shrinking or enlarging."""
    image = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    case = tmp_path / "case.npz"
    np.savez(case, image=image, size=np.array(size), stride=np.array(stride))
    done = subprocess.run([sys.executable, "-c", ULTRALYTICS_LETTERBOX, str(case)], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = np.load(f"{case}.out.npy")
    ours, _ = prediction.letterbox(image, size, stride or None)
    assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def test_letterboxing_a_photo_allocates_only_the_resized_image_and_the_canvas():
    """A numpy resize in fixed point made int32 copies: 12 bytes a pixel of the model input, several times."""
    photo = RNG.integers(0, 256, (1080, 810, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        canvas, placement = prediction.letterbox(photo, (640, 640), stride=32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert canvas.shape == (640, 480, 3) and placement.resized == (640, 480)
    assert canvas.nbytes <= peak < 2 * canvas.nbytes + 65536, peak


# ---- NMS and boxes -------------------------------------------------------------

def raw_output(boxes_xywh: list, scores: list[list[float]]) -> np.ndarray:
    """A (4 + classes, anchors) output as a detector's graph gives it."""
    return np.concatenate([np.array(boxes_xywh, dtype=np.float32).T, np.array(scores, dtype=np.float32).T])


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    output = raw_output([[50, 50, 20, 20], [51, 50, 20, 20], [51, 50, 20, 20], [10, 10, 4, 4]],
                        [[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.1, 0.0]])
    rows = prediction.non_max_suppression(output, Thresholds(conf=0.25, iou=0.7))
    assert rows[:, 5].tolist() == [0, 1] and rows[:, 4].tolist() == pytest.approx([0.9, 0.7])
    assert rows[0, :4].tolist() == [40, 40, 60, 60]
    assert len(prediction.non_max_suppression(output, Thresholds(conf=0.05, iou=0.7))) == 3
    assert prediction.non_max_suppression(output, Thresholds(conf=0.25, classes=frozenset({1})))[:, 5].tolist() == [1]
    assert len(prediction.non_max_suppression(output, Thresholds(conf=0.25, max_det=1))) == 1
    assert len(prediction.non_max_suppression(output, Thresholds(conf=0.95))) == 0


def test_nms_suppresses_only_above_the_iou_threshold():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float32)  # IoU 1/3
    assert prediction.greedy_nms(boxes, np.array([0.9, 0.8]), 0.34).tolist() == [0, 1]
    assert prediction.greedy_nms(boxes, np.array([0.9, 0.8]), 0.33).tolist() == [0]


def torchvision_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """torchvision.ops.nms written out plainly: the oracle greedy_nms must agree with."""
    def overlap(a, b):
        inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
    kept: list[int] = []
    for index in sorted(range(len(scores)), key=lambda i: -scores[i]):  # stable: ties in input order
        if all(overlap(boxes[index], boxes[other]) <= iou for other in kept):
            kept.append(index)
    return kept


@pytest.mark.parametrize("seed", range(5))
def test_nms_is_torchvision_greedy_rule_on_fractional_boxes_ties_and_classes(seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 60, (8, 2))[rng.integers(0, 8, 300)] + rng.normal(0, 1.5, (300, 2))
    sizes = rng.uniform(0.4, 9.0, (300, 2))  # under a pixel too: an integer rectangle would lose them
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    scores = rng.choice(np.linspace(0.3, 0.9, 12), 300).astype(np.float32)  # many equal scores
    classes = rng.integers(0, 3, 300).astype(np.float32)[:, None]
    offset = boxes + classes * prediction.MAX_WH
    for iou in (0.3, 0.5, 0.7):
        kept = prediction.greedy_nms(offset, scores, iou)
        assert kept.dtype == np.int64 and kept.tolist() == torchvision_nms(offset, scores, iou)
    assert prediction.greedy_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.7).tolist() == []


def test_a_graph_with_nms_inside_is_only_filtered():
    rows = np.array([[1, 2, 3, 4, 0.9, 1], [1, 2, 3, 4, 0.2, 0], [5, 5, 9, 9, 0.5, 0]], dtype=np.float32)
    placement = prediction.letterbox_for((64, 64), (64, 64))
    found = prediction.detections(rows, placement, Thresholds(conf=0.25), nms_in_graph=True)
    assert [(d.class_id, round(d.confidence, 2)) for d in found] == [(1, 0.9), (0, 0.5)]


def test_boxes_go_back_to_image_pixels_and_are_clipped():
    placement = prediction.letterbox_for((1080, 810), (640, 640))  # scaled by 0.5926, 80 px left padding
    back = prediction.scale_boxes(np.array([[80, 0, 560, 640], [0, 100, 700, 200]], dtype=np.float32), placement)
    assert back[0].tolist() == pytest.approx([0, 0, 810, 1080])
    assert back[1, 0] == 0 and back[1, 2] == 810


def test_a_box_is_shown_in_pixels_and_as_its_label_row():
    view = prediction.box_view(Detection(1, 0.87654321, 81.0, 108.0, 405.0, 540.0), (810, 1080), ["a", "b"])
    assert view == {"class_id": 1, "class_name": "b", "confidence": 0.87654, "x1": 81.0, "y1": 108.0,
                    "x2": 405.0, "y2": 540.0, "cx": 0.3, "cy": 0.3, "w": 0.4, "h": 0.4}


# ---- a dynamic graph: the minimum rectangle ------------------------------------

@pytest.mark.parametrize("shape, size, canvas, resized, top, left", [
    ((480, 640), (640, 640), (480, 640), (480, 640), 0, 0),   # a 4:3 photo: no padding at all
    ((1080, 810), (640, 640), (640, 480), (640, 480), 0, 0),  # bus.jpg
    ((720, 1280), (640, 640), (384, 640), (360, 640), 12, 0),  # zidane.jpg: 280 rows of padding become 24
    ((500, 700), (640, 640), (480, 640), (457, 640), 11, 0),  # odd padding: the extra row goes to the bottom
    ((72, 96), (64, 64), (64, 64), (48, 64), 8, 0),           # 16 rows of padding under a stride of 32 stay
])
def test_a_dynamic_graph_gets_ultralytics_minimum_rectangle(shape, size, canvas, resized, top, left):
    placement = prediction.letterbox_for(shape, size, stride=32)
    assert (placement.size, placement.resized, placement.top, placement.left) == (canvas, resized, top, left)
    pixels = np.zeros((*shape, 3), dtype=np.uint8)
    assert prediction.letterbox(pixels, size, stride=32)[0].shape == (*canvas, 3)


def test_boxes_on_a_rectangle_go_back_to_image_pixels():
    placement = prediction.letterbox_for((720, 1280), (640, 640), stride=32)  # scaled by 0.5, 12 rows on top
    back = prediction.scale_boxes(np.array([[0, 12, 640, 372], [100, 112, 200, 212]], dtype=np.float32), placement)
    assert back.ravel().tolist() == pytest.approx([0, 0, 1280, 720, 200, 200, 400, 400])


def test_the_input_tensor_is_the_canvas_divided_by_255_channel_first():
    canvas = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 14
    batch = prediction.to_input([canvas, canvas[::-1]])
    assert batch.shape == (2, 3, 2, 3) and batch.dtype == np.float32
    assert (batch[0] == canvas.transpose(2, 0, 1).astype(np.float32) / np.float32(255)).all()
    assert (batch[1, :, 0] == batch[0, :, 1]).all()


# ---- the model cache -----------------------------------------------------------

def cached(*sizes: int) -> cachetools.LRUCache:
    models = cachetools.LRUCache(maxsize=math.inf)
    for i, size in enumerate(sizes):
        models[(f"gs://b/m{i}.onnx", 1)] = model_cache.LoadedModel(
            key=(f"gs://b/m{i}.onnx", 1), session=None, input_name="images", input_size=(64, 64), stride=32,
            names=["a"], end_to_end=False, threads=1, load_seconds=0.0, size=size)
    return models


@pytest.mark.parametrize("sizes, count, budget, kept", [
    ((10, 10, 10), 4, 100, [0, 1, 2]),
    ((10, 10, 10), 2, 100, [1, 2]),         # the least recently used go first
    ((300, 300, 300), 4, 700, [1, 2]),      # no more bytes together than the budget
    ((10, 10, 900), 4, 700, [2]),           # the newest stays even alone over the budget
])
def test_the_model_cache_keeps_the_newest_within_its_count_and_bytes(sizes, count, budget, kept):
    models = cached(*sizes)
    model_cache.evict(models, count, budget)
    assert [int(uri[len("gs://b/m"):-len(".onnx")]) for uri, _ in models] == kept


def test_the_model_cache_pushes_out_the_least_recently_used_not_the_first_loaded():
    models = cached(10, 10, 10)
    models.get(("gs://b/m0.onnx", 1))  # a request used the first one again
    model_cache.evict(models, 2, 100)
    assert sorted(uri for uri, _ in models) == ["gs://b/m0.onnx", "gs://b/m2.onnx"]


def test_the_prediction_limits_are_the_operators_to_set(monkeypatch):
    from common.platform import config
    for name in ("PREDICT_RATE_LIMIT", "PREDICT_MAX_BYTES", "PREDICT_MAX_PIXELS"):
        monkeypatch.delenv(name, raising=False)
    assert (config.predict_rate_limit(), config.predict_max_bytes(), config.predict_max_pixels()) == \
        ((120, 60), 32 * 1024 ** 2, 50_000_000)
    monkeypatch.setenv("PREDICT_RATE_LIMIT", "10/3600")
    monkeypatch.setenv("PREDICT_MAX_PIXELS", "1000")
    assert config.predict_rate_limit() == (10, 3600) and config.predict_max_pixels() == 1000


def test_running_out_of_memory_while_decoding_is_not_called_corruption(monkeypatch):
    def exhausted(image):
        raise MemoryError()
    monkeypatch.setattr(prediction, "_upright_rgb", exhausted)
    with pytest.raises(ImageRejected) as rejected:
        prediction.decode_image(encoded(Image.fromarray(RGB)))
    assert rejected.value.code == "image_too_large" and "memory" in rejected.value.message
