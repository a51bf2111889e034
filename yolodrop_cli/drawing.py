"""`yolodrop predict --save`: the image as a person sees it (EXIF orientation
applied, as the boxes' pixels are), with its boxes drawn and named."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

COLOURS = ("#ff3838", "#ff9d97", "#ff701f", "#ffb21d", "#cfd231", "#48f90a", "#92cc17", "#3ddb86", "#1a9334",
           "#00d4bb", "#2c99a8", "#00c2ff", "#344593", "#6473ff", "#0018ec", "#8438ff", "#520085", "#cb38ff")


def save_with_boxes(source: Path, prediction: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    draw = ImageDraw.Draw(image)
    for box in prediction.get("boxes") or []:
        colour = COLOURS[box["class_id"] % len(COLOURS)]
        draw.rectangle((box["x1"], box["y1"], box["x2"], box["y2"]), outline=colour, width=2)
        draw.text((box["x1"] + 2, box["y1"] + 1), f"{box['class_name']} {box['confidence']:.2f}", fill=colour)
    target = folder / (source.stem + ".jpg")
    image.save(target, quality=90)
    return target
