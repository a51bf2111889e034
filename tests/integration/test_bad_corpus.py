"""Every kind of bad input the ingest names: each file gets its issue, with the
line for labels, and nothing else in the dataset is lost."""
import io
import struct
import uuid
import zlib
from pathlib import Path

from PIL import Image

from infra.local.sample import data_yaml, synthetic_image
from tests.integration.helpers import drop, issues_by_file, stats_when


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a size without the pixels: enough for Pillow's bomb check."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def encoded(size, fmt: str, **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "blue").save(buffer, fmt, **save)
    return buffer.getvalue()


def rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[274] = 6
    return encoded((64, 32), "JPEG", exif=exif)


GOOD, GOOD_LABEL = synthetic_image(1)
LABEL_CASES = {  # label file -> (content, expected issues)
    "columns": (b"0 0.5 0.5 0.2\n", [("label_columns", 1)]),
    "not_numeric": (b"0 0.5 abc 0.2 0.2\n", [("label_not_numeric", 1)]),
    "not_finite": (b"0 nan 0.5 0.2 0.2\n0 0.5 inf 0.2 0.2\n", [("label_not_finite", 1), ("label_not_finite", 2)]),
    "class_negative": (b"-1 0.5 0.5 0.2 0.2\n", [("label_class_negative", 1)]),
    "class_fraction": (b"1.5 0.5 0.5 0.2 0.2\n", [("label_class_not_integer", 1)]),
    "class_out_of_range": (b"0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n", [("label_class_out_of_range", 2)]),
    "out_of_range": (b"0 1.2 0.5 0.2 0.2\n0 0.5 0.5 0.2 -0.1\n",
                     [("label_out_of_range", 1), ("label_nonpositive_size", 2)]),
    "zero_size": (b"0 0.5 0.5 0 0.2\n", [("label_nonpositive_size", 1)]),
    "duplicate_rows": (b"0 0.5 0.5 0.2 0.2\n\n0 0.5 0.5 0.2 0.2\n", [("label_duplicate_row", 3)]),
    "not_utf8": (b"\xff\xfe\x00bad", [("label_not_utf8", None)]),
}
IMAGE_CASES = {  # image file -> (content, expected issue codes)
    "images/train/truncated.jpg": (GOOD[: len(GOOD) // 2], {"image_corrupt", "image_jpeg_no_end_marker"}),
    "images/train/no_end_marker.jpg": (GOOD[:-2], {"image_corrupt", "image_jpeg_no_end_marker"}),
    "images/train/tiny.jpg": (encoded((9, 40), "JPEG"), {"image_too_small"}),
    "images/train/png_named_jpg.jpg": (encoded((20, 20), "PNG"), {"image_format_mismatch"}),
    "images/train/text.png": (b"hello, not an image", {"image_unreadable"}),
    "images/train/empty.jpg": (b"", {"image_unreadable"}),
    "images/train/bomb.png": (png_header(15000, 12000), {"image_too_large"}),
    "images/train/huge_bomb.png": (png_header(30000, 30000), {"image_too_large"}),
}


def test_bad_corpus(bucket, api, dataset):
    files = {"data.yaml": data_yaml(["a", "b", "c"]).encode(),
             "images/train/good.jpg": GOOD, "labels/train/good.txt": GOOD_LABEL.encode(),
             "images/val/rotated.jpg": rotated_jpeg(), "labels/val/rotated.txt": b"",
             "images/train/unlabeled.jpg": synthetic_image(2)[0],
             "images/train/same_split_copy.jpg": synthetic_image(2)[0],
             "labels/test/orphan.txt": b"0 0.5 0.5 0.1 0.1\n", "notes/readme.txt": b"hi"}
    for seed, (name, (content, _)) in enumerate(LABEL_CASES.items(), start=10):  # 1 and 2 are taken above
        files[f"images/train/{name}.jpg"] = synthetic_image(seed)[0]
        files[f"labels/train/{name}.txt"] = content
    files.update({name: content for name, (content, _) in IMAGE_CASES.items()})
    drop(bucket, dataset, files)
    images = 4 + len(LABEL_CASES) + len(IMAGE_CASES)
    stats = stats_when(api, dataset, {"images": images, "background": 1, "labels_without_image": 1})

    issues = issues_by_file(api, dataset)
    for name, (_, expected) in LABEL_CASES.items():
        assert issues[f"labels/train/{name}.txt"] == expected, name
    for name, (_, expected) in IMAGE_CASES.items():
        assert {code for code, _ in issues[name]} == expected, name
    assert issues["labels/test/orphan.txt"] == [("label_without_image", None)]
    assert issues["notes/readme.txt"] == [("unrecognized_file", None)]
    assert issues["images/train/unlabeled.jpg"] == issues["images/train/same_split_copy.jpg"] == \
        [("duplicate_image", None)]  # same split: a duplicate, not leakage
    assert "images/train/good.jpg" not in issues
    # an image is labelled by its valid rows: the bad rows of these two are dropped, the good ones kept
    labeled = {image["path"].removeprefix(f"datasets/{dataset}/")
               for image in api.all_pages(f"/datasets/{dataset}/images", "images", status="labeled")}
    assert labeled == {"images/train/good.jpg", "images/train/class_out_of_range.jpg",
                       "images/train/duplicate_rows.jpg"} and stats["labeled"] == len(labeled)

    rotated = next(iter(api.all_pages(f"/datasets/{dataset}/images", "images", split="val")))
    assert (rotated["width"], rotated["height"], rotated["orientation"]) == (64, 32, 6)
    assert (rotated["oriented_width"], rotated["oriented_height"], rotated["status"]) == (32, 64, "background")
    unlabeled = api.get(f"/datasets/{dataset}/images/labels/train/unlabeled")
    assert unlabeled["status"] == "unlabeled" and unlabeled["labels"] == []


def test_unsafe_yaml_is_an_issue_and_never_runs(bucket, api, dataset):
    marker = Path(f"/tmp/yolodrop-pwned-{uuid.uuid4().hex}")
    drop(bucket, dataset, {"images/a.jpg": GOOD, "labels/a.txt": GOOD_LABEL.encode(),
                           "data.yaml": f"names: !!python/object/apply:os.system ['touch {marker}']\n".encode()})
    stats_when(api, dataset, {"images": 1, "issues": 1})
    assert issues_by_file(api, dataset) == {"data.yaml": [("yaml_unsafe_tag", 1)]}
    assert not marker.exists()
    view = api.get(f"/datasets/{dataset}")
    assert view["classes_known"] is False and view["stats"]["splits"] == {"train": 0, "val": 0, "test": 0, "none": 1}


def test_yaml_names_as_dict_and_nc_mismatch(bucket, api, dataset):
    drop(bucket, dataset, {"data.yaml": b"nc: 3\nnames:\n  0: cat\n  1: dog\n"})
    stats_when(api, dataset, {"issues": 1})
    assert issues_by_file(api, dataset) == {"data.yaml": [("yaml_nc_mismatch", None)]}
    assert api.get(f"/datasets/{dataset}")["classes"] == ["cat", "dog"]
