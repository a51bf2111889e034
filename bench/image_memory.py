"""Peak memory of identifying one big image: ingest's way now against the way before, in one run.

    python -m bench.image_memory [--megapixels 80] [--under 48]

Each case runs in a fresh process and reports how far its peak resident memory (ru_maxrss) rose above what it
held once Pillow and the module were imported. The baseline is the code before issue 21, kept here: decode at
full size under Pillow's own limit (89 MP), then turn upright (a copy), make RGB (another copy), then shrink.
The files are PNGs of zeros (RGBA: 4 bytes a pixel decoded), a few hundred kB on disk:

1. --megapixels (80): over MAX_IMAGE_PIXELS now, so refused before decoding; under Pillow's limit before;
2. --under (48): under MAX_IMAGE_PIXELS, decoded by both, with the thumbnail.
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

PNG_COLOR_TYPES = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4)}  # mode -> (PNG colour type, bytes a pixel)


def zero_png(width: int, height: int, mode: str = "RGBA") -> bytes:
    """A PNG of `width` x `height` zero pixels, written row by row (nothing of its decoded size is held):
    a few hundred kB for tens of megapixels."""
    color_type, per_pixel = PNG_COLOR_TYPES[mode]
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + width * per_pixel)  # filter byte 0, then the row's zero samples
    compressed = [compressor.compress(row) for _ in range(height)]
    compressed.append(compressor.flush())
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
            + _chunk(b"IDAT", b"".join(compressed)) + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def square_side(megapixels: float) -> int:
    return int(math.sqrt(megapixels * 1_000_000))


def _baseline(path: Path) -> dict:
    """The code before: decode at full size, transpose (a copy), RGB (a copy), shrink."""
    from PIL import Image, ImageOps
    with Image.open(path) as image:
        image.load()
        small = ImageOps.exif_transpose(image).convert("RGB")
        small.thumbnail((256, 256))
        return {"issues": [], "thumbnail": small.size}


def _now(path: Path) -> dict:
    from common.domain.imaging import identify_image
    with path.open("rb") as stream:
        facts = identify_image(stream, str(path), "png")
    return {"issues": [issue.code for issue in facts.issues], "thumbnail": facts.thumbnail is not None}


def _child(way: str, path: Path) -> None:
    from PIL import Image  # noqa: F401 - imported before the baseline is taken
    import common.domain.imaging  # noqa: F401
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = (_baseline if way == "before" else _now)(path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({**result, "rise_mb": round((peak - before) / 1024, 1)}))


def measure(way: str, path: Path) -> dict:
    answer = subprocess.run([sys.executable, "-m", "bench.image_memory", "--child", way, str(path)],
                            capture_output=True, text=True, check=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, default=80)
    parser.add_argument("--under", type=float, default=48)
    parser.add_argument("--child", nargs=2, metavar=("WAY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        for megapixels in (args.megapixels, args.under):
            side = square_side(megapixels)
            path = Path(folder) / f"zeros-{side}.png"
            path.write_bytes(zero_png(side, side))
            before, now = measure("before", path), measure("now", path)
            ratio = now["rise_mb"] / before["rise_mb"] if before["rise_mb"] else float("nan")
            print(f"{side}x{side} RGBA zeros ({side * side / 1e6:.1f} MP, {path.stat().st_size // 1024} kB): "
                  f"peak rise before {before['rise_mb']} MB {before['issues'] or 'indexed'}, "
                  f"now {now['rise_mb']} MB {now['issues'] or 'indexed'}; now/before {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
