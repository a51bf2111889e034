"""The bucket layout: what an object name means, and every name this system writes.

datasets/<dataset>/data.yaml                       the class names
datasets/<dataset>/images/[<split>/]<name>.<ext>   an image
datasets/<dataset>/labels/[<split>/]<name>.txt     its YOLO label
datasets/<dataset>/<split>/images/<name>.<ext>     the same, as labelling tools export it
datasets/<dataset>/obj_<split>_data/<name>.<ext>   an image and its .txt label side by side (CVAT YOLO 1.1),
datasets/<dataset>/[data/]obj/<name>.<ext>         or in Darknet's obj/ folder (no split)
datasets/<dataset>/{classes.txt,obj.names,dataset.yaml}  class names another tool wrote (no data.yaml yet)
imports/<dataset>.zip                              a zip to unpack into datasets/<dataset>/
derived/...                                        written by this system, never ingested
Anything else (folder placeholders) is ignored. Every path under datasets/,
imports/ and derived/ is built by a function of this module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


DATASETS_PREFIX = "datasets/"
IMPORTS_PREFIX = "imports/"
DERIVED_PREFIX = "derived/"
# Ultralytics' image extensions (ultralytics/data/utils.py IMG_FORMATS).
IMAGE_EXTENSIONS = frozenset({"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic",
                              "heif"})
SPLITS = ("train", "val", "test")
# Folder names that mean a split, as Ultralytics and labelling tools (Roboflow, CVAT) write them.
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
DATA_YAML_NAMES = ("data.yaml", "data.yml")
# Class-name files other tools write at a dataset's root (common.domain.class_files reads them): Label Studio's
# classes.txt, Darknet's and CVAT's obj.names (Darknet keeps it in data/), FiftyOne YOLOv5's dataset.yaml.
CLASS_NAME_FILES = ("classes.txt", "obj.names", "data/obj.names", "dataset.yaml")
_SIDE_BY_SIDE_FOLDER = re.compile(r"obj_(.+)_data")  # CVAT YOLO 1.1: obj_train_data, obj_valid_data, ...
MAX_DOC_ID_BYTES = 1500

_DATASET_NAME = re.compile(r"[A-Za-z0-9._-]+")
MAX_DATASET_NAME = 200
DATASET_NAME_RULE = (f"1 to {MAX_DATASET_NAME} letters, digits and . _ - (not . or .., and not starting "
                     "with __, which Firestore reserves)")
# Firestore reserves ids __…__; doc_id() escapes any leading __, so a name is refused with it
_RESERVED_ID = re.compile(r"__.*", re.S)


@dataclass(frozen=True)
class ObjectRole:
    kind: str  # "image" | "label" | "data_yaml" | "class_names" | "import" | "other" | "invalid_dataset" | "ignored"
    dataset: str | None
    key: str | None  # shared by an image and its label; None for data_yaml/import/other/ignored
    split: str | None  # "train" | "val" | "test" or None
    extension: str | None  # lower case, without the dot


IGNORED = ObjectRole("ignored", None, None, None, None)


@dataclass(frozen=True)
class DatasetObjectRole:
    """The role of an object of a dataset (in its folder, or its archive under imports/): its dataset named."""
    kind: str
    dataset: str
    key: str | None
    split: str | None
    extension: str | None


def in_dataset(role: ObjectRole) -> DatasetObjectRole | None:
    """The role with its dataset; None for an object of none (ignored, or a folder no dataset may be named)."""
    if role.dataset is None:
        return None
    return DatasetObjectRole(role.kind, role.dataset, role.key, role.split, role.extension)


def classify(object_name: str) -> ObjectRole:
    if object_name.endswith("/"):
        return IGNORED  # a folder placeholder
    if object_name.startswith(IMPORTS_PREFIX):
        return _classify_import(object_name[len(IMPORTS_PREFIX):])
    if object_name.startswith(DATASETS_PREFIX):
        return _classify_dataset_object(object_name)
    return IGNORED


def _classify_import(name: str) -> ObjectRole:
    if "/" in name or not name.lower().endswith(".zip"):
        return IGNORED
    dataset = name[:-len(".zip")]
    if not is_valid_dataset_name(dataset):
        return ObjectRole("invalid_dataset", None, None, None, "zip")
    return ObjectRole("import", dataset, None, None, "zip")


def is_valid_dataset_name(name: str) -> bool:
    """DATASET_NAME_RULE: a name that is a Firestore document id as it is (is_document_id)."""
    return bool(_DATASET_NAME.fullmatch(name)) and len(name) <= MAX_DATASET_NAME and name not in (".", "..") \
        and not _RESERVED_ID.fullmatch(name)


def _classify_dataset_object(object_name: str) -> ObjectRole:
    dataset, _, relative = object_name[len(DATASETS_PREFIX):].partition("/")
    if not relative:
        return IGNORED  # not inside a dataset folder
    extension = _extension(relative)
    if not is_valid_dataset_name(dataset):
        return ObjectRole("invalid_dataset", None, None, None, extension)
    if relative in DATA_YAML_NAMES:
        return ObjectRole("data_yaml", dataset, None, None, extension)
    if relative in CLASS_NAME_FILES:
        return ObjectRole("class_names", dataset, None, None, extension)
    folders = relative.split("/")[:-1]
    if "images" in folders and extension in IMAGE_EXTENSIONS:
        key = relative_label_path(relative)[:-len(".txt")]
        return ObjectRole("image", dataset, key, _split_after(folders, "images"), extension)
    if "labels" in folders and relative.endswith(".txt"):
        return ObjectRole("label", dataset, relative[:-len(".txt")], _split_after(folders, "labels"), extension)
    side_by_side, split = _side_by_side(folders)
    if side_by_side is not None and (extension in IMAGE_EXTENSIONS or relative.endswith(".txt")):
        # No images/ in the path: Ultralytics' rule puts the label beside the image, so both have this key.
        kind = "label" if relative.endswith(".txt") else "image"
        return ObjectRole(kind, dataset, relative_label_path(relative)[:-len(".txt")], split, extension)
    return ObjectRole("other", dataset, None, None, extension)


def _side_by_side(folders: list[str]) -> tuple[int | None, str | None]:
    """Where in the path the folder is in which images and their .txt labels lie side by side, and its split:
    CVAT YOLO 1.1's obj_<split>_data/ (anywhere, as a wrapping export folder may hold it), or Darknet's obj/
    or data/obj/ at the root (no split). (None, None) for any other path."""
    for position, folder in enumerate(folders):
        found = _SIDE_BY_SIDE_FOLDER.fullmatch(folder)
        if found:
            return position, split_of(found[1])
    if folders[:1] == ["obj"]:
        return 0, None
    return (1, None) if folders[:2] == ["data", "obj"] else (None, None)


def in_side_by_side_folder(relative: str) -> str | None:
    """The path inside its side-by-side folder (obj_train_data/sub/a.jpg -> sub/a.jpg, data/obj/a.jpg -> a.jpg),
    or None when the dataset-relative path is in none."""
    parts = relative.split("/")
    position, _ = _side_by_side(parts[:-1])
    return None if position is None else "/".join(parts[position + 1:])


def _extension(relative: str) -> str | None:
    file_name = relative.rsplit("/", 1)[-1]
    if "." not in file_name.lstrip("."):
        return None
    return file_name.rsplit(".", 1)[1].lower()


def _split_after(folders: list[str], marker: str) -> str | None:
    """The split named by the folder right after the last `marker` folder
    (images/train/...), or else right before it (train/images/..., valid/images/...)."""
    position = len(folders) - 1 - folders[::-1].index(marker)
    for neighbour in folders[position + 1:position + 2] + folders[max(position - 1, 0):position]:
        if neighbour.lower() in SPLIT_ALIASES:
            return SPLIT_ALIASES[neighbour.lower()]
    return None


def split_of(folder: str) -> str | None:
    """The split a folder name means (valid -> val), or None."""
    return SPLIT_ALIASES.get(folder.lower())


def label_path_for(image_path: str) -> str:
    """Ultralytics img2label_paths: the last /images/ becomes /labels/, the extension becomes .txt; without
    /images/ the label lies beside the image (CVAT YOLO 1.1, Darknet). Inside datasets/<dataset>/ the rule
    reads the path in the dataset only (a dataset named `images` is no images/ folder)."""
    dataset, relative = _in_dataset(image_path)
    if relative:
        return dataset_object(dataset, relative_label_path(relative))
    head, marker, tail = image_path.rpartition("/images/")
    path = f"{head}/labels/{tail}" if marker else image_path
    folder, _, file_name = path.rpartition("/")
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    return f"{folder}/{stem}.txt" if folder else f"{stem}.txt"


def _in_dataset(object_name: str) -> tuple[str, str]:
    """(dataset, path in it) of an object under datasets/; ("", "") otherwise."""
    if not object_name.startswith(DATASETS_PREFIX):
        return "", ""
    dataset, _, relative = object_name[len(DATASETS_PREFIX):].partition("/")
    return (dataset, relative) if dataset and relative else ("", "")


def is_document_id(name: str) -> bool:
    """Whether `name` can name a document as it is (no '/', not '.', '..' or '__...')."""
    try:
        return doc_id(name) == name
    except ValueError:
        return False


def doc_id(key: str) -> str:
    """A Firestore-safe, reversible document id for a key: no '/', not '.', '..' or '__...'."""
    encoded = key.replace("%", "%25").replace("/", "%2F")
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    elif encoded.startswith("__"):
        encoded = "%5F" + encoded[1:]
    if not encoded or len(encoded.encode("utf-8")) > MAX_DOC_ID_BYTES:
        raise ValueError(f"key {key[:80]!r} cannot be a document id: its encoded form is "
                         f"{len(encoded.encode('utf-8'))} bytes (must be 1..{MAX_DOC_ID_BYTES})")
    return encoded


# ---- names this system writes -------------------------------------------------

def dataset_prefix(dataset: str) -> str:
    return f"{DATASETS_PREFIX}{dataset}/"


def dataset_object(dataset: str, relative: str) -> str:
    """datasets/<dataset>/<relative>, e.g. relative images/train/a.jpg."""
    return dataset_prefix(dataset) + relative


def dataset_relative(object_name: str, dataset: str) -> str:
    return object_name.removeprefix(dataset_prefix(dataset))


def import_archive(dataset: str) -> str:
    return f"{IMPORTS_PREFIX}{dataset}.zip"


def import_staging(import_id: str, archive: str) -> str:
    """Where an import copies an archive that cannot be read by ranges where it is (derived/ triggers nothing)."""
    return f"{DERIVED_PREFIX}imports/{import_id}/source.{archive}"


def thumbnails_prefix(dataset: str) -> str:
    return f"{DERIVED_PREFIX}thumbnails/{dataset}/"


def thumbnail_path(dataset: str, sha256: str) -> str:
    return f"{thumbnails_prefix(dataset)}{sha256}.jpg"


def training_prefix(job_id: str) -> str:
    """Where everything of one training job lives (derived/ triggers nothing)."""
    return f"{DERIVED_PREFIX}training/{job_id}"


def training_manifest(job_id: str) -> str:
    return f"{training_prefix(job_id)}/manifest.json"


def training_cancel_marker(job_id: str) -> str:
    """Written by the API, looked for by the trainer between epochs."""
    return f"{training_prefix(job_id)}/cancel"


def training_runs(job_id: str) -> str:
    """The folder of run markers: one object per trainer run, named by its number."""
    return f"{training_prefix(job_id)}/runs/"


def training_checkpoint(job_id: str, file_name: str) -> str:
    return f"{training_prefix(job_id)}/checkpoint/{file_name}"


def training_weights(job_id: str, file_name: str) -> str:
    return f"{training_prefix(job_id)}/weights/{file_name}"


UPLOADABLE = ("image", "label", "data_yaml")


def upload_object(dataset: str, relative: str) -> str:
    """The object a person may upload `relative` to inside `dataset`, or a
    ValueError saying why not: only images, labels and data.yaml, and never a
    path that leaves the dataset's folder."""
    parts = relative.split("/")
    if not relative or relative.startswith("/") or "\\" in relative or any(p in ("", ".", "..") for p in parts):
        raise ValueError("the path must stay inside the dataset: relative, no '..', '.', '//' or '\\'")
    name = dataset_object(dataset, relative)
    if len(name.encode()) > 1024:
        raise ValueError("the path is too long (object names are at most 1024 bytes)")
    if classify(name).kind not in UPLOADABLE:
        raise ValueError("only images under images/, .txt labels under labels/, both side by side in "
                         "obj_<split>_data/ or obj/, and data.yaml at the root are uploaded (image extensions: "
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
    return name


def base_model(weights_name: str) -> str:
    """The base-model cache: Ultralytics' pretrained weights by their official name (yolo11n.pt).
    The trainer reads them here, and downloads them here where the internet is reachable."""
    return f"{DERIVED_PREFIX}base-models/{weights_name}"


def content_object(sha256: str) -> str:
    """The content store: one immutable copy of every image a version references, named by its sha256."""
    return f"{DERIVED_PREFIX}content/{sha256[:2]}/{sha256}"


def version_snapshot(dataset: str, version: str) -> str:
    """The frozen image list of a version (its Firestore document holds the summary)."""
    return f"{DERIVED_PREFIX}versions/{dataset}/{version}/snapshot.json"


def export_archive(export_id: str, dataset: str, version: str, export_format: str) -> str:
    return f"{DERIVED_PREFIX}exports/{export_id}/{dataset}-{version}-{export_format}.zip"


def export_parts(export_id: str) -> str:
    """Where an export's parts wait until the archive is composed from them (then they are removed)."""
    return f"{DERIVED_PREFIX}exports/{export_id}/parts/"


def relative_label_path(image_relative: str) -> str:
    """label_path_for a path relative to a dataset or an archive root (images/val/a.jpg -> labels/val/a.txt)."""
    return label_path_for("/" + image_relative)[1:]
