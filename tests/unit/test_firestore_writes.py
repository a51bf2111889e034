"""db.put encodes plain documents itself: the Write must be the one the client's
set() builds, byte for byte, and anything else must go through the client."""
import datetime

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import write as write_types

from common.cloud import db
from common.domain import entries
from common.domain.issues import Issue

PATH = "projects/p/databases/(default)/documents/datasets/d/images/labels%2Ftrain%2Fa"


def client_write(data: dict) -> bytes:
    [write] = _helpers.pbs_for_set_no_merge(PATH, data)
    return write_types.Write.pb(write).SerializeToString(deterministic=True)


def entry() -> dict:
    entry = entries.new_entry("labels/train/a", "train")
    image = {"path": "images/train/a.jpg", "generation": 2 ** 62, "sha256": "ab" * 32, "size": 1234, "format": "JPEG",
             "width": 640, "height": 480, "orientation": 1, "oriented_width": 640, "oriented_height": 480,
             "thumbnail": None, "exif": {"taken_at": "2025-07-14T18:30:59", "camera_make": "Apple", "gps": True}}
    entries.set_part(entry, "image", {**image, "path": "images/train/a.png", "generation": 5}, [])  # a namesake, hidden
    entries.set_part(entry, "image", image, [])
    entries.set_part(entry, "label", {"path": "labels/train/a.txt", "generation": 7,
                                      "boxes": [{"line": 1, "class_id": 3, "cx": 0.5, "cy": 0.25, "w": 0.1, "h": 1.0}]},
                     [Issue("label_duplicate_row", "the same row twice", "labels/train/a.txt", 2)])
    return entries.derive(entry, class_count=2)


@pytest.mark.parametrize("data", [
    entry(),
    {},
    {"empty_map": {}, "empty_list": [], "nested": {"a": {"b": [1, [2.5], {"c": None}]}}, "tuple": (1, "x")},
    {"bool": True, "false": False, "zero": 0, "negative": -5, "nan_free": -0.0, "bytes": b"\x00\xff", "text": "é ✓"},
    {"members": {"doc~id": {"path": "images/x.jpg", "split": None}}},
])
def test_plain_documents_encode_as_the_client_encodes_them(data):
    assert db.write_pb(PATH, data).SerializeToString(deterministic=True) == client_write(data)


@pytest.mark.parametrize("data", [
    {"updated": firestore.SERVER_TIMESTAMP},
    {"nested": {"when": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)}},
])
def test_other_values_are_left_to_the_client(data):
    with pytest.raises(TypeError):
        db.write_pb(PATH, data)
