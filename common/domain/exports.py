"""Exports: a version as a YOLO or COCO zip. Pure rules: the request, what goes
where in the archive, the data.yaml, and the export document.

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
import unicodedata
from dataclasses import dataclass

from common.domain import coco, versions
from common.domain.labels import Row
from common.domain.layout import SPLIT_ALIASES, SPLITS, relative_label_path
from common.domain.training_request import DEFAULT_VAL_FRACTION
from common.domain.training_set import split_of, splits_by_hash

YOLO, COCO = "yolo", "coco"
FORMATS = (YOLO, COCO)
QUEUED, RUNNING, COMPLETED, FAILED = "queued", "running", "completed", "failed"
STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED)
BACKGROUND_LEFT_OUT = "background image (left out by request)"


class InvalidExportRequest(ValueError):
    """An export request that can never succeed; the message says why."""


@dataclass(frozen=True)
class ExportRequest:
    format: str
    version: str | None  # None: freeze a new version first
    background: bool     # include background images (an empty label)


def request_of(body) -> ExportRequest:
    if not isinstance(body, dict):
        raise InvalidExportRequest("the body must be a JSON object {\"format\", \"version\"?, \"background\"?}")
    unknown = sorted(set(body) - {"format", "version", "background"})
    if unknown:
        raise InvalidExportRequest(f"unknown field(s) {', '.join(unknown)}: an export takes format, version "
                                   "and background")
    if body.get("format") not in FORMATS:
        raise InvalidExportRequest(f"format must be one of {', '.join(FORMATS)}")
    version = body.get("version")
    if version is not None and not versions.is_version_id(version):
        raise InvalidExportRequest("version must be a version id such as v1")
    background = body.get("background", True)
    if not isinstance(background, bool):
        raise InvalidExportRequest("background must be true or false")
    return ExportRequest(body["format"], version, background)


def new_document(export_id: str, dataset: str, request: ExportRequest, requested_by: str | None,
                 now: float) -> dict:
    return {"id": export_id, "dataset": dataset, "format": request.format, "version": request.version,
            "background": request.background, "status": QUEUED, "files_total": None, "files_done": 0,
            "bytes": 0, "uri": None, "excluded": None, "error": None, "requested_by": requested_by,
            "created_at": now, "started_at": None, "finished_at": None}


def view(document: dict) -> dict:
    keys = ("id", "dataset", "format", "version", "background", "status", "files_total", "files_done", "bytes",
            "uri", "excluded", "splits", "error", "requested_by", "created_at", "started_at", "finished_at")
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


def plan(frozen: dict, background: bool) -> ExportPlan:
    snapshot = versions.stored_snapshot(frozen)
    by_hash = splits_by_hash(snapshot)
    excluded, members, taken = dict(frozen["excluded"]), [], set()
    for image, record in zip(snapshot.images, frozen["images"]):
        if not background and not image.boxes:
            excluded[BACKGROUND_LEFT_OUT] = excluded.get(BACKGROUND_LEFT_OUT, 0) + 1
            continue
        split = split_of(image, DEFAULT_VAL_FRACTION, by_hash)
        name = _unique(split, safe_member_path(_name_in_split(record["name"])), image.sha256, taken)
        members.append(Member(split, name, image.path, image.generation, image.width, image.height, image.boxes))
    return ExportPlan(list(snapshot.classes or ()), members, excluded)


def _name_in_split(relative: str) -> str:
    """images/train/sub/a.jpg, train/images/sub/a.jpg, images/sub/a.jpg -> sub/a.jpg"""
    parts = relative.split("/")
    if "images" in parts[:-1]:
        parts = parts[len(parts) - 1 - parts[::-1].index("images") + 1:]
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
