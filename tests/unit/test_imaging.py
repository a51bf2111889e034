import hashlib
import io
import os
import threading

import pytest
from PIL import Image

from common.domain import imaging
from common.domain.imaging import MIN_SIDE, THUMBNAIL_SIDE, HashingReader, identify_image

FILE = "datasets/d/images/train/a.jpg"


def image_bytes(fmt: str, size=(64, 48), color=(200, 30, 30), **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt, **save_args)
    return buffer.getvalue()


def identify(data: bytes, extension: str = "jpg"):
    return identify_image(io.BytesIO(data), FILE, extension)


def codes(facts) -> list[str]:
    return [issue.code for issue in facts.issues]


class ChunkRecordingStream(io.RawIOBase):
    """A seekable stream that fails on an unbounded read() during the hashing pass."""

    def __init__(self, data: bytes):
        self._inner = io.BytesIO(data)
        self.hashing = True
        self.sizes: list[int] = []

    def readable(self):
        return True

    def seekable(self):
        return True

    def read(self, size=-1):
        if self.hashing:
            if size is None or size < 0:
                raise AssertionError("unbounded read() while hashing")
            self.sizes.append(size)
        return self._inner.read(size)

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset, whence=0):
        self.hashing = False  # identify_image rewinds once hashing is done
        return self._inner.seek(offset, whence)

    def tell(self):
        return self._inner.tell()


def test_valid_jpeg():
    data = image_bytes("JPEG")
    facts = identify(data)
    assert facts.issues == []
    assert (facts.format, facts.width, facts.height) == ("JPEG", 64, 48)
    assert (facts.orientation, facts.oriented_width, facts.oriented_height) == (1, 64, 48)
    assert facts.sha256 == hashlib.sha256(data).hexdigest() and facts.size == len(data)
    with Image.open(io.BytesIO(facts.thumbnail)) as thumbnail:
        assert thumbnail.format == "JPEG" and thumbnail.mode == "RGB" and thumbnail.size == (64, 48)


def test_valid_png_and_big_image_thumbnail_is_small():
    facts = identify(image_bytes("PNG", size=(1000, 600)), "png")
    assert facts.issues == [] and (facts.format, facts.width, facts.height) == ("PNG", 1000, 600)
    with Image.open(io.BytesIO(facts.thumbnail)) as thumbnail:
        assert max(thumbnail.size) == THUMBNAIL_SIDE


def test_large_jpeg_keeps_its_real_size_despite_draft():
    facts = identify(image_bytes("JPEG", size=(2000, 1500)))
    assert facts.issues == [] and (facts.width, facts.height) == (2000, 1500)
    with Image.open(io.BytesIO(facts.thumbnail)) as thumbnail:
        assert thumbnail.size == (256, 192)


def test_truncated_jpeg_is_corrupt():
    data = image_bytes("JPEG", size=(300, 300), color=(10, 200, 90), quality=95)
    data = data[: len(data) // 2]
    facts = identify(data)
    assert "image_corrupt" in codes(facts)
    assert "image_jpeg_no_end_marker" in codes(facts)
    assert facts.thumbnail is None
    assert (facts.width, facts.height) == (300, 300)


def test_jpeg_without_end_marker():
    data = image_bytes("JPEG")
    assert data[-2:] == b"\xff\xd9"
    facts = identify(data[:-2])
    assert "image_jpeg_no_end_marker" in codes(facts)
    issue = next(i for i in facts.issues if i.code == "image_jpeg_no_end_marker")
    assert "FF D9" in issue.message and issue.file == FILE


def test_png_named_jpg():
    facts = identify(image_bytes("PNG"), "jpg")
    assert codes(facts) == ["image_format_mismatch"]
    assert facts.issues[0].message == "the extension says jpg but the content is PNG"
    assert facts.thumbnail is not None


def test_jpeg_named_jpeg_and_tiff_named_tif_match():
    assert identify(image_bytes("JPEG"), "jpeg").issues == []
    assert identify(image_bytes("TIFF"), "tif").issues == []
    assert identify(image_bytes("BMP"), "bmp").issues == []
    assert identify(image_bytes("WEBP"), "webp").issues == []


def test_tiny_image():
    facts = identify(image_bytes("PNG", size=(5, 5)), "png")
    assert codes(facts) == ["image_too_small"]
    assert "5x5" in facts.issues[0].message and str(MIN_SIDE) in facts.issues[0].message


@pytest.mark.parametrize("data", [b"this is not an image\n", b""])
def test_unreadable(data):
    facts = identify(data)
    assert codes(facts) == ["image_unreadable"]
    assert facts.format is None and facts.width is None and facts.height is None
    assert facts.thumbnail is None and facts.orientation == 1
    assert "not in any image format" in facts.issues[0].message
    assert facts.sha256 == hashlib.sha256(data).hexdigest() and facts.size == len(data)


def test_exif_orientation_swaps_size_and_transposes_thumbnail():
    image = Image.new("RGB", (80, 40), (255, 0, 0))
    exif = Image.Exif()
    exif[274] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    facts = identify(buffer.getvalue())
    assert facts.issues == []
    assert (facts.width, facts.height) == (80, 40)
    assert (facts.orientation, facts.oriented_width, facts.oriented_height) == (6, 40, 80)
    with Image.open(io.BytesIO(facts.thumbnail)) as thumbnail:
        assert thumbnail.size == (40, 80)


def test_invalid_orientation_falls_back_to_1():
    exif = Image.Exif()
    exif[274] = 9
    buffer = io.BytesIO()
    Image.new("RGB", (80, 40)).save(buffer, "JPEG", exif=exif)
    facts = identify(buffer.getvalue())
    assert (facts.orientation, facts.oriented_width, facts.oriented_height) == (1, 80, 40)


def test_decompression_bomb_is_not_decoded(monkeypatch):
    monkeypatch.setattr(imaging, "MAX_IMAGE_PIXELS", 1000)
    facts = identify(image_bytes("PNG", size=(40, 30)), "png")  # 1200 pixels: over the limit, under twice it
    assert codes(facts) == ["image_too_large"]
    assert "1200" in facts.issues[0].message and "1000" in facts.issues[0].message
    assert (facts.width, facts.height) == (40, 30) and facts.thumbnail is None


def test_far_over_the_bomb_limit_is_an_issue_not_an_exception(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    facts = identify(image_bytes("PNG", size=(64, 48)), "png")
    assert codes(facts) == ["image_too_large"] and facts.thumbnail is None


def test_hashing_reader_hashes_a_stream_read_in_chunks():
    data = os.urandom(3 * 1024 * 1024 + 17)
    reader = HashingReader(io.BytesIO(data))
    while reader.read(1024 * 1024):
        pass
    assert (reader.sha256, reader.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_hashing_reader_passes_data_through():
    reader = HashingReader(io.BytesIO(b"hello world"))
    assert reader.read(5) + reader.read(100) == b"hello world"
    assert (reader.sha256, reader.size) == (hashlib.sha256(b"hello world").hexdigest(), 11)


def test_identify_image_hashes_in_bounded_chunks():
    data = image_bytes("JPEG", size=(64, 48)) + b""
    stream = ChunkRecordingStream(data)
    facts = identify_image(stream, FILE, "jpg")
    assert facts.issues == [] and facts.sha256 == hashlib.sha256(data).hexdigest()
    assert stream.sizes and max(stream.sizes) <= 4 * 1024 * 1024


def test_stream_errors_while_hashing_propagate():
    class Broken(io.BytesIO):
        def read(self, size=-1):
            raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        identify_image(Broken(b"x"), FILE, "jpg")


# ---- HEIC and EXIF facts ---------------------------------------------------------------------------------------

def heic_bytes(size=(64, 48), color=(30, 120, 200), exif: bytes | None = None) -> bytes:
    """A real HEIC, encoded by pillow-heif (x265); identification reads it with pi-heif's decoder."""
    import pillow_heif
    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", size, color)).save(buffer, quality=90, exif=exif)
    return buffer.getvalue()


def camera_exif(gps: bool = True) -> Image.Exif:
    exif = Image.Exif()
    exif[271], exif[272], exif[306] = "Apple\x00", "iPhone 15 Pro", "2026:01:02 03:04:05"
    exif.get_ifd(0x8769).update({36867: "2025:07:14 18:30:59", 36881: "+02:00"})
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0)})
    return exif


def test_a_heic_photo_is_read_measured_and_thumbnailed():
    data = heic_bytes()
    assert data[4:12] == b"ftypheic"
    facts = identify(data, "heic")
    assert facts.issues == [] and (facts.format, facts.width, facts.height) == ("HEIF", 64, 48)
    with Image.open(io.BytesIO(facts.thumbnail)) as thumbnail:
        assert thumbnail.format == "JPEG" and thumbnail.size == (64, 48)
        red, green, blue = thumbnail.getpixel((32, 24))
        assert blue > 150 and red < 80  # the photo's colour, not a placeholder


def test_a_heic_named_jpg_is_a_format_mismatch_not_unreadable():
    assert codes(identify(heic_bytes(), "jpg")) == ["image_format_mismatch"]


def test_exif_facts_capture_time_with_its_offset_camera_and_gps_present():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buffer, "JPEG", exif=camera_exif())
    assert identify(buffer.getvalue()).exif == {"taken_at": "2025-07-14T18:30:59+02:00", "camera_make": "Apple",
                                                "camera_model": "iPhone 15 Pro", "gps": True}


def test_exif_facts_fall_back_to_datetime_and_say_when_there_is_no_gps():
    exif = camera_exif(gps=False)
    del exif.get_ifd(0x8769)[36867]
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buffer, "JPEG", exif=exif)
    facts = identify(buffer.getvalue()).exif
    assert facts["taken_at"] == "2026-01-02T03:04:05" and facts["gps"] is False


def test_a_heic_keeps_its_exif_facts():
    assert identify(heic_bytes(exif=camera_exif().tobytes()), "heic").exif["camera_model"] == "iPhone 15 Pro"


def test_no_exif_and_a_meaningless_date_are_none():
    assert identify(image_bytes("PNG"), "png").exif is None
    exif = Image.Exif()
    exif[306] = "0000:00:00 00:00:00"
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buffer, "JPEG", exif=exif)
    assert identify(buffer.getvalue()).exif == {"taken_at": None, "camera_make": None, "camera_model": None,
                                                "gps": False}


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[274] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L", "P", "I;16", "1"])
def test_a_large_image_is_thumbnailed_in_strips_in_every_mode(mode):
    buffer = io.BytesIO()
    Image.new(mode, (3000, 1000), 1 if mode != "RGBA" else (200, 30, 30, 255)).save(buffer, "PNG")
    facts = identify(buffer.getvalue(), "png")
    assert codes(facts) == [] and facts.thumbnail is not None
    with Image.open(io.BytesIO(facts.thumbnail)) as thumbnail:
        assert thumbnail.size == (THUMBNAIL_SIDE, 85) and thumbnail.mode == "RGB"
        if mode == "RGBA":
            red, green, blue = thumbnail.getpixel((100, 40))
            assert abs(red - 200) < 8 and green < 40 and blue < 40


def test_a_large_turned_image_is_turned_after_shrinking():
    buffer = io.BytesIO()
    image = Image.new("RGB", (2000, 1000), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 1000, 1000))  # left half red
    image.save(buffer, "PNG", exif=exif_with_orientation(6))  # 6: turn 90 degrees clockwise to view
    facts = identify(buffer.getvalue(), "png")
    assert (facts.oriented_width, facts.oriented_height) == (1000, 2000)
    with Image.open(io.BytesIO(facts.thumbnail)) as thumbnail:
        assert thumbnail.size == (128, THUMBNAIL_SIDE)
        assert thumbnail.getpixel((64, 10))[0] > 200  # the red left half is on top once turned


def test_an_image_over_the_pixel_limit_is_never_decoded_even_for_its_exif(monkeypatch):
    monkeypatch.setattr(imaging, "MAX_IMAGE_PIXELS", 1000)
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buffer, "PNG", exif=exif_with_orientation(6))
    data = buffer.getvalue()
    truncated = data[:data.index(b"IDAT") + 10]  # decoding these pixels would add image_corrupt
    facts = identify(truncated, "png")
    assert codes(facts) == ["image_too_large"] and facts.thumbnail is None
    assert "downscale it" in facts.issues[0].message and f"{imaging.MAX_IMAGE_PIXELS}" in facts.issues[0].message


def test_the_default_pixel_limit_is_under_pillows_bomb_limit():
    assert imaging.MAX_IMAGE_PIXELS < Image.MAX_IMAGE_PIXELS
    assert imaging.MAX_IMAGE_PIXELS * 4 <= imaging.DECODE_BUDGET_BYTES  # one image at the limit fits the budget


def test_decode_budget_holds_decodes_past_it_until_others_end():
    budget = imaging.DecodeBudget(100)
    order: list[str] = []
    first_in, second_waiting = threading.Event(), threading.Event()

    def second():
        second_waiting.set()
        with budget.reserve(60):
            order.append("second in")

    with budget.reserve(60):
        first_in.set()
        thread = threading.Thread(target=second)
        thread.start()
        second_waiting.wait(5)
        thread.join(0.2)  # it cannot get in while the first holds 60 of 100
        assert thread.is_alive() and order == []
        order.append("first out")
    thread.join(5)
    assert order == ["first out", "second in"] and budget.held == 0


def test_an_image_larger_than_the_whole_budget_goes_alone():
    budget = imaging.DecodeBudget(100)
    with budget.reserve(500):
        assert budget.held == 500
    assert budget.held == 0
