"""What a dropped file that ingest does not index means, when another tool's export wrote it.

Some are companions of a layout a drop reads (Label Studio's notes.json, Darknet's and CVAT's obj.data and image
lists, the .txt lists a data.yaml names): recorded with the layout they belong to, no issue. Image lists and
obj.data give splits (common.domain.split_lists): their record says so, and ingest starts the resplit job that
applies them. An image list is read in part (its first LIST_HEAD_BYTES) to tell CVAT's, whose images' folders
say their split already, from Darknet's, whose images lie in obj/ without one. COCO annotation JSON and Pascal
VOC files cannot be converted file by file (a COCO file places images it does not hold; VOC class ids need every
file): each gets a specific issue saying how to bring the export in instead. Anything else is an unrecognized
file. Pure: reads the path, and the head of an image list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.domain.issues import Issue
from common.domain.layout import IMAGE_EXTENSIONS, classify, dataset_object, import_archive, split_of

LIST_HEAD_BYTES = 64 * 1024  # of an image list, read to tell CVAT's (split in the folders) from Darknet's
DARKNET_CVAT = "Darknet YOLO / CVAT YOLO 1.1"
_IMAGE_LIST = "its images are read from the folders they are in (obj_<split>_data/ gives the split); not needed"
_COMPANIONS = {
    "notes.json": ("Label Studio YOLO", "Label Studio's notes (the class names come from classes.txt); not needed"),
    "obj.data": (DARKNET_CVAT, "Darknet's settings file: the class names come from obj.names, and the image "
                 "lists it names (train, valid, test) give the splits"),
}
_LISTED = "an image list data.yaml or obj.data names: a drop gives its images its split"
VOC_FOLDERS = ("Annotations", "JPEGImages", "ImageSets", "SegmentationClass", "SegmentationObject")


@dataclass(frozen=True)
class DropRecord:
    """What ingest records on a file it does not index: its issues, and (for a known layout's file) details."""
    issues: list[Issue]
    details: dict[str, Any] = field(default_factory=dict)
    gives_splits: bool = False  # an image list or obj.data that may give images splits their folders do not


def is_image_list(relative: str) -> bool:
    """Darknet's and CVAT's train.txt, valid.txt, val.txt, test.txt, at the root or in data/."""
    folder, _, name = relative.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    return folder in ("", "data") and bool(dot) and extension == "txt" and split_of(stem) is not None


def record(relative: str, file: str, dataset: str, head: bytes | None = None, listed: bool = False) -> DropRecord:
    """The record of the file `file` at `relative` in `dataset`; `head`: the first LIST_HEAD_BYTES of an image
    list (is_image_list); `listed`: the dataset's data.yaml or obj.data names the file as an image list."""
    if is_image_list(relative):
        return _image_list(relative, head or b"", listed)
    if listed:
        return DropRecord([], {"summary": _LISTED}, gives_splits=True)
    companion = _companion(relative)
    if companion:
        return DropRecord([], {"layout": companion[0], "summary": companion[1]}, gives_splits=_is_obj_data(relative))
    foreign = _foreign_annotations(relative)
    if foreign:
        code, layout_name, message = foreign
        if code != "drop_cvat_xml":  # the others are brought in whole
            message += f" cannot be converted file by file: {_bring_in(dataset)}"
        return DropRecord([Issue(code, message, file)],
                          {"layout": layout_name, "summary": "not read in a drop"})
    return DropRecord([Issue("unrecognized_file", "not an image under images/, a .txt label under labels/, "
                             "either of them in obj_<split>_data/ or obj/, nor data.yaml or a class-name file "
                             "(classes.txt, obj.names, dataset.yaml) at the dataset root; ingest ignores it", file)])


def _is_image_path(line: str) -> bool:
    return line.rpartition(".")[2].lower() in IMAGE_EXTENSIONS


def _bring_in(dataset: str) -> str:
    return (f"drop the whole export as one zip at {import_archive(dataset)} (the import converts it), or run "
            f"`yolodrop push <export folder> {dataset}`")


def _companion(relative: str) -> tuple[str, str] | None:
    folder, _, name = relative.rpartition("/")
    if folder not in ("", "data"):
        return None
    if name in _COMPANIONS and (folder == "" or name == "obj.data"):
        return _COMPANIONS[name]
    return None


def _is_obj_data(relative: str) -> bool:
    return relative in ("obj.data", "data/obj.data")


def _image_list(relative: str, head: bytes, listed: bool) -> DropRecord:
    """A list whose images all lie in CVAT's obj_<split>_data/ says nothing the folders do not; one naming
    images elsewhere (Darknet's obj/) gives them its split."""
    name = relative.rsplit("/", 1)[-1]
    split = split_of(name[:-len(".txt")])
    lines = head.decode("utf-8", "replace").split("\n")
    if len(head) >= LIST_HEAD_BYTES:
        lines = lines[:-1]  # cut off
    paths = [line.strip().replace("\\", "/") for line in lines if _is_image_path(line.strip())]
    splitless = [path for path in paths if not _in_split_folder(path)]
    if not splitless:
        return DropRecord([], {"layout": DARKNET_CVAT, "summary": f"an image list ({name}): {_IMAGE_LIST}"},
                          gives_splits=listed)
    counted = f"{len(splitless)}{'+' if len(head) >= LIST_HEAD_BYTES else ''}"
    return DropRecord([], {"layout": DARKNET_CVAT, "summary": f"an image list ({name}): its {counted} images in "
                           f"folders without a split (Darknet's obj/) are given the {split} split"},
                      gives_splits=True)


def _in_split_folder(listed: str) -> bool:
    """Whether the folders of a listed image give its split when it is dropped (obj_train_data/, images/val/)."""
    return classify(dataset_object("d", listed.removeprefix("./"))).split is not None


def _foreign_annotations(relative: str) -> tuple[str, str, str] | None:
    """(issue code, layout, what the file is) of a COCO, Pascal VOC or CVAT XML export's file."""
    folders, name = relative.split("/")[:-1], relative.rsplit("/", 1)[-1]
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension == "json" and _is_coco_name(name, folders):
        return "drop_coco_json", "COCO", f"a COCO annotation file ({name}) places images it does not hold, so it"
    if relative == "annotations.xml":
        return "drop_cvat_xml", "CVAT for images 1.1", ("CVAT's own XML format is not read: export the task "
                                                        "from CVAT as YOLO 1.1 or COCO 1.0 and bring that in")
    voc_folder = any(folder in VOC_FOLDERS for folder in folders)
    if extension == "xml" or relative == "labelmap.txt" or (voc_folder and extension in {*IMAGE_EXTENSIONS, "txt"}):
        return "drop_voc_file", "Pascal VOC", (f"a file of a Pascal VOC export ({name}): its class ids need every "
                                               "annotation file, so it")
    return None


def _is_coco_name(name: str, folders: list[str]) -> bool:
    """COCO's instances_<split>.json, CVAT's annotations/instances_default.json, Roboflow's
    _annotations.coco.json, FiftyOne's labels.json, and any JSON under annotations/."""
    return (name.startswith(("instances_", "person_keypoints_", "captions_", "panoptic_"))
            or name.endswith(".coco.json") or name == "labels.json" or "annotations" in folders)
