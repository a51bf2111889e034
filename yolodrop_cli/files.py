"""What `yolodrop push` sends: the files of a folder (Ultralytics layout,
Roboflow-style `<split>/images/…`, or CVAT's YOLO 1.1 export with `obj.names`
and `obj_<split>_data/`) or one zip, each with its path in the dataset and its
MD5. Pure: reads the local disk, talks to nothing."""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# The API's image extensions (common.domain.layout.IMAGE_EXTENSIONS; a unit test keeps them equal).
IMAGE_EXTENSIONS = frozenset({"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic", "heif"})
DATA_YAML_NAMES = ("data.yaml", "data.yml")
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Item:
    """One file to push: where it goes in the dataset and where its bytes are."""
    path: str                   # in the dataset (images/train/a.jpg), or the zip's name for an archive
    size: int
    source: Path | None = None  # a local file, or
    data: bytes | None = None   # bytes made here (data.yaml from CVAT's obj.names)
    archive: bool = False

    @property
    def is_data_yaml(self) -> bool:
        return self.path in DATA_YAML_NAMES

    def md5(self) -> str:
        """Base64 MD5, as Cloud Storage's md5Hash."""
        digest = hashlib.md5(usedforsecurity=False)
        if self.data is not None:
            digest.update(self.data)
        else:
            with self.source.open("rb") as reader:
                while chunk := reader.read(CHUNK_BYTES):
                    digest.update(chunk)
        return base64.b64encode(digest.digest()).decode()


ULTRALYTICS = "Ultralytics (images/, labels/, data.yaml)"
ROBOFLOW = "Roboflow YOLO (<split>/images/, <split>/labels/, data.yaml)"
CVAT = "CVAT YOLO 1.1 (obj.names, obj_<split>_data/)"
ARCHIVE = "zip archive (the import reads its layout)"
LAYOUTS_READ = (ULTRALYTICS, ROBOFLOW, CVAT, "a .zip of one of these or of a COCO export")


@dataclass
class Plan:
    items: list[Item]
    skipped: list[str]  # local files that are no image, label or data.yaml
    layout: str = ULTRALYTICS
    local_images: int = 0  # files with an image extension in the folder, pushed or not

    @property
    def images(self) -> int:
        return sum(1 for item in self.items if not item.archive and kind_of(item.path) == "image")


def plan(source: Path) -> Plan:
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise ValueError(f"{source} is neither a folder nor a zip file")
        return Plan([Item(source.name, source.stat().st_size, source=source, archive=True)], [], ARCHIVE)
    relatives = sorted(p.relative_to(source).as_posix() for p in source.rglob("*")
                       if p.is_file() and not is_junk(p.relative_to(source).as_posix()))
    found = _cvat_plan(source, relatives) if _is_cvat(relatives) else _yolo_plan(source, relatives)
    found.local_images = sum(1 for relative in relatives if _has_image_extension(relative))
    return found


def _is_cvat(relatives: list[str]) -> bool:
    """CVAT's YOLO 1.1 export: obj.names and images in obj_<split>_data/ (an obj.names beside images/ and
    labels/, as several exporters add, is no CVAT export)."""
    return "obj.names" in relatives and any(cvat_target(r) and _has_image_extension(r) for r in relatives)


def _yolo_plan(root: Path, relatives: list[str]) -> Plan:
    """Ultralytics or Roboflow: files pushed as they are; Darknet's obj.names gives the names when there
    is no data.yaml."""
    items, skipped = [], []
    for relative in relatives:
        (items.append(_local(root, relative, relative)) if kind_of(relative) else skipped.append(relative))
    if "obj.names" in relatives:
        skipped.remove("obj.names")
        if not any(item.is_data_yaml for item in items):
            items.append(_names_data_yaml(root))
    roboflow = any(PurePosixPath(item.path).parts[0].lower() in SPLIT_ALIASES for item in items)
    return Plan(items, skipped, ROBOFLOW if roboflow else ULTRALYTICS)


def _has_image_extension(relative: str) -> bool:
    return PurePosixPath(relative).suffix.lower().lstrip(".") in IMAGE_EXTENSIONS


def kind_of(relative: str) -> str | None:
    """'image', 'label' or 'data_yaml' as the API's layout reads a path in a dataset, else None."""
    parts = PurePosixPath(relative).parts
    suffix = PurePosixPath(relative).suffix.lower().lstrip(".")
    if len(parts) == 1:
        return "data_yaml" if relative in DATA_YAML_NAMES else None
    if suffix in IMAGE_EXTENSIONS and "images" in parts[:-1]:
        return "image"
    if suffix == "txt" and "labels" in parts[:-1]:
        return "label"
    return None


def is_junk(relative: str) -> bool:
    return any(part in JUNK or part.startswith(".") for part in PurePosixPath(relative).parts)


def _local(root: Path, relative: str, target: str) -> Item:
    path = root / relative
    return Item(target, path.stat().st_size, source=path)


def _cvat_plan(root: Path, relatives: list[str]) -> Plan:
    """CVAT's YOLO 1.1 export: images and .txt labels side by side in obj_<split>_data/, names in obj.names."""
    items, skipped = [_names_data_yaml(root)], []
    for relative in relatives:
        target = cvat_target(relative)
        (items.append(_local(root, relative, target)) if target else skipped.append(relative))
    return Plan(items, [s for s in skipped if s != "obj.names"], CVAT)


def _names_data_yaml(root: Path) -> Item:
    """data.yaml made from Darknet's obj.names (one class name a line)."""
    names = [line.strip() for line in (root / "obj.names").read_text().splitlines() if line.strip()]
    data_yaml = ("names: " + json.dumps(names) + "\n").encode()  # JSON is YAML
    return Item("data.yaml", len(data_yaml), data=data_yaml)


def cvat_target(relative: str) -> str | None:
    """obj_train_data/a/b.jpg -> images/train/a/b.jpg; its b.txt -> labels/train/a/b.txt."""
    first, _, rest = relative.partition("/")
    if not (rest and first.startswith("obj_") and first.endswith("_data")):
        return None
    split = SPLIT_ALIASES.get(first[len("obj_"):-len("_data")].lower())
    suffix = PurePosixPath(rest).suffix.lower().lstrip(".")
    folder = "images" if suffix in IMAGE_EXTENSIONS else "labels" if suffix == "txt" else None
    if folder is None:
        return None
    return "/".join(p for p in (folder, split, rest) if p)


def zip_image_count(path: Path) -> int:
    """How many images the import of an archive will index, by the import's own pure rules
    (common.domain: which members are unpacked, where a COCO export's annotations place its images):
    a panoptic PNG mask under annotations/ is no image of the dataset."""
    from common.domain import archive as archive_rules, coco, coco_import, layout
    with zipfile.ZipFile(path) as archive:
        planned = archive_rules.plan_import(archive.infolist(), path.name)
        targets = [target for _, target in planned.members]
        annotations = {target: functools.partial(archive.open, info)
                       for info, target in planned.members if coco.is_annotation_file(target)}
        placed = coco_import.plan(annotations, targets, path.name).images if annotations else {}
    return sum(1 for target in targets if not coco.is_annotation_file(target)
               and layout.classify(layout.dataset_object("dataset", placed.get(target, target))).kind == "image")

