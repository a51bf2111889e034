"""The entry document: where an image and its label meet, and what follows from them.

Pure functions over plain dicts, so the rules are unit-tested without a cloud.
An entry holds primary facts (the image, the label, their tombstones, the
duplicate group) and fields derived from them and the dataset's class count.
Every derived field that statistics sum is written on every entry, because a
Firestore aggregation with several sums only counts documents that have all
the summed fields.
"""
from __future__ import annotations

from common.domain.issues import Issue
from common.domain.labels import Box, boxes_in_range, class_issues

LABELED, BACKGROUND, UNLABELED, LABEL_ONLY, ABSENT = (
    "labeled", "background", "unlabeled", "label_only", "absent")
SPLIT_FLAGS = {"train": "f_train", "val": "f_val", "test": "f_test", None: "f_nosplit"}
# Summed by statistics; present on every entry (see module docstring).
SUMMED_FIELDS = ("f_image", "f_labeled", "f_background", "f_unlabeled", "f_label_only",
                 "f_train", "f_val", "f_test", "f_nosplit", "f_duplicate", "n_boxes", "issue_count")


def new_entry(key: str, split: str | None) -> dict:
    return {"key": key, "split": split, "image": None, "image_tombstone": 0, "image_issues": [],
            "label": None, "label_tombstone": 0, "label_issues": [],
            "duplicates": [], "duplicate_issues": []}


def is_stale(entry: dict, part: str, generation: int, deleting: bool = False) -> bool:
    """True when an event for `part` ("image" or "label") at `generation` is already
    applied or superseded. A finalize is stale when that generation or a newer one
    is indexed; a delete when a newer one is; both when a delete at or after that
    generation was seen."""
    if generation <= entry.get(f"{part}_tombstone", 0):
        return True
    current = entry.get(part)
    if current is None:
        return False
    return generation < current["generation"] if deleting else generation <= current["generation"]


def set_part(entry: dict, part: str, record: dict, issues: list[Issue]) -> None:
    entry[part] = record
    entry[f"{part}_issues"] = [i.to_dict() for i in issues]


def delete_part(entry: dict, part: str, generation: int) -> None:
    entry[part] = None
    entry[f"{part}_issues"] = []
    entry[f"{part}_tombstone"] = max(entry.get(f"{part}_tombstone", 0), generation)


def set_duplicates(entry: dict, own_id: str, members: dict[str, dict]) -> None:
    """Record the other entries with the same image content. `members` maps the
    document id of every entry in the content group to its {"path", "split"}."""
    others = [m["path"] for doc, m in members.items() if doc != own_id]
    entry["duplicates"] = sorted(others)
    entry["duplicate_issues"] = ([i.to_dict() for i in duplicate_issues(entry["image"], members)]
                                 if others and entry["image"] else [])


def duplicate_issues(image: dict, members: dict[str, dict]) -> list[Issue]:
    path = image["path"]
    other_paths = sorted(m["path"] for m in members.values() if m["path"] != path)
    issues = [Issue("duplicate_image",
                    f"identical content (sha256 {image['sha256'][:12]}…) is also at {', '.join(other_paths)}",
                    path)]
    splits = sorted({m["split"] for m in members.values() if m["split"]})
    if len(splits) > 1:
        issues.append(Issue("split_leakage",
                            f"the same image is in splits {' and '.join(splits)}: "
                            "evaluation would measure images the model trained on", path))
    return issues


def label_boxes(entry: dict) -> list[Box]:
    label = entry.get("label")
    return [Box.from_dict(b) for b in label["boxes"]] if label else []


def derive(entry: dict, class_count: int | None) -> dict:
    """Return the entry with every derived field recomputed."""
    has_image, has_label = entry["image"] is not None, entry["label"] is not None
    boxes = label_boxes(entry)
    in_range = boxes_in_range(boxes, class_count)
    label_path = (entry["label"] or {}).get("path", "")
    out_of_range = [i.to_dict() for i in class_issues(boxes, class_count, label_path)]
    status = _status(has_image, has_label, in_range, entry["label_issues"], boxes)
    orphan = ([Issue("label_without_image", "no image in the dataset has this label's name "
                     "(the label of images/…/x.jpg is labels/…/x.txt)", label_path).to_dict()]
              if status == LABEL_ONLY else [])
    issues = entry["image_issues"] + entry["label_issues"] + out_of_range + orphan + entry["duplicate_issues"]
    counted = in_range if has_image else []
    class_counts: dict[str, int] = {}
    for box in counted:
        class_counts[f"c{box.class_id}"] = class_counts.get(f"c{box.class_id}", 0) + 1
    derived = {
        "present": has_image or has_label, "has_image": has_image, "has_label": has_label,
        "status": status, "sha256": (entry["image"] or {}).get("sha256"),
        "class_issues": out_of_range + orphan, "issues": issues,
        "issue_count": len(issues), "has_issues": bool(issues),
        "class_ids": sorted({b.class_id for b in counted}), "class_counts": class_counts,
        "n_boxes": len(counted), "f_image": int(has_image), "f_duplicate": int(bool(entry["duplicates"]) and has_image),
    }
    for name in (LABELED, BACKGROUND, UNLABELED, LABEL_ONLY):
        derived[f"f_{name}"] = int(status == name)
    for split, flag in SPLIT_FLAGS.items():
        derived[flag] = int(has_image and entry["split"] == split)
    return {**entry, **derived}


def _status(has_image: bool, has_label: bool, in_range: list, label_issues: list, boxes: list) -> str:
    if not has_image:
        return LABEL_ONLY if has_label else ABSENT
    if in_range:
        return LABELED
    if has_label and not boxes and not label_issues:
        return BACKGROUND
    return UNLABELED
