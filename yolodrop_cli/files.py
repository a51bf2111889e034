"""What `yolodrop push` sends: the files of a folder, placed as its layout says
(common.domain.dataset_formats: Ultralytics, Roboflow, Label Studio, FiftyOne,
CVAT, Darknet, COCO, Pascal VOC; labels made from COCO JSON or VOC XML), or one
zip, each with its path in the dataset and its MD5. Pure: reads the local
disk, talks to nothing."""
from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from collections.abc import Callable

from common.domain import dataset_formats

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
        with self.open() as reader:
            while chunk := reader.read(CHUNK_BYTES):
                digest.update(chunk)
        return base64.b64encode(digest.digest()).decode()

    def open(self) -> BinaryIO:
        """Its bytes, from the start."""
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.source is None:
            raise ValueError(f"{self.path}: an item is a local file or bytes made here, and this is neither")
        return self.source.open("rb")


ARCHIVE = "zip archive (the import reads its layout)"
LAYOUTS_READ = ("Ultralytics, Roboflow, Label Studio, FiftyOne YOLOv5, CVAT YOLO 1.1 and Darknet YOLO folders",
                "COCO (COCO 2017, Roboflow, CVAT COCO 1.0, FiftyOne)", "Pascal VOC", "a .zip of any of these")


@dataclass
class Plan:
    items: list[Item]
    skipped: list[str]  # local files that are no image, label or data.yaml
    layout: str = ARCHIVE
    local_images: int = 0  # files with an image extension in the folder, pushed or not
    issues: list[dict] = field(default_factory=list)  # what reading the export's annotations found

    @property
    def images(self) -> int:
        return sum(1 for item in self.items if not item.archive and kind_of(item.path) == "image")


def plan(source: Path, dataset_yaml: Callable[[], bytes | None] = lambda: None) -> Plan:
    """What pushing `source` sends: a zip as it is, or a folder's files as its layout places them in a dataset
    (common.domain.dataset_formats, the import's own rules). `dataset_yaml`: the dataset's class names now, as
    data.yaml (COCO and VOC classes are matched onto them by name)."""
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise ValueError(f"{source} is neither a folder nor a zip file")
        return Plan([Item(source.name, source.stat().st_size, source=source, archive=True)], [], ARCHIVE)
    relatives = sorted(p.relative_to(source).as_posix() for p in source.rglob("*")
                       if p.is_file() and not is_junk(p.relative_to(source).as_posix()))
    found = dataset_formats.recognize(relatives, {r: (source / r).stat().st_size for r in relatives},
                                      lambda relative: (source / relative).open("rb"), source.name, dataset_yaml)
    items = [_local(source, path, target) for path, target in found.moves if kind_of(target)]
    items += [Item(target, len(data), data=data) for target, data in found.generated.items()]
    pushed = {item.source for item in items}
    skipped = [r for r in relatives if source / r not in pushed and r not in found.read]
    return Plan(items, skipped, found.layout, sum(1 for relative in relatives if dataset_formats.is_image(relative)),
                [issue.to_dict() for issue in found.issues])


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


def zip_image_count(path: Path) -> int:
    """How many images the import of an archive will index, by the import's own pure rules
    (common.domain: which members are unpacked, where its layout places them): a panoptic PNG mask under
    annotations/ is no image of the dataset."""
    from common.domain import archive as archive_rules, layout
    with zipfile.ZipFile(path) as archive:
        planned = archive_rules.plan_import(archive.infolist(), path.name)
        by_path = {planned.relative(info): info for info, _ in planned.members}
        found = dataset_formats.recognize(list(by_path), {p: info.file_size for p, info in by_path.items()},
                                          lambda p: archive.open(by_path[p]), path.name)
    return sum(1 for _, target in found.moves
               if layout.classify(layout.dataset_object("dataset", target)).kind == "image")
