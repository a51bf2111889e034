"""Photos as phones and people make them, through the stack: HEIC read and thumbnailed, EXIF facts in the image
view, thumbnails that go when the last image with their content goes, and two images of one name."""
from __future__ import annotations

import io

from PIL import Image

from common.domain.layout import thumbnail_path
from infra.local.client import wait_for
from infra.local.sample import data_yaml, synthetic_image
from tests.integration.helpers import DEADLINE, drop, handled_objects, stats_when

LABEL = b"0 0.5 0.5 0.2 0.2\n"


def heic_photo(size=(320, 240)) -> bytes:
    """A real HEIC with a phone's EXIF, encoded by pillow-heif."""
    import pillow_heif
    exif = Image.Exif()
    exif[271], exif[272] = "Apple", "iPhone 15 Pro"
    exif.get_ifd(0x8769)[36867] = "2025:07:14 18:30:59"
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0)})
    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", size, (30, 120, 200))).save(buffer, quality=80, exif=exif.tobytes())
    return buffer.getvalue()


def image_of(api, dataset: str, key: str) -> dict:
    return api.get(f"/datasets/{dataset}/images/{key}")


def test_a_heic_photo_is_indexed_with_its_exif_facts_and_a_thumbnail(bucket, api, dataset):
    drop(bucket, dataset, {"data.yaml": data_yaml(["x"]).encode(), "images/train/phone.heic": heic_photo(),
                           "labels/train/phone.txt": LABEL})
    stats_when(api, dataset, {"images": 1, "labeled": 1, "boxes": 1, "issues": 0})
    image = image_of(api, dataset, "labels/train/phone")
    assert (image["format"], image["width"], image["height"]) == ("HEIF", 320, 240)
    assert image["exif"] == {"taken_at": "2025-07-14T18:30:59", "camera_make": "Apple",
                             "camera_model": "iPhone 15 Pro", "gps": True}
    thumbnail = api.session.get(f"{api.url}/datasets/{dataset}/thumbnails/{image['sha256']}", timeout=30)
    assert thumbnail.status_code == 200 and Image.open(io.BytesIO(thumbnail.content)).size == (256, 192)


def thumbnail_exists(bucket, dataset: str, sha256: str) -> bool:
    return bucket.blob(thumbnail_path(dataset, sha256)).exists()


def test_a_thumbnail_goes_with_the_last_image_of_its_content(stack, bucket, api, dataset):
    shared, replaced = synthetic_image(11)[0], synthetic_image(12)[0]
    drop(bucket, dataset, {"images/train/a.jpg": shared, "images/val/b.jpg": shared,
                           "images/train/c.jpg": replaced})
    stats_when(api, dataset, {"images": 3, "duplicates": 2})
    shared_sha = image_of(api, dataset, "labels/train/a")["sha256"]
    replaced_sha = image_of(api, dataset, "labels/train/c")["sha256"]
    assert thumbnail_exists(bucket, dataset, shared_sha) and thumbnail_exists(bucket, dataset, replaced_sha)

    handled = len(handled_objects(stack, dataset))
    bucket.blob(f"datasets/{dataset}/images/train/a.jpg").delete()  # b.jpg still shows that content
    stats_when(api, dataset, {"images": 2, "duplicates": 0})
    wait_for(lambda: len(handled_objects(stack, dataset)), lambda n: n > handled, DEADLINE, "the delete handled")
    assert thumbnail_exists(bucket, dataset, shared_sha)

    drop(bucket, dataset, {"images/train/c.jpg": shared})  # c.jpg overwritten: its old content has no image left
    wait_for(lambda: thumbnail_exists(bucket, dataset, replaced_sha), lambda exists: not exists, DEADLINE,
             "the overwritten content's thumbnail to go")
    bucket.blob(f"datasets/{dataset}/images/val/b.jpg").delete()
    bucket.blob(f"datasets/{dataset}/images/train/c.jpg").delete()
    stats_when(api, dataset, {"images": 0})
    wait_for(lambda: thumbnail_exists(bucket, dataset, shared_sha), lambda exists: not exists, DEADLINE,
             "the last thumbnail to go with its last image")


def test_two_images_of_one_name_are_both_named_and_the_other_shows_when_the_newest_goes(stack, bucket, api, dataset):
    jpg, png = synthetic_image(21)[0], synthetic_image(22, fmt="PNG")[0]
    drop(bucket, dataset, {"data.yaml": data_yaml(["x"]).encode(), "labels/train/a.txt": LABEL,
                           "images/train/a.jpg": jpg})
    stats_when(api, dataset, {"images": 1, "labeled": 1})
    drop(bucket, dataset, {"images/train/a.png": png})
    stats_when(api, dataset, {"images": 1, "issues": 2})
    image = image_of(api, dataset, "labels/train/a")
    assert image["path"].endswith("a.png") and image["format"] == "PNG"
    named = {issue["file"].rsplit("/", 1)[-1]: issue["message"] for issue in image["issues"]
             if issue["code"] == "image_name_collision"}
    assert set(named) == {"a.jpg", "a.png"} and "a.png" in named["a.jpg"] and "rename" in named["a.png"]

    bucket.blob(f"datasets/{dataset}/images/train/a.png").delete()
    stats_when(api, dataset, {"images": 1, "labeled": 1, "issues": 0})
    shown = image_of(api, dataset, "labels/train/a")
    assert shown["path"].endswith("a.jpg") and shown["format"] == "JPEG" and shown["labels"]
    thumbnail = api.session.get(f"{api.url}/datasets/{dataset}/thumbnails/{shown['sha256']}", timeout=30)
    assert thumbnail.status_code == 200
