"""The layouts other tools export, recognised from the files that are there, and what each becomes in a
dataset. Pure: push (a local folder) and import (an archive) both call recognize().

Input: the export's files as paths relative to its root (an enclosing folder already removed), their sizes,
and a way to open one. Output: which file goes where in the dataset (images under images/[<split>/], YOLO
labels beside them under labels/), the files made from the export's own annotations (YOLO labels from COCO
JSON or Pascal VOC XML, data.yaml from whatever names the classes), the issues, and the layout's name, which
every summary states. The layouts, tried in this order:

  COCO         instances_<split>.json (COCO 2017, CVAT COCO 1.0's instances_default.json),
               Roboflow's <split>/_annotations.coco.json, FiftyOne's labels.json beside data/
  Pascal VOC   Annotations/*.xml, JPEGImages/, ImageSets/Main/<split>.txt, labelmap.txt (CVAT)
  Darknet      obj.names / obj.data, images and their .txt side by side (CVAT YOLO 1.1's obj_<split>_data/,
               Darknet's obj/), train.txt / valid.txt lists
  YOLO         images/ and labels/ (or Roboflow's <split>/images/), named by data.yaml (names as a list or a
               mapping; path:, and train/val/test as folders, .txt lists of images or lists of folders),
               FiftyOne's dataset.yaml, Label Studio's classes.txt, or obj.names
"""
from __future__ import annotations

import functools
import io
import posixpath
from dataclasses import dataclass, field
from typing import IO, Any, cast
from collections.abc import Callable

from common.domain import class_files, class_lists, coco, coco_import, layout, split_lists, voc
from common.domain.archive import target_of
from common.domain.class_changes import with_names
from common.domain.datayaml import MAX_DATA_YAML_BYTES, parse_data_yaml, readable_mapping
from common.domain.exports import data_yaml
from common.domain.issues import Issue
from common.domain.labels import write_label
from common.domain.layout import DATA_YAML_NAMES, IMAGE_EXTENSIONS, SPLIT_ALIASES, SPLITS, relative_label_path

Opener = Callable[[str], IO[bytes]]  # a file, a zip member (zipfile's IO[bytes]), an object

ULTRALYTICS = "Ultralytics YOLO"
ROBOFLOW_YOLO = "Roboflow YOLO"
LABEL_STUDIO = "Label Studio YOLO"
FIFTYONE_YOLO = "FiftyOne YOLOv5"
DARKNET = "Darknet YOLO"
CVAT_YOLO = "CVAT YOLO 1.1"
COCO = "COCO"
ROBOFLOW_COCO = "Roboflow COCO"
CVAT_COCO = "CVAT COCO 1.0"
FIFTYONE_COCO = "FiftyOne COCO"
PASCAL_VOC = "Pascal VOC"
COCO_LAYOUTS = (COCO, ROBOFLOW_COCO, CVAT_COCO, FIFTYONE_COCO)
FIFTYONE_YAML = "dataset.yaml"
LABEL_STUDIO_CLASSES = "classes.txt"
DARKNET_NAMES, DARKNET_DATA = "obj.names", "obj.data"
FIFTYONE_LABELS = "labels.json"
MAX_TEXT_BYTES = 16 * 1024 * 1024  # a class list or an image list (.txt) read whole: 100,000 paths fit
# Files a tool writes beside its dataset that say nothing the index keeps (Label Studio's notes.json) or that
# were read for the classes: not unpacked, and not reported as skipped.
NAME_FILES = (LABEL_STUDIO_CLASSES, DARKNET_NAMES, DARKNET_DATA, FIFTYONE_YAML)  # read for the classes
CLASS_FILES = (*NAME_FILES, "notes.json")


@dataclass
class Recognized:
    layout: str
    moves: list[tuple[str, str]] = field(default_factory=list)  # (path in the export, dataset-relative target)
    generated: dict[str, bytes] = field(default_factory=dict)   # dataset-relative target -> bytes made here
    issues: list[Issue] = field(default_factory=list)
    read: set[str] = field(default_factory=set)  # files read for what they say (annotations, class lists, lists)


@dataclass
class _Export:
    """What recognize() reads from: the paths, their sizes, and an opener."""
    paths: list[str]
    sizes: dict[str, int]
    open_file: Opener
    source: str
    issues: list[Issue] = field(default_factory=list)
    read: set[str] = field(default_factory=set)

    def open(self, path: str) -> IO[bytes]:
        self.read.add(path)
        return self.open_file(path)

    @functools.cached_property
    def present(self) -> set[str]:
        return set(self.paths)

    @functools.cached_property
    def folders(self) -> set[str]:
        folders: set[str] = set()
        for path in self.paths:
            parts = path.split("/")[:-1]
            folders.update("/".join(parts[:end]) for end in range(1, len(parts) + 1))
        return folders

    @functools.cached_property
    def everything(self) -> set[str]:
        return self.present | self.folders

    @functools.cached_property
    def images(self) -> set[str]:
        return {path for path in self.paths if is_image(path)}

    def read_text(self, path: str, limit: int = MAX_TEXT_BYTES) -> str | None:
        """A small text file's content; None (and an issue) when it is too large or not UTF-8."""
        size = self.sizes.get(path, 0)
        if size > limit:
            self.issues.append(Issue("import_text_too_large", f"{path} is {size} bytes; at most {limit} are "
                                     "read: it was left out", self.source))
            return None
        with self.open(path) as reader:
            data = reader.read(limit + 1)[:limit]
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.issues.append(Issue("import_text_not_utf8", f"{path} is not UTF-8 text: it was left out",
                                     self.source))
            return None

    def read_bytes(self, path: str, limit: int) -> bytes | None:
        if self.sizes.get(path, 0) > limit:
            return None
        with self.open(path) as reader:
            return reader.read(limit + 1)[:limit]

    def resolve(self, reference: str, among: set[str] | None = None) -> str | None:
        """The path (or folder) of the export a tool's reference names: as written, or its longest tail that is
        there (a data.yaml's ../train/images, an absolute /home/me/data/images/train, Darknet's data/obj/a.jpg)."""
        candidates = among if among is not None else self.everything
        return next((tail for tail in split_lists.tails(reference) if tail in candidates), None)


def recognize(paths: list[str], sizes: dict[str, int], open_file: Opener, source: str,
              dataset_yaml: Callable[[], bytes | None] = lambda: None,
              annotation_budget: int = 1 << 30) -> Recognized:
    """What an export becomes in a dataset. `dataset_yaml`: reads the dataset's data.yaml now, if it has one (COCO
    and VOC classes are matched by name onto it); `annotation_budget`: the bytes of COCO JSON that may be parsed."""
    export = _Export(paths, sizes, open_file, source)
    annotation_files = [path for path in paths if _is_coco_file(path, export)]
    if annotation_files:
        found = _coco(export, annotation_files, dataset_yaml(), annotation_budget)
    elif any(_is_voc_annotation(path) for path in paths):
        found = _voc(export, dataset_yaml())
    elif _is_darknet(export):
        found = _darknet(export)
    else:
        found = _yolo(export)
    found.issues[:0] = export.issues
    found.read = export.read | {path for path in CLASS_FILES if path in export.present}
    return found


def is_image(path: str) -> bool:
    return posixpath.splitext(path)[1].lower().lstrip(".") in IMAGE_EXTENSIONS


def _classes_yaml(classes: list[str], dataset_yaml: bytes | None) -> dict[str, bytes]:
    """{"data.yaml": the file naming `classes`}, or nothing when the dataset's data.yaml names them already (a
    second push or import of the same export changes nothing)."""
    if dataset_yaml and _existing_names(dataset_yaml) == classes:
        return {}
    return {"data.yaml": with_names(dataset_yaml, classes) if dataset_yaml else data_yaml(classes)}


def _existing_names(dataset_yaml: bytes | None) -> list[str] | None:
    return parse_data_yaml(dataset_yaml, "data.yaml").names if dataset_yaml else None


# ---- COCO ---------------------------------------------------------------------------------

def _is_coco_file(path: str, export: _Export) -> bool:
    fiftyone = path == FIFTYONE_LABELS and "data" in export.folders
    return coco.is_annotation_file(path) or fiftyone


def _coco(export: _Export, annotation_files: list[str], dataset_yaml: bytes | None, budget: int) -> Recognized:
    coco.check_sizes({path: export.sizes.get(path, 0) for path in annotation_files}, budget)
    imported = coco_import.plan({path: functools.partial(export.open, path) for path in annotation_files},
                                export.paths, export.source, _existing_names(dataset_yaml))
    moves = [(path, imported.images.get(path) or target_of(path)) for path in export.paths
             if path not in annotation_files]
    generated = {**imported.labels, **_classes_yaml(imported.classes, dataset_yaml)}
    return Recognized(_coco_name(annotation_files), moves, generated, imported.issues)


def _coco_name(annotation_files: list[str]) -> str:
    names = {posixpath.basename(path) for path in annotation_files}
    if "_annotations.coco.json" in names:
        return ROBOFLOW_COCO
    if FIFTYONE_LABELS in names:
        return FIFTYONE_COCO
    return CVAT_COCO if "instances_default.json" in names else COCO


# ---- Pascal VOC ---------------------------------------------------------------------------

def _voc(export: _Export, dataset_yaml: bytes | None) -> Recognized:
    found = Recognized(PASCAL_VOC)
    splits = _voc_splits(export)
    images = export.images
    annotations: list[tuple[str, voc.VocAnnotation]] = []
    for path in sorted(p for p in export.paths if _is_voc_annotation(p)):
        annotation = _voc_annotation(export, path, found.issues)
        if annotation is not None:
            annotations.append((path, annotation))
    incoming = list(dict.fromkeys(_labelmap(export) + [o.name for _, a in annotations for o in a.objects]))
    existing = _existing_names(dataset_yaml) or []
    classes, class_ids, issue = class_lists.onto_existing(incoming, existing, export.source, "import_voc_classes")
    found.issues.extend([issue] if issue else [])
    ids = dict(zip(incoming, class_ids))
    placed: set[str] = set()
    for path, annotation in annotations:
        image = _voc_image(export, path, annotation, images)
        if image is None:
            found.issues.append(Issue("import_voc_image_missing", f"{path} describes {annotation.filename}, which "
                                      "is not in the export: its boxes were left out", export.source))
            continue
        stem = posixpath.splitext(posixpath.basename(image))[0]
        target = posixpath.join("images", *([splits[stem]] if stem in splits else []), posixpath.basename(image))
        found.moves.append((image, target))
        placed.add(image)
        try:
            found.generated[relative_label_path(target)] = write_label(voc.to_yolo_rows(annotation, ids))
        except voc.VocRefused as refused:
            found.issues.append(Issue("import_voc_xml", f"{path}: {refused}; its image is imported without boxes",
                                      export.source))
    found.moves += [(path, posixpath.join("images", posixpath.basename(path))) for path in sorted(images - placed)]
    found.generated.update(_classes_yaml(classes, dataset_yaml))
    return found


def _is_voc_annotation(path: str) -> bool:
    return path.lower().endswith(".xml") and "Annotations" in path.split("/")[:-1]


def _voc_annotation(export: _Export, path: str, issues: list[Issue]) -> voc.VocAnnotation | None:
    data = export.read_bytes(path, voc.MAX_XML_BYTES)
    try:
        if data is None:
            raise voc.VocRefused(f"the file is over {voc.MAX_XML_BYTES} bytes")
        return voc.parse_annotation(data)
    except voc.VocRefused as refused:
        issues.append(Issue("import_voc_xml", f"{path}: {refused}; its image is imported without boxes",
                            export.source))
        return None


def _voc_splits(export: _Export) -> dict[str, str]:
    """{image stem: split} from ImageSets/Main/<split>.txt (train, val, test; trainval when no train)."""
    splits: dict[str, str] = {}
    for name in ("train", "val", "test", "trainval"):
        path = export.resolve(f"ImageSets/Main/{name}.txt", export.present)
        text = export.read_text(path) if path else None
        for line in (text or "").splitlines():
            stem = line.split()[0] if line.split() else ""
            if stem:
                splits.setdefault(stem, "train" if name == "trainval" else name)
    return splits


def _labelmap(export: _Export) -> list[str]:
    """The class order an export states: CVAT's labelmap.txt (name:color:parts:actions), else none."""
    path = export.resolve("labelmap.txt", export.present)
    text = export.read_text(path, MAX_DATA_YAML_BYTES) if path else None
    names = [line.split(":", 1)[0].strip() for line in (text or "").splitlines() if not line.startswith("#")]
    return [name for name in names if name and name != "background"]


def _voc_image(export: _Export, xml_path: str, annotation: voc.VocAnnotation, images: set[str]) -> str | None:
    """The image an annotation describes: its filename in JPEGImages/ (beside Annotations/), or anywhere when
    unique, or the image of JPEGImages/ with the annotation's stem."""
    root = posixpath.dirname(posixpath.dirname(xml_path))
    stem = posixpath.splitext(posixpath.basename(xml_path))[0]
    for candidate in (posixpath.join(root, "JPEGImages", annotation.filename), annotation.filename):
        if candidate.lstrip("/") in images:
            return candidate.lstrip("/")
    by_name = [image for image in images if posixpath.basename(image) == posixpath.basename(annotation.filename)]
    if len(by_name) == 1:
        return by_name[0]
    by_stem = [image for image in images if posixpath.splitext(posixpath.basename(image))[0] == stem]
    return by_stem[0] if len(by_stem) == 1 else None


# ---- Darknet and CVAT YOLO 1.1 --------------------------------------------------------------

def _is_darknet(export: _Export) -> bool:
    """A names file of Darknet's, and images side by side with their labels (not under an images/ folder)."""
    names = any(posixpath.basename(path) in (DARKNET_NAMES, DARKNET_DATA) for path in export.paths)
    return names and any(side_by_side_target(path) for path in export.paths if is_image(path))


def side_by_side_target(path: str, split: str | None = None) -> str | None:
    """Where an image or label of a side-by-side folder (the drop's own rule: common.domain.layout) goes:
    obj_train_data/a/b.jpg (CVAT) -> images/train/a/b.jpg, obj/b.txt or data/obj/b.txt (Darknet) -> labels/b.txt
    (labels/<split>/b.txt when a list gives `split`). None for any other path."""
    inner = layout.in_side_by_side_folder(path)
    role = layout.classify(layout.dataset_object("export", path))
    if inner is None or role.kind not in ("image", "label"):
        return None
    split = role.split or split
    return "/".join([f"{role.kind}s", *([split] if split else []), inner])


def _cvat_split_folder(folder: str) -> bool:
    return folder.startswith("obj_") and folder.endswith("_data")


def _darknet(export: _Export) -> Recognized:
    settings = _obj_data(export)
    listed = _listed_splits(export, settings)
    cvat = any(_cvat_split_folder(part) for path in export.paths for part in path.split("/")[:-1])
    found = Recognized(CVAT_YOLO if cvat else DARKNET)
    for image in sorted(export.images):
        target = side_by_side_target(image, listed.get(image))
        if target:
            found.moves.append((image, target))
            label = relative_label_path(image)
            if label in export.present:
                found.moves.append((label, relative_label_path(target)))
    names_path = export.resolve(settings.get("names", DARKNET_NAMES), export.present) or \
        export.resolve(DARKNET_NAMES, export.present)
    data_yaml_path = next((name for name in DATA_YAML_NAMES if name in export.present), None)
    if data_yaml_path:
        found.moves.append((data_yaml_path, "data.yaml"))
    elif names_path and (names := _name_lines(export, names_path)) is not None:
        found.generated["data.yaml"] = data_yaml(names)
    return found


def _obj_data(export: _Export) -> dict[str, str]:
    """Darknet's obj.data: `key = value` lines (classes, train, valid, names, backup)."""
    path = export.resolve(DARKNET_DATA, export.present)
    text = export.read_text(path, MAX_DATA_YAML_BYTES) if path else None
    return split_lists.obj_data_settings(text or "")


def _listed_splits(export: _Export, settings: dict[str, str]) -> dict[str, str]:
    """{image path: split} from Darknet's image lists (obj.data's train/valid, or train.txt, valid.txt, test.txt)."""
    splits: dict[str, str] = {}
    for split, reference in split_lists.darknet_lists(settings):
        path = export.resolve(reference, export.present)
        for image in _image_list(export, path) if path else ():
            splits.setdefault(image, split)
    return splits


def _image_list(export: _Export, path: str) -> list[str]:
    """The images a .txt list names (one path a line, relative to anywhere), as paths of the export."""
    lines = split_lists.list_lines(export.read_text(path) or "")
    resolved = (export.resolve(line, export.images) for line in lines)
    return [image for image in resolved if image]


def _name_lines(export: _Export, path: str) -> list[str] | None:
    """One class name a line (Darknet's obj.names, Label Studio's classes.txt), read as a drop reads them
    (common.domain.class_files: the line number is the class id, so a blank line among them refuses the file)."""
    data = export.read_bytes(path, class_files.MAX_CLASS_FILE_BYTES)
    if data is None:
        export.issues.append(cast(Issue, class_files.size_issue(export.sizes[path], path)))  # None: over the limit
        return None
    found = class_files.read(posixpath.basename(path), data, path)
    export.issues.extend(found.issues)
    return found.names


# ---- the YOLO family ----------------------------------------------------------------------

def _yolo(export: _Export) -> Recognized:
    yaml_path = next((name for name in (*DATA_YAML_NAMES, FIFTYONE_YAML) if name in export.present), None)
    document = _yaml_document(export, yaml_path)
    placed = _yaml_splits(export, document) if document else {}
    names_from = yaml_path or next((name for name in (LABEL_STUDIO_CLASSES, DARKNET_NAMES) if name in export.present),
                                   None)
    found = Recognized(_yolo_name(export, yaml_path))
    found.moves = [(path, placed.get(path) or target_of(path)) for path in export.paths
                   if path not in (names_from, *CLASS_FILES) and path not in export.read]  # image lists read
    relocated = any(target != target_of(path) for path, target in placed.items())
    if names_from and not (names_from in DATA_YAML_NAMES and not relocated):
        names = _names(export, names_from)
        if names is not None:
            found.generated["data.yaml"] = data_yaml(names, _split_folders(found.moves))
        elif names_from in DATA_YAML_NAMES:
            found.moves.append((names_from, "data.yaml"))  # its own event records why it names no class
    elif names_from:
        found.moves.append((names_from, "data.yaml"))
    return found


def _split_folders(moves: list[tuple[str, str]]) -> dict[str, str]:
    return {split: f"images/{split}" for split in SPLITS if any(t.startswith(f"images/{split}/") for _, t in moves)}


def _yolo_name(export: _Export, yaml_path: str | None) -> str:
    if LABEL_STUDIO_CLASSES in export.present and yaml_path is None:
        return LABEL_STUDIO
    if yaml_path == FIFTYONE_YAML:
        return FIFTYONE_YOLO
    split_first = any(path.split("/", 1)[0].lower() in SPLIT_ALIASES and path.split("/")[1:2] == ["images"]
                      for path in export.paths)
    return ROBOFLOW_YOLO if split_first else ULTRALYTICS


def _names(export: _Export, path: str) -> list[str] | None:
    if posixpath.splitext(path)[1] in (".yaml", ".yml"):
        parsed = parse_data_yaml(export.read_bytes(path, MAX_DATA_YAML_BYTES) or b"", path)
        export.issues.extend(parsed.issues)
        return parsed.names
    return _name_lines(export, path)


def _yaml_document(export: _Export, yaml_path: str | None) -> dict[str, Any] | None:
    data = export.read_bytes(yaml_path, MAX_DATA_YAML_BYTES) if yaml_path else None
    return readable_mapping(data) if data else None


def _yaml_splits(export: _Export, document: dict[str, Any]) -> dict[str, str]:
    """{path: target} of the images (and their labels) that data.yaml's train, val and test name: folders,
    .txt lists of images, or lists of either, relative to `path:` (or the export's root). An image named
    twice keeps its first split (val: images/train keeps them train)."""
    placed: dict[str, str] = {}
    taken: set[str] = set()
    for split, entry, several in split_lists.yaml_entries(document):
        for image, rest in _entry_images(export, entry, several=several, optional=split == "test"):
            target = f"images/{split}/{rest}"
            if image not in placed and target not in taken:
                taken.add(target)
                _place(placed, export, image, target)
    return placed


def _entry_images(export: _Export, entry: str, several: bool, optional: bool) -> list[tuple[str, str]]:
    """(image, its path under the split) for a data.yaml entry: a folder's images (under the folder's own
    name when a split lists several), or a .txt list's (their path below images/). An entry that names nothing
    in the export is an issue, but for an `optional` split (test: Roboflow's data.yaml names test/ always)."""
    resolved = export.resolve(entry)
    if resolved is None and optional:
        return []
    if resolved is None:
        export.issues.append(Issue("import_yaml_split", f"data.yaml names {entry!r}, which is not in the export: "
                                   "the images keep their folders", export.source))
        return []
    if resolved in export.present:
        return [(image, _after_images(image)) for image in _image_list(export, resolved)] \
            if resolved.endswith(".txt") else []
    prefix = resolved + "/"
    folder = posixpath.dirname(resolved) if posixpath.basename(resolved) == "images" else resolved
    below = posixpath.basename(folder) + "/" if several and folder else ""
    return [(image, below + _after_images(image[len(prefix):])) for image in sorted(export.images)
            if image.startswith(prefix)]


def _after_images(path: str) -> str:
    """The part of an image's path below its last images/ folder (the whole path when it has none)."""
    _, marker, tail = ("/" + path).rpartition("/images/")
    return tail if marker else path


def _place(placed: dict[str, str], export: _Export, image: str, target: str) -> None:
    """An image to `target`, and its label (Ultralytics' rule) beside it."""
    placed[image] = target
    label = relative_label_path(image)
    if label in export.present:
        placed[label] = relative_label_path(target)


# ---- a tar stream ---------------------------------------------------------------------------

class Streamed:
    """A tar stream's members mapped as they come, front to back: the layouts whose paths say where each file
    goes (Ultralytics, Roboflow, CVAT YOLO 1.1 and Darknet folders). Class-name files (small) are kept, and
    make data.yaml at the end when the stream held none. COCO and VOC need their annotations before their
    images: they are imported from a zip."""

    def __init__(self, source: str):
        self.source = source
        self.class_files: dict[str, bytes] = {}
        self.moved = self.cvat = False

    def target(self, relative: str) -> str | None:
        """Where a member goes (it may not be a dataset file: the caller checks), or None with an issue."""
        if coco.is_annotation_file(relative) or _is_voc_annotation(relative):
            raise ValueError(f"{relative}: a COCO or Pascal VOC export is imported from a zip (its images are "
                             "placed by its annotations, read first); not unpacked")
        target = side_by_side_target(relative) or target_of(relative)
        self.moved = self.moved or target != relative
        self.cvat = self.cvat or any(_cvat_split_folder(part) for part in relative.split("/")[:-1])
        return target

    def keeps(self, relative: str, size: int) -> bool:
        """Whether a member is a class-name file to keep for data.yaml."""
        return relative in NAME_FILES and size <= MAX_DATA_YAML_BYTES

    def finish(self, wrote_data_yaml: bool) -> tuple[str, dict[str, bytes], list[Issue]]:
        """The layout seen, data.yaml made from the class files (when the stream held none), the issues."""
        export = _Export(list(self.class_files), {p: len(d) for p, d in self.class_files.items()},
                         lambda path: io.BytesIO(self.class_files[path]), self.source)
        source = next((name for name in (FIFTYONE_YAML, LABEL_STUDIO_CLASSES, DARKNET_NAMES)
                       if name in self.class_files), None)
        generated = {}
        if source and not wrote_data_yaml and (names := _names(export, source)) is not None:
            generated["data.yaml"] = data_yaml(names)
        return self._layout(source), generated, export.issues

    def _layout(self, names_source: str | None) -> str:
        if names_source == FIFTYONE_YAML:
            return FIFTYONE_YOLO
        if names_source == LABEL_STUDIO_CLASSES:
            return LABEL_STUDIO
        if self.cvat:
            return CVAT_YOLO
        if names_source == DARKNET_NAMES and self.moved:
            return DARKNET
        return ROBOFLOW_YOLO if self.moved else ULTRALYTICS
