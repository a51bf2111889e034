"""One small canonical dataset and pure writers that lay it out as each tool's export does, file names
included: Ultralytics (four data.yaml styles), Roboflow YOLO and COCO, CVAT YOLO 1.1 and COCO 1.0, Label Studio's
YOLO export, Darknet, FiftyOne's YOLOv5 and COCO exports, CVAT's Pascal VOC 1.1, the COCO 2017 files themselves, and a
zip of any of them.

The canonical dataset: 8 JPEGs of distinct sizes (so an image is known by its size wherever a tool renamed or
re-encoded it), 5 in train and 3 in val, 3 classes whose ids are not in alphabetical order, boxes given as pixel
corners with even sides (every normalized value is exact to 6 decimals, as the tools write them), one image with
no box, and one class (`mango`) with boxes only in val. Each writer returns {relative path: bytes}."""
from __future__ import annotations

import functools
import io
import json
import zipfile
from dataclasses import dataclass

from PIL import Image, ImageDraw

CLASSES = ("zebra", "apple", "mango")  # ids 0, 1, 2: not alphabetical on purpose


@dataclass(frozen=True)
class Box:
    class_id: int
    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def name(self) -> str:
        return CLASSES[self.class_id]

    def normalized(self, width: int, height: int) -> tuple[float, float, float, float]:
        """YOLO's (cx, cy, w, h), each in 0..1."""
        return ((self.x1 + self.x2) / 2 / width, (self.y1 + self.y2) / 2 / height,
                (self.x2 - self.x1) / width, (self.y2 - self.y1) / height)


@dataclass(frozen=True)
class Picture:
    stem: str
    width: int
    height: int
    split: str  # train or val
    boxes: tuple[Box, ...]

    @property
    def file_name(self) -> str:
        return f"{self.stem}.jpg"

    @property
    def jpeg(self) -> bytes:
        return _jpeg(self)

    def yolo_label(self) -> bytes:
        """The label file as the tools write it: class cx cy w h, 6 decimals, one row a line."""
        return "".join(f"{b.class_id} " + " ".join(f"{v:.6f}" for v in b.normalized(self.width, self.height)) + "\n"
                       for b in self.boxes).encode()


def _b(class_id, x1, y1, x2, y2) -> Box:
    return Box(class_id, x1, y1, x2, y2)


ZEBRA, APPLE, MANGO = range(3)
PICTURES = (
    Picture("street_01", 64, 48, "train", (_b(ZEBRA, 8, 8, 40, 32), _b(APPLE, 40, 16, 60, 44))),
    Picture("street_02", 80, 60, "train", (_b(APPLE, 10, 10, 50, 40),)),
    Picture("street_03", 96, 72, "train", (_b(ZEBRA, 0, 0, 48, 36), _b(ZEBRA, 48, 36, 96, 72))),
    Picture("street_04", 100, 50, "train", ()),  # no box: a background image
    Picture("street_05", 120, 80, "train", (_b(APPLE, 20, 20, 80, 60), _b(ZEBRA, 90, 10, 110, 70))),
    Picture("market_01", 128, 96, "val", (_b(MANGO, 16, 16, 112, 80),)),
    Picture("market_02", 160, 120, "val", (_b(ZEBRA, 20, 30, 60, 90), _b(MANGO, 80, 40, 140, 100))),
    Picture("market_03", 200, 100, "val", (_b(APPLE, 50, 20, 150, 80), _b(MANGO, 0, 0, 20, 20))),
)
TRAIN = tuple(p for p in PICTURES if p.split == "train")
VAL = tuple(p for p in PICTURES if p.split == "val")


@functools.cache
def _jpeg(picture: Picture) -> bytes:
    """A distinct image per picture (its own colour, its boxes drawn), so no two share content."""
    index = PICTURES.index(picture)
    image = Image.new("RGB", (picture.width, picture.height), (40 + 25 * index, 200 - 20 * index, 90 + 15 * index))
    draw = ImageDraw.Draw(image)
    for box in picture.boxes:
        draw.rectangle((box.x1, box.y1, box.x2 - 1, box.y2 - 1), outline=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def zipped(files: dict[str, bytes], folder: str = "") -> bytes:
    """A zip of a layout, optionally inside one enclosing folder (as many tools' downloads are)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{folder}/{name}" if folder else name, data)
    return buffer.getvalue()


def _names_list() -> str:
    return "[" + ", ".join(f"'{name}'" for name in CLASSES) + "]"


def _names_mapping(indent: str = "  ") -> str:
    return "".join(f"{indent}{i}: {name}\n" for i, name in enumerate(CLASSES))


def _images_and_labels(folder_of) -> dict[str, bytes]:
    """images/<folder>/x.jpg and labels/<folder>/x.txt for each picture (an empty label for no box)."""
    files = {}
    for p in PICTURES:
        files[f"images/{folder_of(p)}/{p.file_name}".replace("//", "/")] = p.jpeg
        files[f"labels/{folder_of(p)}/{p.stem}.txt".replace("//", "/")] = p.yolo_label()
    return files


# --- Ultralytics ---------------------------------------------------------------------------------------------

def ultralytics_names_list() -> dict[str, bytes]:
    """data.yaml with names as a list, train/val as folders (as `yolo` tutorials and many exporters write it)."""
    yaml = f"train: images/train\nval: images/val\n\nnc: {len(CLASSES)}\nnames: {_names_list()}\n"
    return {"data.yaml": yaml.encode(), **_images_and_labels(lambda p: p.split)}


def ultralytics_names_mapping() -> dict[str, bytes]:
    """Ultralytics' own dataset YAML style (coco8.yaml): `path:` a root on the author's machine, train/val as
    folders below it, names as an {id: name} mapping."""
    yaml = ("# Ultralytics YOLO, AGPL-3.0 license\n"
            "path: ../datasets/fruit # dataset root dir\n"
            "train: images/train # train images (relative to 'path')\n"
            "val: images/val # val images (relative to 'path')\n"
            "test: # test images (optional)\n\n"
            f"# Classes\nnames:\n{_names_mapping()}")
    return {"data.yaml": yaml.encode(), **_images_and_labels(lambda p: p.split)}


def ultralytics_txt_lists() -> dict[str, bytes]:
    """Ultralytics' autosplit: every image in one images/ folder, the splits as .txt lists of image paths."""
    files = {f"autosplit_{split}.txt": "".join(f"./images/{p.file_name}\n" for p in pictures).encode()
             for split, pictures in (("train", TRAIN), ("val", VAL))}
    yaml = (f"path: .\ntrain: autosplit_train.txt\nval: autosplit_val.txt\n\n"
            f"names:\n{_names_mapping()}")
    return {"data.yaml": yaml.encode(), **files, **_images_and_labels(lambda p: "")}


FOLDERS_OF_SPLIT = {"street_01": "train2012", "street_02": "train2012", "street_03": "train2012",
                    "street_04": "train2007", "street_05": "train2007",
                    "market_01": "test2007", "market_02": "test2007", "market_03": "test2007"}


def ultralytics_folder_lists() -> dict[str, bytes]:
    """Ultralytics' VOC.yaml style: train as a list of folders, val as a one-folder list."""
    yaml = ("path: ../datasets/fruit\n"
            "train: # train images (relative to 'path')\n  - images/train2012\n  - images/train2007\n"
            "val: # val images (relative to 'path')\n  - images/test2007\n\n"
            f"names:\n{_names_mapping()}")
    return {"data.yaml": yaml.encode(), **_images_and_labels(lambda p: FOLDERS_OF_SPLIT[p.stem])}


# --- Roboflow ------------------------------------------------------------------------------------------------

ROBOFLOW_SPLIT = {"train": "train", "val": "valid"}
ROBOFLOW_README = (b"fruit - v1 2024-05-02 10:31am\n==============================\n\n"
                   b"This dataset was exported via roboflow.com\n")


def roboflow_name(picture: Picture) -> str:
    """Roboflow renames every image: <stem>_jpg.rf.<32 hex digits>.jpg."""
    return f"{picture.stem}_jpg.rf.{PICTURES.index(picture):02d}{'a3f9c1e7' * 3}b5c0d2.jpg"


def roboflow_yolo() -> dict[str, bytes]:
    """Roboflow's YOLOv8 export: <split>/images, <split>/labels, data.yaml pointing at ../<split>/images."""
    yaml = ("train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
            f"nc: {len(CLASSES)}\nnames: {_names_list()}\n\n"
            "roboflow:\n  workspace: fruit-lab\n  project: fruit\n  version: 1\n  license: CC BY 4.0\n"
            "  url: https://universe.roboflow.com/fruit-lab/fruit/dataset/1\n")
    files = {"data.yaml": yaml.encode(), "README.dataset.txt": ROBOFLOW_README, "README.roboflow.txt": ROBOFLOW_README}
    for p in PICTURES:
        name = roboflow_name(p)
        files[f"{ROBOFLOW_SPLIT[p.split]}/images/{name}"] = p.jpeg
        files[f"{ROBOFLOW_SPLIT[p.split]}/labels/{name[:-4]}.txt"] = p.yolo_label()
    return files


def roboflow_coco() -> dict[str, bytes]:
    """Roboflow's COCO export: <split>/_annotations.coco.json beside the images; category 0 is the dataset
    itself, the supercategory of every class, with no annotation."""
    categories = [{"id": 0, "name": "fruit", "supercategory": "none"}] + [
        {"id": i + 1, "name": name, "supercategory": "fruit"} for i, name in enumerate(CLASSES)]
    files = {"README.dataset.txt": ROBOFLOW_README, "README.roboflow.txt": ROBOFLOW_README}
    for split, pictures in (("train", TRAIN), ("val", VAL)):
        folder = ROBOFLOW_SPLIT[split]
        images = [{"id": i, "license": 1, "file_name": roboflow_name(p), "height": p.height, "width": p.width,
                   "date_captured": "2024-05-02T10:31:00+00:00"} for i, p in enumerate(pictures)]
        document = {"info": {"year": "2024", "version": "1", "description": "Exported from roboflow.com",
                             "contributor": "", "url": "https://public.roboflow.com/object-detection/undefined",
                             "date_created": "2024-05-02T10:31:00+00:00"},
                    "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}],
                    "categories": categories, "images": images,
                    "annotations": _coco_annotations(pictures, first_image=0, first_annotation=0, category_offset=1)}
        files[f"{folder}/_annotations.coco.json"] = json.dumps(document).encode()
        files.update({f"{folder}/{roboflow_name(p)}": p.jpeg for p in pictures})
    return files


def _coco_annotations(pictures, first_image: int, first_annotation: int, category_offset: int,
                      extra: dict | None = None) -> list[dict]:
    annotations = []
    for index, p in enumerate(pictures):
        for box in p.boxes:
            w, h = box.x2 - box.x1, box.y2 - box.y1
            annotations.append({"id": first_annotation + len(annotations), "image_id": first_image + index,
                                "category_id": box.class_id + category_offset, "bbox": [box.x1, box.y1, w, h],
                                "area": w * h, "segmentation": [], "iscrowd": 0, **(extra or {})})
    return annotations


# COCO 2017's own category ids have gaps (1..90 for 80 classes); these keep the canonical order.
COCO_2017_IDS = {"zebra": 24, "apple": 53, "mango": 61}
COCO_2017_SUPERCATEGORY = {"zebra": "animal", "apple": "food", "mango": "food"}


def coco_2017() -> dict[str, bytes]:
    """The COCO 2017 files themselves: annotations/instances_<split>2017.json, <split>2017/<12-digit id>.jpg,
    category ids with gaps, each with its supercategory (no category is named after one)."""
    categories = [{"supercategory": COCO_2017_SUPERCATEGORY[n], "id": COCO_2017_IDS[n], "name": n} for n in CLASSES]
    files = {}
    for split, pictures in (("train", TRAIN), ("val", VAL)):
        images, annotations = [], []
        for p in pictures:
            image_id = 139 + 1000 * PICTURES.index(p)
            name = f"{image_id:012d}.jpg"
            files[f"{split}2017/{name}"] = p.jpeg
            images.append({"license": 4, "file_name": name,
                           "coco_url": f"http://images.cocodataset.org/{split}2017/{name}", "height": p.height,
                           "width": p.width, "date_captured": "2013-11-21 01:34:01", "flickr_url": "", "id": image_id})
            for index, b in enumerate(p.boxes):
                w, h = b.x2 - b.x1, b.y2 - b.y1
                annotations.append({"segmentation": [[b.x1, b.y1, b.x2, b.y1, b.x2, b.y2, b.x1, b.y2]],
                                    "area": float(w * h), "iscrowd": 0, "image_id": image_id,
                                    "bbox": [float(b.x1), float(b.y1), float(w), float(h)],
                                    "category_id": COCO_2017_IDS[b.name], "id": image_id * 10 + index})
        document = {"info": {"description": "COCO 2017 Dataset", "url": "http://cocodataset.org", "version": "1.0",
                             "year": 2017, "contributor": "COCO Consortium", "date_created": "2017/09/01"},
                    "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4,
                                  "name": "Attribution License"}],
                    "images": images, "annotations": annotations, "categories": categories}
        files[f"annotations/instances_{split}2017.json"] = json.dumps(document).encode()
    return files

# --- CVAT ----------------------------------------------------------------------------------------------------

CVAT_SUBSET = {"train": "train", "val": "valid"}  # Datumaro's YOLO subsets


def cvat_yolo() -> dict[str, bytes]:
    """CVAT's YOLO 1.1 export (Datumaro's YOLO): obj.data, obj.names, <subset>.txt listing data/obj_<subset>_data/
    images, each image's .txt label beside it in obj_<subset>_data/."""
    files = {"obj.data": (f"classes = {len(CLASSES)}\ntrain = data/train.txt\nvalid = data/valid.txt\n"
                          "names = data/obj.names\nbackup = backup/\n").encode(),
             "obj.names": "".join(f"{name}\n" for name in CLASSES).encode()}
    for split, pictures in (("train", TRAIN), ("val", VAL)):
        subset = CVAT_SUBSET[split]
        files[f"{subset}.txt"] = "".join(f"data/obj_{subset}_data/{p.file_name}\n" for p in pictures).encode()
        for p in pictures:
            files[f"obj_{subset}_data/{p.file_name}"] = p.jpeg
            files[f"obj_{subset}_data/{p.stem}.txt"] = p.yolo_label()
    return files


def cvat_coco() -> dict[str, bytes]:
    """CVAT's COCO 1.0 export of a task without subsets: annotations/instances_default.json and images/."""
    document = {"licenses": [{"name": "", "id": 0, "url": ""}],
                "info": {"contributor": "", "date_created": "", "description": "", "url": "", "version": "",
                         "year": ""},
                "categories": [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(CLASSES)],
                "images": [{"id": i + 1, "width": p.width, "height": p.height, "file_name": p.file_name, "license": 0,
                            "flickr_url": "", "coco_url": "", "date_captured": 0} for i, p in enumerate(PICTURES)],
                "annotations": _coco_annotations(PICTURES, first_image=1, first_annotation=1, category_offset=1,
                                                 extra={"attributes": {"occluded": False}})}
    return {"annotations/instances_default.json": json.dumps(document).encode(),
            **{f"images/{p.file_name}": p.jpeg for p in PICTURES}}


def cvat_voc() -> dict[str, bytes]:
    """CVAT's Pascal VOC 1.1 export: Annotations/, ImageSets/Main/<subset>.txt (stems), JPEGImages/, and
    labelmap.txt giving the classes in order."""
    labelmap = "# label:color_rgb:parts:actions\n" + "".join(f"{name}:{40 * i},{200 - 40 * i},90::\n"
                                                             for i, name in enumerate(CLASSES))
    files = {"labelmap.txt": labelmap.encode()}
    for split, pictures in (("train", TRAIN), ("val", VAL)):
        files[f"ImageSets/Main/{split}.txt"] = "".join(f"{p.stem}\n" for p in pictures).encode()
    for p in PICTURES:
        files[f"JPEGImages/{p.file_name}"] = p.jpeg
        files[f"Annotations/{p.stem}.xml"] = voc_xml(p)
    return files


def voc_xml(p: Picture) -> bytes:
    """A VOC annotation: 1-based pixel indices, so xmin = x1 + 1 and xmax = x2 for a box of 0-based edges
    (the devkit's convention, which supervision reads and writes)."""
    objects = "".join(
        f"  <object>\n    <name>{b.name}</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
        f"    <difficult>0</difficult>\n    <occluded>0</occluded>\n    <bndbox>\n"
        f"      <xmin>{b.x1 + 1}</xmin>\n      <ymin>{b.y1 + 1}</ymin>\n      <xmax>{b.x2}</xmax>\n"
        f"      <ymax>{b.y2}</ymax>\n    </bndbox>\n  </object>\n" for b in p.boxes)
    return (f"<annotation>\n  <folder></folder>\n  <filename>{p.file_name}</filename>\n"
            f"  <source>\n    <database>Unknown</database>\n    <annotation>Unknown</annotation>\n"
            f"    <image>Unknown</image>\n  </source>\n"
            f"  <size>\n    <width>{p.width}</width>\n    <height>{p.height}</height>\n"
            f"    <depth>3</depth>\n  </size>\n"
            f"  <segmented>0</segmented>\n{objects}</annotation>\n").encode()


# --- Label Studio, Darknet, FiftyOne -------------------------------------------------------------------------

def label_studio_name(picture: Picture) -> str:
    """Label Studio prefixes an uploaded file with 8 hex digits of its own."""
    return f"{PICTURES.index(picture):02d}c4e9a1-{picture.file_name}"


def label_studio_yolo() -> dict[str, bytes]:
    """Label Studio's YOLO export: classes.txt, notes.json, images/ and labels/ (no splits)."""
    notes = {"categories": [{"id": i, "name": name} for i, name in enumerate(CLASSES)],
             "info": {"year": 2024, "version": "1.0", "contributor": "Label Studio"}}
    files = {"classes.txt": "".join(f"{name}\n" for name in CLASSES).encode(), "notes.json": json.dumps(notes).encode()}
    for p in PICTURES:
        files[f"images/{label_studio_name(p)}"] = p.jpeg
        files[f"labels/{label_studio_name(p)[:-4]}.txt"] = p.yolo_label()
    return files


def darknet() -> dict[str, bytes]:
    """A Darknet data folder (AlexeyAB's darknet `data/`): obj.data, obj.names, train.txt and valid.txt listing
    data/obj/ images, labels beside the images in obj/."""
    files = {"obj.data": (f"classes = {len(CLASSES)}\ntrain  = data/train.txt\nvalid  = data/valid.txt\n"
                          "names = data/obj.names\nbackup = backup/\n").encode(),
             "obj.names": "".join(f"{name}\n" for name in CLASSES).encode(),
             "train.txt": "".join(f"data/obj/{p.file_name}\n" for p in TRAIN).encode(),
             "valid.txt": "".join(f"data/obj/{p.file_name}\n" for p in VAL).encode()}
    for p in PICTURES:
        files[f"obj/{p.file_name}"] = p.jpeg
        files[f"obj/{p.stem}.txt"] = p.yolo_label()
    return files


def fiftyone_yolov5() -> dict[str, bytes]:
    """FiftyOne's YOLOv5Dataset export: dataset.yaml (yaml.dump: keys sorted, names as a mapping, `path` the
    export folder on the author's machine), images/<split>/, labels/<split>/; no label file for an image
    without detections."""
    yaml = (f"names:\n{_names_mapping()}path: /home/ana/fiftyone/fruit-export\n"
            "train: ./images/train/\nval: ./images/val/\n")
    files = {"dataset.yaml": yaml.encode()}
    for p in PICTURES:
        files[f"images/{p.split}/{p.file_name}"] = p.jpeg
        if p.boxes:
            files[f"labels/{p.split}/{p.stem}.txt"] = p.yolo_label()
    return files


def fiftyone_coco() -> dict[str, bytes]:
    """FiftyOne's COCODetectionDataset export: data/ with the images, labels.json (categories from 1,
    supercategory null; no splits)."""
    document = {"info": {"year": "", "version": "", "description": "Exported from FiftyOne", "contributor": "",
                         "url": "https://voxel51.com/fiftyone", "date_created": "2024-05-02T10:31:00"},
                "licenses": [],
                "categories": [{"id": i + 1, "name": name, "supercategory": None} for i, name in enumerate(CLASSES)],
                "images": [{"id": i + 1, "file_name": p.file_name, "height": p.height, "width": p.width,
                            "license": None, "coco_url": None} for i, p in enumerate(PICTURES)],
                "annotations": _coco_annotations(PICTURES, first_image=1, first_annotation=1, category_offset=1)}
    return {"labels.json": json.dumps(document).encode(), **{f"data/{p.file_name}": p.jpeg for p in PICTURES}}


@dataclass(frozen=True)
class Layout:
    key: str            # the test id
    write: object       # () -> {relative path: bytes}
    named: tuple[str, ...]  # the words a summary naming this layout contains (case-insensitive)
    keeps_splits: bool      # the layout says which image is train and which val
    yolo_family: bool       # image and label files a drop can bring in file by file
    zip_folder: str = ""    # the enclosing folder of its zip download, if the tool adds one
    keeps_class_order: bool = True  # the class ids survive (a VOC folder without a class list has none)


LAYOUTS = (
    Layout("ultralytics-names-list", ultralytics_names_list, ("Ultralytics",), True, True),
    Layout("ultralytics-names-mapping", ultralytics_names_mapping, ("Ultralytics",), True, True,
           zip_folder="fruit"),  # as Ultralytics' own dataset zips (coco8.zip holds coco8/)
    Layout("ultralytics-txt-lists", ultralytics_txt_lists, ("Ultralytics",), True, True),
    Layout("ultralytics-folder-lists", ultralytics_folder_lists, ("Ultralytics",), True, True),
    Layout("roboflow-yolo", roboflow_yolo, ("Roboflow", "YOLO"), True, True),
    Layout("roboflow-coco", roboflow_coco, ("Roboflow", "COCO"), True, False),
    Layout("cvat-yolo", cvat_yolo, ("CVAT", "YOLO"), True, True),
    Layout("cvat-coco", cvat_coco, ("CVAT", "COCO"), False, False),
    Layout("cvat-voc", cvat_voc, ("VOC",), True, False),
    Layout("label-studio-yolo", label_studio_yolo, ("Label Studio",), False, True,
           zip_folder="project-3-at-2024-05-02-10-31-5f1c2a9b"),
    Layout("darknet", darknet, ("Darknet",), True, True),
    Layout("fiftyone-yolov5", fiftyone_yolov5, ("FiftyOne", "YOLO"), True, True),
    Layout("fiftyone-coco", fiftyone_coco, ("FiftyOne", "COCO"), False, False),
    Layout("coco-2017", coco_2017, ("COCO",), True, False),
)


# --- written by supervision's own writers ----------------------------------------------------------------------

def written_by_supervision(folder) -> dict[str, dict[str, bytes]]:
    """The canonical dataset written by supervision's as_yolo (images/<split>, labels/<split>, data.yaml),
    as_coco (images/<split>, annotations/instances_<split>.json) and as_pascal_voc (JPEGImages, Annotations:
    no splits, no class list), each read back into {relative path: bytes}."""
    for split, pictures in (("train", TRAIN), ("val", VAL)):
        dataset = _supervision_dataset(pictures, folder / "source")
        dataset.as_yolo(images_directory_path=f"{folder}/yolo/images/{split}",
                        annotations_directory_path=f"{folder}/yolo/labels/{split}",
                        data_yaml_path=f"{folder}/yolo/data.yaml")
        dataset.as_coco(images_directory_path=f"{folder}/coco/images/{split}",
                        annotations_path=f"{folder}/coco/annotations/instances_{split}.json")
    _supervision_dataset(PICTURES, folder / "source").as_pascal_voc(images_directory_path=f"{folder}/voc/JPEGImages",
                                                 annotations_directory_path=f"{folder}/voc/Annotations")
    return {f"supervision-{tool}": {path.relative_to(folder / tool).as_posix(): path.read_bytes()
                                    for path in sorted((folder / tool).rglob("*")) if path.is_file()}
            for tool in ("yolo", "coco", "voc")}


def _supervision_dataset(pictures, source):
    import numpy as np
    import supervision as sv

    def detections(p: Picture):
        if not p.boxes:
            return sv.Detections.empty()
        return sv.Detections(xyxy=np.array([[b.x1, b.y1, b.x2, b.y2] for b in p.boxes], dtype=float),
                             class_id=np.array([b.class_id for b in p.boxes]))
    source.mkdir(parents=True, exist_ok=True)
    paths = {p: source / p.file_name for p in pictures}
    for p, path in paths.items():
        path.write_bytes(p.jpeg)
    return sv.DetectionDataset(classes=list(CLASSES), images=[str(path) for path in paths.values()],
                               annotations={str(path): detections(p) for p, path in paths.items()})
