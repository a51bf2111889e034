import pytest

from common.domain import entries, snapshot
from common.domain.training_set import build
from common.domain.training_request import InvalidRequest, in_val_split, validate

CLASSES = ["person", "bus"]
CLASS_COUNT = len(CLASSES)


def entry(name: str, split: str | None, sha: str, boxes=((0, 0.5, 0.5, 0.2, 0.2),), label=True,
          image_issues=(), class_count=CLASS_COUNT) -> dict:
    e = entries.new_entry(f"datasets/d/labels/{split + '/' if split else ''}{name}", split)
    e["image"] = {"path": f"datasets/d/images/{split + '/' if split else ''}{name}.jpg", "generation": 7, "sha256": sha,
                  "oriented_width": 640, "oriented_height": 480}
    e["image_issues"] = [{"code": c} for c in image_issues]
    if label:
        e["label"] = {"path": "x.txt", "generation": 8,
                      "boxes": [{"line": i + 1, "class_id": c, "cx": x, "cy": y, "w": w, "h": h}
                                for i, (c, x, y, w, h) in enumerate(boxes)]}
    return entries.derive(e, class_count)


def request(**extra):
    return validate({"dataset": "d", "model": "yolov8n.yaml", **extra}, "m-1")


def make(all_entries, classes=CLASSES, **extra):
    return build(request(**extra), "job-1", "bucket", {"yaml": "yolov8n.yaml"},
                 snapshot.take("d", classes, all_entries))


def sha(i: int) -> str:
    return f"{i:064x}"


def test_pins_images_and_keeps_given_splits():
    manifest = make([entry("a", "train", sha(1)), entry("b", "val", sha(2)), entry("c", "test", sha(3))])
    assert manifest["split_rule"] == "as uploaded"
    assert manifest["counts"] == {"train": 1, "val": 1, "test": 1}
    first = next(i for i in manifest["images"] if i["split"] == "train")
    assert (first["path"], first["generation"], first["sha256"], first["split"]) == \
        ("datasets/d/images/train/a.jpg", 7, sha(1), "train")
    assert first["boxes"] == [[0, 0.5, 0.5, 0.2, 0.2]] and (first["width"], first["height"]) == (640, 480)
    assert manifest["classes"] == CLASSES and manifest["train_args"]["epochs"] == 50


def test_no_val_split_means_split_by_content_hash():
    shas = [f"{i:02x}" + "0" * 62 for i in range(0, 256, 8)]
    manifest = make([entry(f"i{i}", None, s) for i, s in enumerate(shas)], val_fraction=0.25)
    assert manifest["split_rule"].startswith("by content hash")
    assert {i["sha256"] for i in manifest["images"] if i["split"] == "val"} == \
        {s for s in shas if in_val_split(s, 0.25)}
    # the same images in another order split the same way
    again = make([entry(f"other{i}", "train", s) for i, s in reversed(list(enumerate(shas)))], val_fraction=0.25)
    assert {i["sha256"]: i["split"] for i in again["images"]} == {i["sha256"]: i["split"] for i in manifest["images"]}


def test_excludes_what_cannot_train_and_says_how_many():
    manifest = make([
        entry("a", "train", sha(1)), entry("b", "val", sha(2)),
        entry("copy_of_a", "val", sha(1)),                    # same content: once only
        entry("broken", "train", sha(3), image_issues=["truncated_image"]),
        entry("nolabel", "train", sha(4), label=False),
        entry("background", "train", sha(5), boxes=()),       # kept: an empty label is a background image
    ])
    assert manifest["excluded"] == {"duplicate content": 1, "image with issues": 1, "unlabelled image": 1}
    assert sorted(i["path"].rsplit("/", 1)[1] for i in manifest["images"]) == ["a.jpg", "b.jpg", "background.jpg"]


def test_boxes_of_unknown_classes_are_left_out():
    manifest = make([entry("a", "train", sha(1), boxes=((0, .5, .5, .1, .1), (5, .5, .5, .1, .1))),
                     entry("b", "val", sha(2))])
    assert manifest["images"][0]["boxes"] == [[0, 0.5, 0.5, 0.1, 0.1]]


@pytest.mark.parametrize("classes, all_entries, reason", [
    (None, [entry("a", "train", sha(1))], "has no classes"),
    (CLASSES, [entry("a", "train", sha(1), label=False)], "no labelled images .excluded: 1 unlabelled image"),
    (CLASSES, [], "no labelled images .excluded: nothing indexed"),
    (CLASSES, [entry("a", "val", sha(1))], "no usable train images"),
    (CLASSES, [entry("a", "train", "f" * 64)], "no usable val images"),
])
def test_datasets_that_cannot_train_say_why(classes, all_entries, reason):
    with pytest.raises(InvalidRequest, match=reason):
        make(all_entries, classes=classes)


def test_the_snapshot_is_generic_and_the_training_view_splits_it():
    """The snapshot keeps splits as uploaded (None outside a split folder) and every
    box of a dataset without classes; only the training view assigns train/val."""
    taken = snapshot.take("d", None, [entry("a", None, sha(1), boxes=((7, .5, .5, .1, .1),), class_count=None)])
    assert taken.classes is None and taken.excluded == {}
    (image,) = taken.images
    assert (image.split, image.boxes, image.width, image.height, image.labeled) == \
        (None, ((7, 0.5, 0.5, 0.1, 0.1),), 640, 480, True)


def test_an_entry_with_neither_image_nor_label_is_neither_taken_nor_excluded():
    gone = entries.derive(entries.new_entry("datasets/d/labels/train/gone", "train"), CLASS_COUNT)
    taken = snapshot.take("d", CLASSES, [gone, entry("a", "train", sha(1))])
    assert [image.sha256 for image in taken.images] == [sha(1)] and taken.excluded == {}
