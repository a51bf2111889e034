"""The sample dataset dropped file by file, in a shuffled order, through the real
storage client: the API must show an exact index."""
import random

import pytest
import requests

from infra.local.sample import CLASSES, sample_dataset
from tests.integration.helpers import drop, issues_by_file, stats_when


class _BuiltOnFirstUse:
    """sample_dataset() at first use, not at collection: it may download the Ultralytics wheel."""
    def __getattr__(self, name):
        if name not in ("files", "expected", "expected_issue_codes"):  # pytest probes every module object
            raise AttributeError(name)
        if "built" not in vars(self):
            self.built = sample_dataset()
        return getattr(self.built, name)


SAMPLE = _BuiltOnFirstUse()


@pytest.fixture(scope="module")
def indexed(bucket, api):
    dataset = "sample-shuffled"
    names = list(SAMPLE.files)
    random.Random(3).shuffle(names)
    drop(bucket, dataset, {name: SAMPLE.files[name] for name in names})
    stats_when(api, dataset, SAMPLE.expected)
    return dataset


def test_statistics_are_exact(api, indexed):
    view = api.get(f"/datasets/{indexed}")
    assert view["classes"] == CLASSES
    stats = view["stats"]
    assert {k: stats[k] for k in SAMPLE.expected} == SAMPLE.expected
    assert stats["boxes_per_class"] == {"person": 11, "bus": 5, "tie": 11}
    assert stats["labels_without_image"] == 1
    assert stats["issues"] == sum(len(v) for v in issues_by_file(api, indexed).values())


def test_every_bad_file_is_named_with_its_reason(api, indexed):
    issues = issues_by_file(api, indexed)
    assert issues["labels/train/messy.txt"] == [("label_columns", 2), ("label_out_of_range", 4),
                                                ("label_duplicate_row", 5), ("label_class_out_of_range", 3)]
    assert issues["labels/train/ghost.txt"] == [("label_without_image", None)]
    assert issues["README.md"] == [("unrecognized_file", None)]
    assert issues["images/train/tiny.png"] == [("image_too_small", None)]
    assert issues["images/train/notes_as_image.jpg"] == [("image_unreadable", None)]
    assert {code for code, _ in issues["images/train/truncated.jpg"]} >= {"image_corrupt"}
    for copy in ("images/train/bus.jpg", "images/val/bus_copy.jpg"):
        assert issues[copy] == [("duplicate_image", None), ("split_leakage", None)]
    assert {code for found in issues.values() for code, _ in found} >= SAMPLE.expected_issue_codes


def test_image_facts_and_labels(api, indexed):
    images = api.all_pages(f"/datasets/{indexed}/images", "images")
    bus = next(image for image in images if image["path"].endswith("images/train/bus.jpg"))
    assert (bus["width"], bus["height"], bus["format"], bus["split"]) == (810, 1080, "JPEG", "train")
    assert len(bus["sha256"]) == 64 and bus["thumbnail"].startswith("derived/thumbnails/")
    assert [box["class_name"] for box in bus["labels"]] == ["bus", "person", "person", "person", "person"]
    assert bus["duplicates"] == [f"datasets/{indexed}/images/val/bus_copy.jpg"]
    assert api.get(f"/datasets/{indexed}/images/{bus['id']}") == bus


def test_thumbnail_is_stored_where_ingest_ignores_it(api, indexed, bucket):
    images = api.all_pages(f"/datasets/{indexed}/images", "images", labeled="true")
    thumbnail = bucket.blob(images[0]["thumbnail"]).download_as_bytes()
    assert thumbnail[:2] == b"\xff\xd8"
    assert not images[0]["thumbnail"].startswith("datasets/")


@pytest.mark.parametrize("params, expected_count", [
    ({}, 16), ({"split": "val"}, 4), ({"split": "test"}, 0), ({"labeled": "true"}, 12),
    ({"labeled": "false"}, 4), ({"has_issues": "true"}, 6), ({"has_issues": "false", "split": "train"}, 7),
    ({"status": "background"}, 1), ({"status": "label_only"}, 1),
])
def test_image_filters(api, indexed, params, expected_count):
    assert len(api.all_pages(f"/datasets/{indexed}/images", "images", **params)) == expected_count


@pytest.mark.parametrize("class_param, class_id, split", [
    ("tie", 2, None), ("2", 2, None), ("bus", 1, None), ("person", 0, "val")])
def test_class_filter_matches_the_boxes(api, indexed, class_param, class_id, split):
    everything = api.all_pages(f"/datasets/{indexed}/images", "images")
    expected = sorted(image["id"] for image in everything if (split is None or image["split"] == split)
                      and any(box["class_id"] == class_id for box in image["labels"]))
    params = {"class": class_param, **({"split": split} if split else {})}
    found = sorted(image["id"] for image in api.all_pages(f"/datasets/{indexed}/images", "images", **params))
    assert found == expected and found


def test_pages_cover_everything_once(api, indexed):
    paged = api.all_pages(f"/datasets/{indexed}/images", "images", page_size=3)
    assert len(paged) == 16 and len({image["id"] for image in paged}) == 16
    issues_small = api.all_pages(f"/datasets/{indexed}/issues", "issues", page_size=1)
    issues_big = api.all_pages(f"/datasets/{indexed}/issues", "issues", page_size=1000)
    assert issues_small == issues_big and len(issues_big) == api.get(f"/datasets/{indexed}")["stats"]["issues"]


def test_dataset_listing(api, indexed):
    listed = api.all_pages("/datasets", "datasets", page_size=1)
    mine = [d for d in listed if d["id"] == indexed]
    assert len(mine) == 1 and mine[0]["stats"]["images"] == 16 and mine[0]["classes"] == CLASSES


def test_auth_and_errors_are_json(api, indexed):
    url = api.url
    assert requests.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = requests.get(f"{url}/datasets", headers=headers, timeout=10)
        assert response.status_code == 401 and "token" in response.json()["error"]["message"]
    assert api.get("/datasets/no-such-dataset", expect=404)["error"]["status"] == 404
    for param, value in [("page_size", "0"), ("page_size", "x"), ("split", "training"), ("labeled", "maybe"),
                         ("class", "giraffe"), ("page_token", "garbage"), ("status", "odd")]:
        error = api.get(f"/datasets/{indexed}/images", expect=400, **{param: value})["error"]
        assert error["param"] == param and repr(value) in error["message"]
    assert api.get("/nowhere", expect=404)["error"]["status"] == 404
