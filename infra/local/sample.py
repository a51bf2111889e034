"""Sample datasets: the real photos that ship inside the Ultralytics package,
labelled here by hand, generated images with known boxes, and deliberately bad files.

The Ultralytics wheel is fetched once with `pip download --no-deps` (about
1.4 MB): the photos are read from it without installing Ultralytics and torch.
"""
from __future__ import annotations

import io
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from common.domain.labels import write_label

REPO = Path(__file__).resolve().parents[2]
WHEEL_DIR = REPO / ".local" / "wheels"
ULTRALYTICS_VERSION = "8.4.190"
CLASSES = ["person", "bus", "tie"]

# Boxes drawn by hand on the photos, as pixel corners (x1, y1, x2, y2).
BUS_BOXES = [(1, (17, 230, 802, 770)), (0, (48, 398, 245, 905)), (0, (221, 405, 345, 857)),
             (0, (669, 392, 809, 877)), (0, (0, 550, 63, 873))]
ZIDANE_BOXES = [(0, (123, 197, 712, 717)), (0, (746, 40, 1142, 712)), (2, (437, 437, 524, 717)),
                (2, (1008, 252, 1036, 340))]


def ultralytics_photo(name: str) -> bytes:
    """bus.jpg or zidane.jpg, read from the Ultralytics wheel."""
    wheel = _ultralytics_wheel()
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(f"ultralytics/assets/{name}")


def _ultralytics_wheel() -> Path:
    wheels = sorted(WHEEL_DIR.glob(f"ultralytics-{ULTRALYTICS_VERSION}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        f"ultralytics=={ULTRALYTICS_VERSION}", "-d", str(WHEEL_DIR)], check=True)
        wheels = sorted(WHEEL_DIR.glob(f"ultralytics-{ULTRALYTICS_VERSION}-*.whl"))
    return wheels[0]


def yolo_rows(boxes, width: int, height: int) -> str:
    """Pixel corner boxes as YOLO label text (class cx cy w h, normalized)."""
    return write_label((class_id, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width,
                        (y2 - y1) / height) for class_id, (x1, y1, x2, y2) in boxes).decode()


def synthetic_image(seed: int, size=(640, 480), n_boxes: int = 2, fmt: str = "JPEG") -> tuple[bytes, str]:
    """An image of coloured rectangles and the YOLO label of those rectangles."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    boxes = []
    for _ in range(n_boxes):
        w, h = rng.randrange(width // 8, width // 3), rng.randrange(height // 8, height // 3)
        x1, y1 = rng.randrange(0, width - w), rng.randrange(0, height - h)
        draw.rectangle((x1, y1, x1 + w, y1 + h), fill=tuple(rng.randrange(256) for _ in range(3)))
        boxes.append((rng.randrange(len(CLASSES)), (x1, y1, x1 + w, y1 + h)))
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=85)
    return buffer.getvalue(), yolo_rows(boxes, width, height)


def data_yaml(classes=CLASSES) -> str:
    return "names:\n" + "".join(f"  {i}: {name}\n" for i, name in enumerate(classes)) + f"nc: {len(classes)}\n"


def generated_dataset(n_train: int, n_val: int, size=(128, 96), seed: int = 0) -> dict[str, bytes]:
    """Dataset-relative files of a generated, all-valid dataset (n_val 0: no val split)."""
    files = {"data.yaml": data_yaml().encode()}
    for i in range(n_train + n_val):
        split = "train" if i < n_train else "val"
        image, label = synthetic_image(seed * 1_000_003 + i, size=size)
        folder = f"/{split}" if n_val else ""
        files[f"images{folder}/g{i:05d}.jpg"] = image
        files[f"labels{folder}/g{i:05d}.txt"] = label.encode()
    return files


@dataclass
class Sample:
    """Files to drop (dataset-relative path -> bytes) and the index they must give."""
    files: dict[str, bytes] = field(default_factory=dict)
    expected: dict = field(default_factory=dict)
    expected_issue_codes: set[str] = field(default_factory=set)


def sample_dataset() -> Sample:
    """The demo dataset: the two photos, generated images, a background image and bad files."""
    s = Sample()
    bus, zidane = ultralytics_photo("bus.jpg"), ultralytics_photo("zidane.jpg")
    s.files["data.yaml"] = data_yaml().encode()
    s.files["images/train/bus.jpg"] = bus
    s.files["labels/train/bus.txt"] = yolo_rows(BUS_BOXES, 810, 1080).encode()
    s.files["images/val/zidane.jpg"] = zidane
    s.files["labels/val/zidane.txt"] = yolo_rows(ZIDANE_BOXES, 1280, 720).encode()
    for i in range(8):
        split = "train" if i < 6 else "val"
        image, label = synthetic_image(i)
        s.files[f"images/{split}/shapes_{i}.jpg"] = image
        s.files[f"labels/{split}/shapes_{i}.txt"] = label.encode()
    s.files["images/train/empty_road.jpg"] = synthetic_image(100, n_boxes=0)[0]
    s.files["labels/train/empty_road.txt"] = b""
    _add_bad_files(s, bus)
    # bus + zidane + 8 shapes + bus_copy + messy are labelled; truncated, notes and tiny are not.
    s.expected = {"images": 16, "labeled": 12, "background": 1, "unlabeled": 3,
                  "boxes": len(BUS_BOXES) + len(ZIDANE_BOXES) + 8 * 2 + 1 + 1, "duplicates": 2,
                  "splits": {"train": 12, "val": 4, "test": 0}}
    return s


def _add_bad_files(s: Sample, bus: bytes) -> None:
    s.files["images/val/bus_copy.jpg"] = bus                        # duplicate of train/bus.jpg: leakage
    s.files["labels/val/bus_copy.txt"] = yolo_rows(BUS_BOXES[:1], 810, 1080).encode()
    s.files["images/train/truncated.jpg"] = synthetic_image(200)[0][:5000]
    s.files["images/train/notes_as_image.jpg"] = b"these are my notes, not a picture\n"
    tiny = io.BytesIO()
    Image.new("RGB", (6, 6), "red").save(tiny, "PNG")
    s.files["images/train/tiny.png"] = tiny.getvalue()
    s.files["images/train/messy.jpg"] = synthetic_image(300, n_boxes=0)[0]
    s.files["labels/train/messy.txt"] = (b"0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n7 0.5 0.5 0.1 0.1\n"
                                         b"1 1.4 0.5 0.1 0.1\n0 0.5 0.5 0.2 0.2\n")
    s.files["labels/train/ghost.txt"] = b"0 0.5 0.5 0.1 0.1\n"       # no image
    s.files["README.md"] = b"# my dataset\n"
    s.expected_issue_codes |= {"duplicate_image", "split_leakage", "image_corrupt", "image_unreadable",
                               "image_too_small", "label_columns", "label_class_out_of_range",
                               "label_out_of_range", "label_duplicate_row", "label_without_image",
                               "unrecognized_file"}


# ---- the demo's learnable data --------------------------------------------------------------
# Coloured squares on grey, the class being the colour: a task yolov8n learns from scratch in
# under a minute on a CPU (30 epochs at 160 px), so the demo's model really detects.
SQUARE_COLOURS = {0: (220, 40, 40), 1: (40, 190, 60), 2: (40, 80, 230)}  # person red, bus green, tie blue


def squares_image(seed: int, size: int = 160) -> tuple[bytes, str]:
    """A grey image with 1-3 non-overlapping coloured squares and its YOLO label (class = colour)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    boxes: list[tuple[int, tuple[int, int, int, int]]] = []
    for _ in range(rng.randint(1, 3)):
        side = rng.randrange(size // 6, size // 3)
        corner = _free_corner(rng, size, side, [box for _, box in boxes])
        if corner is None:
            continue
        class_id = rng.randrange(len(SQUARE_COLOURS))
        box = (*corner, corner[0] + side, corner[1] + side)
        draw.rectangle(box, fill=SQUARE_COLOURS[class_id])
        boxes.append((class_id, box))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), yolo_rows([(c, (x1, y1, x2 + 1, y2 + 1)) for c, (x1, y1, x2, y2) in boxes], size, size)


def _free_corner(rng: random.Random, size: int, side: int, taken: list) -> tuple[int, int] | None:
    for _ in range(20):
        x, y = rng.randrange(0, size - side), rng.randrange(0, size - side)
        if all(x + side < x1 or x > x2 or y + side < y1 or y > y2 for x1, y1, x2, y2 in taken):
            return x, y
    return None


UNLABELED_SEED = 10_000


def drawn_label(name: str) -> str | None:
    """What the demo drew in its unlabeled image `new_squares_<i>` (the label it does not ship)."""
    stem = name.rsplit("/", 1)[-1]
    return squares_image(UNLABELED_SEED + int(stem[12:]))[1] if stem.startswith("new_squares_") else None


def demo_dataset(labelled: int = 64, unlabeled: int = 6) -> Sample:
    """The sample dataset plus `labelled` squares images (one in eight in val) for the model to learn
    from and `unlabeled` more, without labels, for it to auto-label."""
    s = sample_dataset()
    boxes, val = 0, 0
    for i in range(labelled):
        split = "val" if i % 8 == 0 else "train"
        image, label = squares_image(i)
        s.files[f"images/{split}/squares_{i:02d}.jpg"] = image
        s.files[f"labels/{split}/squares_{i:02d}.txt"] = label.encode()
        boxes, val = boxes + label.count("\n"), val + (split == "val")
    for i in range(unlabeled):
        s.files[f"images/train/new_squares_{i}.jpg"] = squares_image(UNLABELED_SEED + i)[0]
    e, splits = s.expected, s.expected["splits"]
    s.expected = {**e, "images": e["images"] + labelled + unlabeled, "labeled": e["labeled"] + labelled,
                  "unlabeled": e["unlabeled"] + unlabeled, "boxes": e["boxes"] + boxes,
                  "splits": {**splits, "train": splits["train"] + labelled - val + unlabeled,
                             "val": splits["val"] + val}}
    return s
