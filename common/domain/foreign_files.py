"""What a dropped file that ingest does not index means, when another tool's export wrote it.

Some are companions of a layout a drop reads (Label Studio's notes.json, Darknet's and CVAT's obj.data and image
lists): recorded with the layout they belong to, no issue. COCO annotation JSON and Pascal VOC files cannot be
converted file by file (a COCO file places images it does not hold; VOC class ids need every file): each gets a
specific issue saying how to bring the export in instead. Anything else is an unrecognized file. Pure: reads the
path only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from common.domain.issues import Issue
from common.domain.layout import IMAGE_EXTENSIONS, SPLIT_ALIASES, import_archive

# (file name, folders it may be in) -> (layout, what a drop does with it)
_IMAGE_LIST = "its images are read from the folders they are in (obj_<split>_data/ gives the split); not needed"
_COMPANIONS = {
    "notes.json": ("Label Studio YOLO", "Label Studio's notes (the class names come from classes.txt); not needed"),
    "obj.data": ("Darknet YOLO / CVAT YOLO 1.1", "Darknet's settings file (the class names come from obj.names); "
                 "not needed"),
}
VOC_FOLDERS = ("Annotations", "JPEGImages", "ImageSets", "SegmentationClass", "SegmentationObject")


@dataclass(frozen=True)
class DropRecord:
    """What ingest records on a file it does not index: its issues, and (for a known layout's file) details."""
    issues: list[Issue]
    details: dict = field(default_factory=dict)


def record(relative: str, file: str, dataset: str) -> DropRecord:
    """The record of the file `file` at `relative` in `dataset`."""
    companion = _companion(relative)
    if companion:
        return DropRecord([], {"layout": companion[0], "summary": companion[1]})
    foreign = _foreign_annotations(relative)
    if foreign:
        code, layout_name, message = foreign
        if code != "drop_cvat_xml":  # the others are brought in whole
            message += f" cannot be converted file by file: {_bring_in(dataset)}"
        return DropRecord([Issue(code, message, file)],
                          {"layout": layout_name, "summary": "not read in a drop"})
    return DropRecord([Issue("unrecognized_file", "not an image under images/, a .txt label under labels/ or "
                             "data.yaml at the dataset root; ingest ignores it", file)])


def _bring_in(dataset: str) -> str:
    return (f"drop the whole export as one zip at {import_archive(dataset)} (the import converts it), or run "
            f"`yolodrop push <export folder> {dataset}`")


def _companion(relative: str) -> tuple[str, str] | None:
    folder, _, name = relative.rpartition("/")
    if folder not in ("", "data"):
        return None
    if name in _COMPANIONS and (folder == "" or name == "obj.data"):
        return _COMPANIONS[name]
    stem, dot, extension = name.rpartition(".")
    if dot and extension == "txt" and stem.lower() in SPLIT_ALIASES:
        return "Darknet YOLO / CVAT YOLO 1.1", f"an image list ({stem}.txt): {_IMAGE_LIST}"
    return None


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
