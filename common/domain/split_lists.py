"""Splits a layout keeps in lists, not in folders: data.yaml's train/val/test as .txt image lists
(autosplit_train.txt) or as folders whose names say no split (images/train2012), and Darknet's train.txt /
valid.txt / test.txt (named by obj.data, or by the convention). Pure.

Push and import read them through common.domain.dataset_formats, which knows every file of the export. A drop
cannot: its files come one by one, in any order, so a listed path is matched by each of its tails (the
rule push's "longest existing tail" picks from): `data/obj/a.jpg` stands for the keys of `data/obj/a.jpg` and of
`obj/a.jpg`. What a drop keeps of the lists:

- assignments {entry key: split}: one per listed image (the first list naming it wins), only where the list
  says something the image's folder does not;
- folder rules [(key prefix, split)]: data.yaml's folders, for images whose own folders name no split.

An entry's split (split_for): its assignment, else the split its folder names, else the first folder rule
that matches its key, else none. A folder naming a split (images/val/) is never overridden by a folder rule: a
rule comes from a tail, which may match more than the export meant (../train/images also ends in images).
"""
from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import Any, cast

from common.domain.issues import Issue
from common.domain.layout import SPLITS, classify, dataset_object, doc_id

# Darknet's obj.data keys (and, without obj.data, the list files' stems) and the split each means.
DARKNET_LIST_SPLITS = {"train": "train", "valid": "val", "val": "val", "test": "test"}
OBJ_DATA_FILES = ("obj.data", "data/obj.data")
MAX_LIST_BYTES = 16 * 1024 * 1024  # an image list read whole: 100,000 paths fit
MAX_LISTS = 12  # list files one dataset's data.yaml and obj.data may name
MAX_RULES = 100  # folder rules kept on the dataset document
MAX_ASSIGNMENTS = 250_000  # the images lists may place (each a document)
MAX_TAIL_PARTS = 8  # a listed path's last parts that are tried (an absolute path names the author's machine)


@dataclass(frozen=True)
class ListReference:
    """A list file a layout names: its split, the reference as written (resolved by its tails), and who
    names it (data.yaml, obj.data, or the Darknet convention)."""
    split: str
    reference: str
    named_by: str
    yaml: bool  # a data.yaml list: its split beats an image's folder (push moves the image into the split)


@dataclass
class SplitPlan:
    """What a dataset's lists say, for a drop (see the module docstring)."""
    assignments: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (split, list file)
    rules: list[dict[str, Any]] = field(default_factory=list)  # [{"prefix", "split"}], first match wins
    listed: dict[str, int] = field(default_factory=dict)  # list file -> images it names
    issues: list[Issue] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.assignments and not self.rules


# ---- parsing, shared with push and import (common.domain.dataset_formats) -----------------------------------

def tails(reference: str) -> list[str]:
    """The paths a reference may name, longest first: itself and each of its tails (a data.yaml's
    ../train/images, an absolute /home/me/data/images/train, Darknet's data/obj/a.jpg)."""
    parts = [part for part in reference.replace("\\", "/").split("/") if part not in ("", ".", "..")]
    return ["/".join(parts[start:]) for start in range(len(parts))]


def yaml_entries(document: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(split, reference, whether its split names several) for data.yaml's train, val and test, in that order:
    each a folder or a .txt list, joined to `path:`."""
    path = document.get("path")
    root = path if isinstance(path, str) else ""
    found = []
    for split in SPLITS:
        entries = document.get(split)
        entries = [e.strip() for e in (entries if isinstance(entries, list) else [entries])
                   if isinstance(e, str) and e.strip()]
        found += [(split, posixpath.join(root, entry), len(entries) > 1) for entry in entries]
    return found


def darknet_lists(settings: dict[str, str]) -> list[tuple[str, str]]:
    """(split, reference) of Darknet's image lists: obj.data's train/valid/test, else train.txt, valid.txt..."""
    return [(split, settings.get(key, f"{key}.txt")) for key, split in DARKNET_LIST_SPLITS.items()]


def obj_data_settings(text: str) -> dict[str, str]:
    """Darknet's obj.data: `key = value` lines (classes, train, valid, names, backup)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def list_lines(text: str) -> list[str]:
    """The paths an image list names, one a line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


# ---- a drop ------------------------------------------------------------------------------------------------

def list_references(document: dict[str, Any] | None, settings: dict[str, str] | None, yaml_name: str = "data.yaml",
                    obj_data_name: str = "obj.data") -> list[ListReference]:
    """The list files a dataset's data.yaml and obj.data name (or, without obj.data, Darknet's conventional
    train.txt, valid.txt, val.txt and test.txt at the root or in data/), at most MAX_LISTS."""
    found = [ListReference(split, reference, yaml_name, True) for split, reference, _ in
             yaml_entries(document or {}) if reference.lower().endswith(".txt")]
    if settings:
        found += [ListReference(split, reference, obj_data_name, False) for split, reference in
                  darknet_lists(settings) if reference.lower().endswith(".txt")]
    else:
        found += [ListReference(split, f"{folder}{stem}.txt", "the Darknet convention", False)
                  for folder in ("", "data/") for stem, split in DARKNET_LIST_SPLITS.items()]
    return found[:MAX_LISTS]


def folder_rules(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    """data.yaml's folders as rules for the images in them whose own folders name no split: each folder
    by its tails (longest first; a one-folder tail only when it is the whole reference), first split wins."""
    rules: dict[str, str] = {}
    for split, reference, _ in yaml_entries(document or {}):
        if reference.lower().endswith(".txt"):
            continue
        candidates = tails(reference)
        for tail in candidates:
            prefix = _key_prefix(tail)
            if prefix and ("/" in tail or len(candidates) == 1):
                rules.setdefault(prefix, split)
    return [{"prefix": prefix, "split": split} for prefix, split in list(rules.items())[:MAX_RULES]]


def has_lists(document: dict[str, Any] | None) -> bool:
    """Whether a data.yaml says splits its folders do not: a .txt list, or a folder rule."""
    listed = any(reference.lower().endswith(".txt") for _, reference, _ in yaml_entries(document or {}))
    return listed or bool(folder_rules(document))


def listed_keys(line: str) -> list[str]:
    """The entry keys a listed image path stands for, one per tail that is an image a drop indexes."""
    found = []
    for tail in tails(line)[-MAX_TAIL_PARTS:]:
        role = classify(dataset_object("_", tail))
        if role.kind == "image" and _storable(cast(str, role.key)):  # an image's role has its key
            found.append(cast(str, role.key))
    return found


def add_list(plan: SplitPlan, reference: ListReference, name: str, text: str) -> None:
    """The assignments of one list file (its dataset-relative `name`), after those of the lists before it: an
    image named twice keeps its first split. A data.yaml list's split beats the image's folder; a Darknet
    list's does not (push's rules)."""
    lines = list_lines(text)
    plan.listed[name] = len(lines)
    unusable = []
    for line in lines:
        keys = listed_keys(line)
        if not keys:
            unusable.append(line)
        for key in keys:
            if key in plan.assignments or len(plan.assignments) >= MAX_ASSIGNMENTS:
                continue
            folder = folder_split(key)
            if folder != reference.split and (reference.yaml or folder is None):
                plan.assignments[key] = (reference.split, name)
    if unusable:
        plan.issues.append(Issue("split_list_not_images", f"{len(unusable)} of its {len(lines)} lines name no "
                                 f"image a drop indexes (such as {unusable[0][:200]!r}): an image is under images/, "
                                 "obj/ or obj_<split>_data/ and has an image extension; those lines are left out",
                                 name))
    if len(plan.assignments) >= MAX_ASSIGNMENTS:
        plan.issues.append(Issue("split_list_too_long", f"the lists place more than {MAX_ASSIGNMENTS} images: the "
                                 "rest keep the split of their folders", name))


def resplit_job_id(dataset: str, object_name: str, generation: int, action: str) -> str:
    """One resplit per event of a list source (a redelivered event finds its job); a delete's generation is the
    deleted object's, so the action is part of the id."""
    request = f"{dataset}\0{object_name}\0{generation}\0{action}"
    return "resplit-" + hashlib.sha256(request.encode()).hexdigest()[:20]


def folder_split(key: str) -> str | None:
    """The split an entry's folders name (its key keeps them: labels/val/a, obj_train_data/a, obj/a)."""
    return classify(dataset_object("_", key + ".txt")).split


def split_for(key: str, folder: str | None, assigned: str | None, rules: list[dict[str, Any]]) -> str | None:
    """An entry's split: its assignment, else its folder's, else the first folder rule matching its key."""
    if assigned:
        return assigned
    if folder:
        return folder
    return next((rule["split"] for rule in rules if key.startswith(rule["prefix"])), None)


def _storable(key: str) -> bool:
    try:
        return bool(doc_id(key))
    except ValueError:
        return False


def _key_prefix(folder: str) -> str | None:
    """The key prefix of the images a drop indexes in `folder` (images/train2012 -> labels/train2012/), when
    their folders name no split; None otherwise."""
    role = classify(dataset_object("_", f"{folder}/x.jpg"))
    if role.kind != "image" or role.split is not None:
        return None
    return cast(str, role.key)[:-1]

