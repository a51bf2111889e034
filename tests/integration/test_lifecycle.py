"""Objects change after they are indexed: overwrites replace facts, deletes leave
the index, class changes revalidate every label; and many events at once."""
from concurrent.futures import ThreadPoolExecutor

from infra.local.client import upload_all, wait_for
from infra.local.sample import data_yaml, synthetic_image
from tests.integration.helpers import drop, issues_by_file, stats_when

LABEL = b"2 0.5 0.5 0.2 0.2\n"


def test_overwrite_delete_and_class_changes(bucket, api, dataset):
    first, second = synthetic_image(1)[0], synthetic_image(2, size=(320, 200))[0]
    drop(bucket, dataset, {"images/train/a.jpg": first, "labels/train/a.txt": LABEL,
                           "data.yaml": data_yaml(["x", "y", "z"]).encode()})
    stats_when(api, dataset, {"images": 1, "labeled": 1, "boxes": 1, "issues": 0,
                              "boxes_per_class": {"x": 0, "y": 0, "z": 1}})
    image_url = f"/datasets/{dataset}/images/labels/train/a"
    old_sha = api.get(image_url)["sha256"]

    drop(bucket, dataset, {"data.yaml": data_yaml(["x", "y"]).encode()})  # class 2 no longer exists
    stats_when(api, dataset, {"labeled": 0, "unlabeled": 1, "boxes": 0, "issues": 1})
    assert issues_by_file(api, dataset) == {"labels/train/a.txt": [("label_class_out_of_range", 1)]}

    drop(bucket, dataset, {"data.yaml": b"names: {0: x, 1: y, 2: z, 3: w}\n"})  # back, as a dict
    stats_when(api, dataset, {"labeled": 1, "boxes": 1, "issues": 0})

    drop(bucket, dataset, {"images/train/a.jpg": second})  # overwrite: new generation, new facts
    image = wait_for(lambda: api.get(image_url), lambda i: i["sha256"] != old_sha, 60, "the new generation")
    assert (image["width"], image["height"]) == (320, 200)

    bucket.blob(f"datasets/{dataset}/labels/train/a.txt").delete()
    stats_when(api, dataset, {"images": 1, "labeled": 0, "unlabeled": 1, "boxes": 0})
    bucket.blob(f"datasets/{dataset}/images/train/a.jpg").delete()
    stats_when(api, dataset, {"images": 0, "unlabeled": 0})
    api.get(image_url, expect=404)
    assert api.all_pages(f"/datasets/{dataset}/images", "images") == []

    drop(bucket, dataset, {"notes.txt": b"x"})
    stats_when(api, dataset, {"issues": 1})
    bucket.blob(f"datasets/{dataset}/notes.txt").delete()
    stats_when(api, dataset, {"issues": 0})
    bucket.blob(f"datasets/{dataset}/data.yaml").delete()
    wait_for(lambda: api.get(f"/datasets/{dataset}"), lambda v: not v["classes_known"], 60, "classes forgotten")


def test_label_before_image_and_duplicate_removed(bucket, api, dataset):
    content = synthetic_image(5)[0]
    drop(bucket, dataset, {"labels/val/b.txt": LABEL})
    stats_when(api, dataset, {"labels_without_image": 1, "images": 0})
    drop(bucket, dataset, {"images/val/b.jpg": content, "images/train/b_copy.jpg": content})
    stats_when(api, dataset, {"images": 2, "labeled": 1, "labels_without_image": 0, "duplicates": 2})
    bucket.blob(f"datasets/{dataset}/images/train/b_copy.jpg").delete()
    stats_when(api, dataset, {"images": 1, "duplicates": 0, "issues": 0})


def test_hundreds_of_concurrent_events_for_one_dataset(bucket, api, dataset):
    """300 files at once, a tenth of them identical images, plus a class change mid-flight."""
    files = {}
    for i in range(150):
        image, label = synthetic_image(i % 135)  # seeds 0..14 repeat: 15 duplicate pairs
        split = "val" if i % 5 == 0 else "train"
        files[f"images/{split}/img_{i:03}.jpg"] = image
        files[f"labels/{split}/img_{i:03}.txt"] = label.encode()
    boxes = sum(1 for name, data in files.items() if name.startswith("labels/") for _ in data.splitlines())
    drop(bucket, dataset, {"data.yaml": data_yaml(["a", "b"]).encode()})
    with ThreadPoolExecutor(max_workers=2) as pool:
        uploads = pool.submit(upload_all, bucket, {f"datasets/{dataset}/{k}": v for k, v in files.items()}, 32)
        drop(bucket, dataset, {"data.yaml": data_yaml(["a", "b", "c"]).encode()})
        uploads.result()
    stats = stats_when(api, dataset, {"images": 150, "labeled": 150, "boxes": boxes, "duplicates": 30}, timeout=180)
    assert sum(stats["boxes_per_class"].values()) == boxes and stats["splits"]["val"] == 30


def test_deleting_data_yaml_revalidates_the_labels_against_no_classes(bucket, api, dataset):
    """The delete event carries the generation of the finalize before it: its revalidation is a job of its own,
    not the finalize's (found done, and nothing checked again)."""
    image, _ = synthetic_image(7)
    drop(bucket, dataset, {"data.yaml": data_yaml(["x", "y"]).encode(), "images/train/c.jpg": image,
                           "labels/train/c.txt": b"2 0.5 0.5 0.2 0.2\n"})
    stats_when(api, dataset, {"images": 1, "issues": 1})  # class 2 is out of range of [x, y]
    bucket.blob(f"datasets/{dataset}/data.yaml").delete()
    stats_when(api, dataset, {"issues": 0, "boxes": 1})  # no classes: no class is out of range
