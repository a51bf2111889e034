"""A drop of a layout that keeps its splits in lists (data.yaml's .txt image lists and folders without a split
name, Darknet's train.txt / valid.txt) gives each image the list's split, whatever the order the files arrive
in: lists before the images, after them, changed (the images move, and their duplicate groups learn it), deleted
(back to the split of their folders), and every event delivered twice."""
from __future__ import annotations

from common.platform.events import FINALIZED, ObjectEvent
from common.platform.handler import Outcome
from common.services import ingest
from infra.local.client import wait_for
from infra.local.sample import synthetic_image
from tests.integration.helpers import DEADLINE, drop

YAML_LISTS = b"path: .\ntrain: autosplit_train.txt\nval: autosplit_val.txt\nnames: [cat, dog]\n"
AUTOSPLIT = {"autosplit_train.txt": b"./images/a.jpg\n./images/b.jpg\n",
             "autosplit_val.txt": b"./images/c.jpg\n./images/train/d.jpg\n"}  # a data.yaml list beats the folder
AUTOSPLIT_SPLITS = {"images/a.jpg": "train", "images/b.jpg": "train", "images/c.jpg": "val",
                    "images/train/d.jpg": "val"}


def images(paths, seed: int) -> dict[str, bytes]:
    return {path: synthetic_image(seed + number, size=(48 + number, 32))[0] for number, path in enumerate(paths)}


def splits_of(api, dataset: str) -> dict[str, str | None] | None:
    """{image path in the dataset: split}, once no job of the dataset runs; None before."""
    view = api.get_or_none(f"/datasets/{dataset}")
    if view is None or view.get("pending_jobs", 0):
        return None
    return {image["path"].removeprefix(f"datasets/{dataset}/"): image["split"]
            for image in api.all_pages(f"/datasets/{dataset}/images", "images")}


def splits_when(api, dataset: str, expected: dict) -> dict:
    return wait_for(lambda: splits_of(api, dataset), lambda found: found == expected, DEADLINE,
                    f"{dataset}: splits {expected}")


def jobs_of(api, dataset: str) -> dict[str, str]:
    return {job["id"]: job["status"] for job in api.all_pages(f"/datasets/{dataset}/jobs", "jobs")}


def list_rows(api, dataset: str) -> dict[str, dict]:
    """The dataset's file rows of the autosplit lists, once both are recorded as image lists."""
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in api.all_pages(f"/datasets/{dataset}/files", "files")}
    return {name: rows[name] for name in AUTOSPLIT if "image list" in (rows.get(name) or {}).get("summary", "")}


def test_lists_dropped_before_the_images_give_them_their_splits_as_ingest_indexes_them(api, bucket, dataset):
    drop(bucket, dataset, {"data.yaml": YAML_LISTS, **AUTOSPLIT})
    wait_for(lambda: list_rows(api, dataset) if splits_of(api, dataset) == {} else {},
             lambda rows: len(rows) == len(AUTOSPLIT), DEADLINE, "the lists read by their resplit")
    jobs = jobs_of(api, dataset)
    drop(bucket, dataset, images(AUTOSPLIT_SPLITS, 10))
    splits_when(api, dataset, AUTOSPLIT_SPLITS)
    assert jobs_of(api, dataset) == jobs  # no job moved them: ingest gave each its split
    assert all(row["issue_count"] == 0 for row in list_rows(api, dataset).values())
    assert api.all_pages(f"/datasets/{dataset}/issues", "issues") == []


def test_lists_dropped_after_the_images_move_them_and_a_redelivery_changes_nothing(api, bucket, dataset):
    drop(bucket, dataset, images(AUTOSPLIT_SPLITS, 20))
    splits_when(api, dataset, {"images/a.jpg": None, "images/b.jpg": None, "images/c.jpg": None,
                               "images/train/d.jpg": "train"})
    drop(bucket, dataset, {**AUTOSPLIT, "data.yaml": YAML_LISTS})  # the lists first: each event starts a job
    splits_when(api, dataset, AUTOSPLIT_SPLITS)
    jobs = jobs_of(api, dataset)
    # every event of the drop again, as a redelivery brings it: each finds its job, nothing moves
    events = [ObjectEvent(FINALIZED, bucket.name, blob.name, blob.generation, blob.size, "redelivered")
              for blob in bucket.list_blobs(prefix=f"datasets/{dataset}/")]
    assert all(isinstance(outcome, Outcome) for outcome in ingest.handle_batch(events))
    assert jobs_of(api, dataset) == jobs
    assert splits_of(api, dataset) == AUTOSPLIT_SPLITS


def darknet_lists(train: list[str], valid: list[str]) -> dict[str, bytes]:
    return {"train.txt": "".join(f"data/obj/{name}\n" for name in train).encode(),
            "valid.txt": "".join(f"data/obj/{name}\n" for name in valid).encode()}


def test_a_changed_list_moves_images_and_their_duplicate_groups_and_a_deleted_one_puts_them_back(api, bucket,
                                                                                                  dataset):
    files = images(["obj/a.jpg", "obj/b.jpg", "obj/c.jpg"], 30)
    files["obj/a_copy.jpg"] = files["obj/a.jpg"]  # the same content: one duplicate group, two entries
    drop(bucket, dataset, {"obj.data": b"classes = 1\ntrain = data/train.txt\nvalid = data/valid.txt\n",
                           "obj.names": b"cat\n", **darknet_lists(["a.jpg", "b.jpg"], ["c.jpg", "a_copy.jpg"]),
                           **files})
    splits_when(api, dataset, {"obj/a.jpg": "train", "obj/b.jpg": "train", "obj/c.jpg": "val",
                               "obj/a_copy.jpg": "val"})
    assert leaking(api, dataset) == {"obj/a.jpg", "obj/a_copy.jpg"}

    drop(bucket, dataset, darknet_lists(["a.jpg", "a_copy.jpg"], ["b.jpg", "c.jpg"]))
    splits_when(api, dataset, {"obj/a.jpg": "train", "obj/b.jpg": "val", "obj/c.jpg": "val",
                               "obj/a_copy.jpg": "train"})
    assert leaking(api, dataset) == set()

    drop(bucket, dataset, darknet_lists(["a.jpg"], ["a_copy.jpg"]))
    wait_for(lambda: leaking(api, dataset) if splits_of(api, dataset) else None, lambda found: found is not None
             and found == {"obj/a.jpg", "obj/a_copy.jpg"}, DEADLINE, "the copies in two splits again")
    for name in ("train.txt", "valid.txt"):
        bucket.blob(f"datasets/{dataset}/{name}").delete()
    splits_when(api, dataset, dict.fromkeys(files))
    assert leaking(api, dataset) == set()


def leaking(api, dataset: str) -> set[str]:
    return {issue["file"].removeprefix(f"datasets/{dataset}/")
            for issue in api.all_pages(f"/datasets/{dataset}/issues", "issues") if issue["code"] == "split_leakage"}


def test_data_yamls_folders_without_a_split_name_give_their_images_a_split(api, bucket, dataset):
    drop(bucket, dataset, images(["images/train2012/a.jpg", "images/test2007/b.jpg", "images/val/c.jpg"], 40))
    drop(bucket, dataset, {"data.yaml": b"path: ../datasets/voc\ntrain: [images/train2012, images/train2007]\n"
                                        b"val: [images/test2007]\nnames: [cat]\n"})
    splits_when(api, dataset, {"images/train2012/a.jpg": "train", "images/test2007/b.jpg": "val",
                               "images/val/c.jpg": "val"})
    drop(bucket, dataset, images(["images/train2007/d.jpg"], 50))  # after the rules: ingest applies them
    splits_when(api, dataset, {"images/train2012/a.jpg": "train", "images/test2007/b.jpg": "val",
                               "images/val/c.jpg": "val", "images/train2007/d.jpg": "train"})
    drop(bucket, dataset, {"data.yaml": b"train: images/train\nval: images/val\nnames: [cat]\n"})
    splits_when(api, dataset, {"images/train2012/a.jpg": None, "images/test2007/b.jpg": None,
                               "images/val/c.jpg": "val", "images/train2007/d.jpg": None})
