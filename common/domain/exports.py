"""Exports: a version as a YOLO, COCO or Pascal VOC zip. Pure rules: the request,
what goes where in the archive, the data.yaml, the counts, and the export document.

Splits follow the training rule (common.domain.training_set): as uploaded when
the version has val images (images outside a split folder go to train), else
by content hash, so an export trains as a job on the same version does.
Member names are made safe to unzip anywhere: an object name may hold `..`, a
leading `/`, backslashes, drive colons or control characters (an administrator
can drop any name), and none of them reaches the archive.
"""
from __future__ import annotations

import json
import posixpath
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.domain import coco, jobs, versions, voc
from common.domain.labels import Row, write_label
from common.domain.layout import SPLIT_ALIASES, SPLITS, in_side_by_side_folder, relative_label_path
from common.domain.training_request import DEFAULT_VAL_FRACTION
from common.domain.training_set import split_of, splits_by_hash

if TYPE_CHECKING:  # the request's model (pydantic), which only the API loads
    from common.domain.request_bodies import ExportRequest

YOLO, COCO, VOC = "yolo", "coco", "voc"
FORMATS = (YOLO, COCO, VOC)
QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = jobs.QUEUED, jobs.RUNNING, jobs.COMPLETED, jobs.FAILED, jobs.CANCELLED
STATUSES = jobs.STATES
FINAL = jobs.FINAL
# An export may be cancelled while queued or running: the call writing it stops at its next part, nothing is
# composed, and its parts are removed (common.services.export).
CANCEL = jobs.Cancel(jobs.ACTIVE)


def lease(seconds: float) -> jobs.Lease:
    """The claim of the call writing an export (EXPORT_LEASE_SECONDS): its stored `heartbeat` and `claimed_by`
    (which delivery). An export an older deployment claimed has a heartbeat only: its time alone decides."""
    return jobs.Lease(seconds, at="heartbeat", holder="claimed_by")
BACKGROUND_LEFT_OUT = "background image (left out by request)"
# A version frozen from entries indexed before the oriented size was kept: COCO and VOC need the pixel size
SIZE_UNKNOWN = "image size not recorded (upload the image again, then freeze a new version)"


class InvalidExportRequest(ValueError):
    """An export that can never succeed; the message says why."""


def new_document(export_id: str, dataset: str, request: ExportRequest, requested_by: str | None,
                 now: float) -> dict[str, Any]:
    return {"id": export_id, "dataset": dataset, "format": request.format, "version": request.version,
            "background": request.background, "status": QUEUED, "files_total": None, "files_done": 0,
            "bytes": 0, "uri": None, "excluded": None, "splits": None, "boxes_per_class": None, "error": None,
            "requested_by": requested_by,
            "created_at": now, "started_at": None, "finished_at": None}


def view(document: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "dataset", "format", "version", "background", "status", "files_total", "files_done", "bytes",
            "uri", "excluded", "splits", "boxes_per_class", "error", "requested_by", "cancelled_by", "created_at",
            "started_at", "finished_at")
    return {key: document.get(key) for key in keys}


@dataclass(frozen=True)
class Member:
    """One image of an export, with where it comes from and where it goes."""
    split: str
    file_name: str        # relative to images/<split>/
    source_path: str      # the content store object, pinned by generation
    source_generation: int
    width: int
    height: int
    rows: tuple[Row, ...]
    sha256: str = ""

    @property
    def image_name(self) -> str:
        return f"images/{self.split}/{self.file_name}"

    @property
    def label_name(self) -> str:
        return relative_label_path(self.image_name)


@dataclass(frozen=True)
class ExportPlan:
    classes: list[str]
    members: list[Member]
    excluded: dict[str, int]

    @property
    def splits(self) -> dict[str, int]:
        return {split: sum(1 for m in self.members if m.split == split) for split in SPLITS
                if any(m.split == split for m in self.members)}

    @property
    def boxes_per_class(self) -> dict[str, dict[str, int]]:
        """{split: {class name: boxes}} for each split with images, every class listed (0 when it has none)."""
        counted: dict[str, Counter[int]] = {split: Counter() for split in self.splits}
        for member in self.members:
            counted[member.split].update(int(row[0]) for row in member.rows)
        return {split: _by_name(self.classes, per_class) for split, per_class in counted.items()}


def _by_name(classes: list[str], per_class: Counter[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for class_id, name in enumerate(classes):  # a name listed twice counts the boxes of both ids
        counts[name] = counts.get(name, 0) + per_class.get(class_id, 0)
    return counts


def plan(frozen: dict[str, Any], background: bool) -> ExportPlan:
    snapshot = versions.stored_snapshot(frozen)
    by_hash = splits_by_hash(snapshot)
    excluded: dict[str, int] = dict(frozen["excluded"])
    members: list[Member] = []
    taken: set[tuple[str, str]] = set()
    for image, record in zip(snapshot.images, frozen["images"]):
        if not background and not image.boxes:
            reason = BACKGROUND_LEFT_OUT
        elif image.width is None or image.height is None:
            reason = SIZE_UNKNOWN
        else:
            split = split_of(image, DEFAULT_VAL_FRACTION, by_hash)
            name = _unique(split, safe_member_path(_name_in_split(record["name"])), image.sha256, taken)
            members.append(Member(split, name, image.path, image.generation, image.width, image.height,
                                  image.boxes, image.sha256))
            continue
        excluded[reason] = excluded.get(reason, 0) + 1
    return ExportPlan(list(snapshot.classes or ()), members, excluded)


def _name_in_split(relative: str) -> str:
    """images/train/sub/a.jpg, train/images/sub/a.jpg, images/sub/a.jpg, obj_train_data/sub/a.jpg -> sub/a.jpg"""
    parts = relative.split("/")
    if "images" in parts[:-1]:
        parts = parts[len(parts) - 1 - parts[::-1].index("images") + 1:]
    elif side_by_side := in_side_by_side_folder(relative):
        return side_by_side
    if len(parts) > 1 and parts[0].lower() in SPLIT_ALIASES:
        parts = parts[1:]
    return "/".join(parts)


def safe_member_path(name: str) -> str:
    """A relative path that stays inside the folder it is unzipped into, on any system: backslashes are
    separators, parts of dots alone (`.`, `..`) and empty ones go, control characters go, and a colon (a
    Windows drive or stream) becomes `_`. Nothing left: "image"."""
    kept = []
    for part in name.replace("\\", "/").split("/"):
        part = "".join("_" if c == ":" else c for c in part if unicodedata.category(c) != "Cc").strip()
        if part.strip("."):
            kept.append(part)
    return "/".join(kept) or "image"


def _unique(split: str, name: str, sha256: str, taken: set[tuple[str, str]]) -> str:
    """The name, or with the content's first 8 hex digits when another image of the split has it."""
    if (split, name) in taken:
        stem, extension = posixpath.splitext(name)
        name = f"{stem}-{sha256[:8]}{extension}"
    taken.add((split, name))
    return name


def data_yaml(classes: list[str], folders: dict[str, str] | None = None) -> bytes:
    """data.yaml text: split folders (relative to the file: no `path`, so Ultralytics
    resolves them against the folder the file is in) and the class names."""
    lines = [f"{split}: {folder}" for split, folder in (folders or {}).items()]
    names = "".join(f"\n  {class_id}: {json.dumps(name)}" for class_id, name in enumerate(classes))
    return "\n".join(lines + [f"nc: {len(classes)}", "names:" + (names or " {}")]).encode() + b"\n"


def yolo_data_yaml(export_plan: ExportPlan) -> bytes:
    """Every split with images; val falls back to train when the version has no val image."""
    folders = {split: f"images/{split}" for split in export_plan.splits}
    folders.setdefault("train", "images/train")
    folders.setdefault("val", folders["train"])
    return data_yaml(export_plan.classes, {split: folders[split] for split in SPLITS if split in folders})


def coco_images(export_plan: ExportPlan, split: str, first_image_id: int) -> list[coco.ExportedImage]:
    return [coco.ExportedImage(first_image_id + n, m.file_name, m.width, m.height, m.rows)
            for n, m in enumerate(m for m in export_plan.members if m.split == split)]


# ---- what goes where in the archive, per format -----------------------------------------

VOC_IMAGES, VOC_ANNOTATIONS, VOC_LABELMAP = "JPEGImages", "Annotations", "labelmap.txt"
_WHITESPACE = re.compile(r"\s+")


def placed(export_plan: ExportPlan, export_format: str) -> list[tuple[Member, str]]:
    """Each member with its image's name in the archive: images/<split>/<name> (YOLO, COCO), or
    JPEGImages/<flat name> (VOC: one folder for every split, an annotation found by the image's stem)."""
    if export_format != VOC:
        return [(member, member.image_name) for member in export_plan.members]
    taken: set[str] = set()
    return [(member, f"{VOC_IMAGES}/{_voc_name(member, taken)}") for member in export_plan.members]


def _voc_name(member: Member, taken: set[str]) -> str:
    """sub/a b.jpg -> sub_a_b.jpg: VOC ids hold no folders or spaces (the ImageSets lists are split on
    whitespace). A stem another image has (case aside: a.jpg and A.png) takes the content's first 8 hex
    digits, as the other formats' names do."""
    stem, extension = posixpath.splitext(_WHITESPACE.sub("_", member.file_name.replace("/", "_")))
    for candidate in (stem, f"{stem}-{member.sha256[:8]}", f"{stem}-{member.sha256}"):
        if candidate.casefold() not in taken:
            break
    else:
        candidate = next(f"{stem}-{n}" for n in range(2, len(taken) + 3) if f"{stem}-{n}".casefold() not in taken)
    taken.add(candidate.casefold())
    return candidate + extension


def member_annotations(member: Member, image_name: str, export_format: str,
                       classes: list[str]) -> list[tuple[str, bytes]]:
    """The files written beside one image: its YOLO label, or its VOC annotation (COCO: none, one JSON per split)."""
    if export_format == YOLO:
        return [(member.label_name, write_label(member.rows))]
    if export_format == VOC:
        objects = voc.objects_from_rows(member.rows, classes, member.width, member.height)
        return [(f"{VOC_ANNOTATIONS}/{_stem(image_name)}.xml",
                 voc.annotation_xml(posixpath.basename(image_name), member.width, member.height, objects))]
    return []


def voc_lists(export_plan: ExportPlan, placed_members: list[tuple[Member, str]]) -> list[tuple[str, bytes]]:
    """ImageSets/Main/<split>.txt (the stems of each split, as the devkit, CVAT and Datumaro read them) and
    labelmap.txt, the class list in id order."""
    stems: dict[str, list[str]] = {split: [] for split in export_plan.splits}
    for member, image_name in placed_members:
        stems[member.split].append(_stem(image_name))
    lists = [(f"ImageSets/Main/{split}.txt", "".join(f"{stem}\n" for stem in names).encode())
             for split, names in stems.items()]
    return lists + [(VOC_LABELMAP, voc_labelmap(export_plan.classes))]


def voc_labelmap(classes: list[str]) -> bytes:
    """Datumaro's and CVAT's label map, `name:color:parts:actions` a line, in class id order. Colours are
    left out (the readers make them up); a `:` or line break, which the line cannot hold, becomes `_`, and so
    does a leading `#` (a comment line)."""
    lines = [_LABELMAP_UNSAFE.sub("_", name) + ":::" for name in classes]
    return "\n".join(["# label:color_rgb:parts:actions", *lines]).encode() + b"\n"


_LABELMAP_UNSAFE = re.compile(r"[:\r\n]|^#")


def _stem(image_name: str) -> str:
    return posixpath.splitext(posixpath.basename(image_name))[0]
