"""Identify one image: hash, format, size, EXIF orientation, integrity and a small thumbnail.

Works on a seekable binary stream in bounded memory: the hash is computed in chunks, then the
stream is rewound and handed to Pillow. Every problem with the image is an Issue, never an exception.

Memory: an image over MAX_IMAGE_PIXELS is never decoded (image_too_large). Below it, the pixels are decoded once
(JPEG at reduced scale) and the thumbnail is shrunk from them in place before it is turned upright and made RGB,
so no second full-size copy is made; and the decodes of a process share a budget (DecodeBudget): a thread whose
image would take the process past it waits for others to finish, however many read at once.
"""
from __future__ import annotations

import hashlib
import io
import re
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO
from collections.abc import Iterator

from PIL import Image, UnidentifiedImageError

from common.domain.issues import Issue

# The pixel count is checked here against MAX_IMAGE_PIXELS and reported as an
# issue; Pillow's warning adds nothing. Set once, process-wide: catch_warnings()
# is not thread-safe and ingest runs many events in threads.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

# The most pixels an image may have to be decoded: 50 megapixels, more than any common camera's full resolution
# (the 108/200 MP modes of some phones aside) and well under Pillow's 89 MP default. Decoded, it takes up to 200 MB
# (Pillow keeps RGB in 4 bytes a pixel), which the ingest function's 1 GiB holds beside its other reads.
MAX_IMAGE_PIXELS = 50_000_000
# What the decodes of one process may hold at once, by default: two images at the pixel limit. An ingest instance
# reads eight files at a time in 1 GiB; its process at rest and its in-flight downloads take about 250 MB.
DECODE_BUDGET_BYTES = 400 * 1024 * 1024

MIN_SIDE = 10
THUMBNAIL_SIDE = 256
THUMBNAIL_QUALITY = 85
HASH_CHUNK_SIZE = 4 * 1024 * 1024
JPEG_END_MARKER = b"\xff\xd9"
ORIENTATION_TAG = 274
MAKE_TAG, MODEL_TAG, DATETIME_TAG = 271, 272, 306
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATETIME_ORIGINAL_TAG, OFFSET_TIME_ORIGINAL_TAG = 36867, 36881
MAX_EXIF_TEXT = 100
TRANSPOSED_ORIENTATIONS = frozenset({5, 6, 7, 8})
JPEG_FORMATS = frozenset({"JPEG", "MPO"})
REDUCING_GAP = 2  # a thumbnail is reduced by a whole factor down to at least twice its size, then resampled
STRIP_PIXELS = 2_000_000  # pixels of the strips a thumbnail is reduced from: 8 MB in RGB
# The transposition that turns an image upright per its EXIF orientation (as ImageOps.exif_transpose does).
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}

# Pillow format names that each extension may legitimately hold.
FORMATS_FOR_EXTENSION = {
    "jpg": JPEG_FORMATS, "jpeg": JPEG_FORMATS, "mpo": JPEG_FORMATS,
    "png": frozenset({"PNG"}),
    "tif": frozenset({"TIFF"}), "tiff": frozenset({"TIFF"}), "dng": frozenset({"TIFF"}),
    "webp": frozenset({"WEBP"}),
    "bmp": frozenset({"BMP"}),
    "pfm": frozenset({"PPM"}),  # Pillow reads PFM with its PPM plugin
    "heic": frozenset({"HEIF"}), "heif": frozenset({"HEIF"}),  # read by pi-heif's plugin (see open_image)
}


@dataclass
class ImageFacts:
    sha256: str
    size: int
    format: str | None  # Pillow format name, e.g. "JPEG", "PNG"
    width: int | None
    height: int | None
    orientation: int  # EXIF orientation tag 274, 1 when absent/invalid
    oriented_width: int | None
    oriented_height: int | None  # swapped for orientations 5..8
    thumbnail: bytes | None  # JPEG bytes, longest side <= THUMBNAIL_SIDE, EXIF-transposed, RGB
    issues: list[Issue]
    exif: dict[str, Any] | None = None  # exif_facts(): capture time, camera, whether GPS is present; None without EXIF


class HashingReader:
    """Wraps a binary file-like; hashes (sha256) and counts everything read through read()."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._digest = hashlib.sha256()
        self.size = 0
        self.tail = b""  # the last two bytes read so far

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._digest.update(data)
        self.size += len(data)
        self.tail = (self.tail + data[-2:])[-2:]
        return data

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def keep_freed_image_memory(blocks: int) -> None:
    """Let Pillow keep up to `blocks` freed image memory blocks (each at most its block size, 16 MiB) for the
    next decode instead of returning them to the system. Otherwise every decode maps fresh pages and every
    release unmaps them: page faults, zeroing and, with several threads, TLB shootdowns, about an eighth of
    ingest's CPU (bench/ingest.py)."""
    Image.core.set_blocks_max(blocks)


class DecodeBudget:
    """Bytes of decoded pixels a process may hold at once, shared by its threads: reserve() waits until the
    image fits beside the others. One image larger than the whole budget waits for all others, then goes alone
    (MAX_IMAGE_PIXELS keeps that within the function's memory)."""

    def __init__(self, limit: int):
        self.limit, self.held = limit, 0
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self.held == 0 or self.held + size <= self.limit)
            self.held += size
        try:
            yield
        finally:
            with self._changed:
                self.held -= size
                self._changed.notify_all()


_budget = DecodeBudget(DECODE_BUDGET_BYTES)


def set_decode_budget(limit: int) -> None:
    """The bytes of decoded pixels this process's threads may hold at once (DECODE_BUDGET_BYTES by default)."""
    global _budget
    _budget = DecodeBudget(limit)


def decoded_bytes(image: Image.Image) -> int:
    """What decoding `image` at its (drafted) size takes: Pillow keeps 1, 2 or 4 bytes a pixel (the thumbnail
    is made from strips: STRIP_PIXELS more at most)."""
    width, height = image.size
    mode = image.mode
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return width * height * per_pixel


def _read_through(stream: BinaryIO, chunk_size: int) -> HashingReader:
    reader = HashingReader(stream)
    while reader.read(chunk_size):
        pass
    return reader


def identify_image(stream: BinaryIO, file: str, extension: str) -> ImageFacts:
    reader = _read_through(stream, HASH_CHUNK_SIZE)  # OSError from the stream itself propagates
    facts = ImageFacts(reader.sha256, reader.size, None, None, None, 1, None, None, None, [])
    stream.seek(0)
    image = _open(stream, facts, file)
    if image is None:
        return facts
    try:
        _inspect(image, facts, file, extension, reader.tail)
    finally:
        image.close()
    return facts


def _open(stream: BinaryIO, facts: ImageFacts, file: str) -> Image.Image | None:
    try:
        return open_image(stream)
    except Image.DecompressionBombError as error:
        facts.issues.append(Issue("image_too_large", f"the image is too large to decode safely: {error}", file))
    except UnidentifiedImageError:
        facts.issues.append(Issue("image_unreadable", "the content is not in any image format Pillow "
                                  f"reads ({facts.size} bytes); the extension promised an image", file))
    except Exception as error:  # Pillow raises many types for data it cannot parse
        facts.issues.append(Issue("image_unreadable", f"the file is not a readable image: {_reason(error)}", file))
    return None


_heif_lock = threading.Lock()
_heif_registered = False


def open_image(stream: BinaryIO) -> Image.Image:
    """Image.open, and once a stream is no format Pillow knows, again with the HEIF/HEIC plugin (pi-heif, the
    decoder Ultralytics uses too): phones save HEIC, and only those files pay its import (about 40 ms, once)."""
    global _heif_registered
    try:
        return Image.open(stream)
    except UnidentifiedImageError:
        if _heif_registered:
            raise
    with _heif_lock:
        if not _heif_registered:
            from pi_heif import register_heif_opener
            register_heif_opener()
            _heif_registered = True
    stream.seek(0)
    return Image.open(stream)


def _inspect(image: Image.Image, facts: ImageFacts, file: str, extension: str, tail: bytes) -> None:
    facts.format = image.format
    facts.width, facts.height = image.size  # before draft(), which shrinks image.size
    facts.oriented_width, facts.oriented_height = facts.width, facts.height
    _check_format(facts.format, extension, facts.issues, file)
    # Before any EXIF is read: a PNG's EXIF may follow its pixels, so Pillow decodes them all to find it.
    if _check_too_large(facts.width, facts.height, facts.issues, file):
        return  # never decode the pixels of a decompression bomb
    _check_too_small(facts.width, facts.height, facts.issues, file)
    if facts.format == "JPEG" and tail != JPEG_END_MARKER:
        facts.issues.append(Issue("image_jpeg_no_end_marker", f"corrupt JPEG: the file does not end with the "
                                  f"end-of-image marker FF D9 (last bytes: {tail.hex(' ').upper() or 'none'})", file))
    if image.format in JPEG_FORMATS:
        image.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))  # decode at reduced scale
    with _budget.reserve(decoded_bytes(image)):
        facts.orientation = _orientation(image)
        facts.exif = exif_facts(image)
        facts.oriented_width, facts.oriented_height = _oriented_size(facts.width, facts.height, facts.orientation)
        if _decodes(image, facts.issues, file):
            facts.thumbnail = _thumbnail(image, facts.orientation)


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ORIENTATION_TAG)
    except Exception:  # a broken EXIF block only loses the orientation
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def exif_facts(image: Image.Image) -> dict[str, Any] | None:
    """What a photo's EXIF says beyond orientation, from the same parse: when it was taken (DateTimeOriginal,
    else DateTime, as ISO 8601 with its offset when recorded), the camera's make and model, and whether GPS
    data is present (never the coordinates). None when the image has no EXIF."""
    try:
        exif = image.getexif()
        if not exif:
            return None
        details = exif.get_ifd(EXIF_IFD)
        taken = _exif_time(details.get(DATETIME_ORIGINAL_TAG), details.get(OFFSET_TIME_ORIGINAL_TAG)) \
            or _exif_time(exif.get(DATETIME_TAG), None)
        return {"taken_at": taken, "camera_make": _exif_text(exif.get(MAKE_TAG)),
                "camera_model": _exif_text(exif.get(MODEL_TAG)), "gps": bool(exif.get_ifd(GPS_IFD))}
    except Exception:  # a broken EXIF block loses these facts, never the image
        return None


def _exif_text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = value.replace("\x00", "").strip()[:MAX_EXIF_TEXT] if isinstance(value, str) else ""
    return text or None


def _exif_time(value: object, offset: object) -> str | None:
    """EXIF's "YYYY:MM:DD HH:MM:SS" as "YYYY-MM-DDTHH:MM:SS" (plus "+HH:MM" when an offset is recorded)."""
    text = _exif_text(value) or ""
    match = _EXIF_TIME.fullmatch(text)
    if not match or match["date"].startswith("0000"):
        return None
    stamp = f"{match['date'].replace(':', '-')}T{match['time']}"
    zone = _exif_text(offset) or ""
    return stamp + zone if _EXIF_OFFSET.fullmatch(zone) else stamp


_EXIF_TIME = re.compile(r"(?P<date>[0-9]{4}:[0-9]{2}:[0-9]{2})[ T](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})")
_EXIF_OFFSET = re.compile(r"[+-][0-9]{2}:[0-9]{2}")


def _oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in TRANSPOSED_ORIENTATIONS else (width, height)


def _check_format(image_format: str | None, extension: str, issues: list[Issue], file: str) -> None:
    expected = FORMATS_FOR_EXTENSION.get(extension)
    if expected is not None and image_format not in expected:
        issues.append(Issue("image_format_mismatch",
                            f"the extension says {extension} but the content is {image_format}", file))


def _check_too_large(width: int, height: int, issues: list[Issue], file: str) -> bool:
    pixels = width * height
    if pixels <= MAX_IMAGE_PIXELS:
        return False
    issues.append(Issue("image_too_large", f"{width}x{height} is {pixels} pixels, over the limit of "
                        f"{MAX_IMAGE_PIXELS} pixels an image may have; the pixels were not decoded: "
                        "downscale it (or split it into tiles) and upload it again", file))
    return True


def _check_too_small(width: int, height: int, issues: list[Issue], file: str) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        issues.append(Issue("image_too_small", f"{width}x{height} is too small: "
                            f"both sides must be at least {MIN_SIDE} pixels", file))


def _decodes(image: Image.Image, issues: list[Issue], file: str) -> bool:
    try:
        image.load()
    except Exception as error:  # truncated or broken data; Pillow raises OSError, SyntaxError, ValueError...
        issues.append(Issue("image_corrupt", f"the image data is corrupt or truncated: {_reason(error)}", file))
        return False
    return True


def _thumbnail(image: Image.Image, orientation: int) -> bytes | None:
    """A small RGB JPEG, upright per EXIF; None for pixel modes that have no RGB rendering."""
    try:
        small = _shrunk_rgb(image)
        if orientation in UPRIGHT:
            small = small.transpose(UPRIGHT[orientation])  # after shrinking: the box is square either way up
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    except Exception:  # the image itself decoded fine; a missing thumbnail is not a dataset problem
        return None
    return buffer.getvalue()


def _shrunk_rgb(image: Image.Image) -> Image.Image:
    """The image in RGB, its longest side at most THUMBNAIL_SIDE, made without a full-size copy: strips of rows
    are made RGB and reduced by a whole factor one at a time (as Image.thumbnail's reducing_gap=2 does at once,
    after copying an RGBA image whole to premultiply it), then the small result is resized."""
    width, height = image.size
    factor = max(1, max(width, height) // (THUMBNAIL_SIDE * REDUCING_GAP))
    if factor == 1:
        small = image.convert("RGB")
    else:
        rows = factor * max(1, STRIP_PIXELS // (width * factor))
        small = Image.new("RGB", (-(-width // factor), -(-height // factor)))
        for top in range(0, height, rows):
            strip = image.crop((0, top, width, min(top + rows, height))).convert("RGB")
            small.paste(strip.reduce(factor), (0, top // factor))
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return small
