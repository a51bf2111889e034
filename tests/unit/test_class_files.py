"""Class-name files other tools export (classes.txt, obj.names, dataset.yaml) made into data.yaml, and what a
drop records on the other files of those exports (common.domain.class_files, common.domain.foreign_files)."""
import pytest

from common.domain import class_files, foreign_files
from common.domain.datayaml import MAX_CLASSES, MAX_NAME_CHARS, parse_data_yaml

FILE = "datasets/d/classes.txt"
# Label Studio's YOLO export: classes.txt, one name a line in id order
LABEL_STUDIO = b"Airplane\nCar\ntraffic light\n"
# Darknet's obj.names as CVAT YOLO 1.1 writes it: a trailing empty line, sometimes CRLF
CVAT_OBJ_NAMES = b"person\r\nbus\r\ntie\r\n\r\n"
# FiftyOne's YOLOv5 export: dataset.yaml, Ultralytics' keys
FIFTYONE = b"path: .\ntrain: ./images/train/\nval: ./images/val/\nnames:\n  0: cat\n  1: dog\n"


def names_of_written_data_yaml(found: class_files.ClassFile) -> list[str]:
    parsed = parse_data_yaml(found.data_yaml("mark"), "datasets/d/data.yaml")
    assert parsed.issues == []
    return parsed.names


@pytest.mark.parametrize("relative, data, names", [
    ("classes.txt", LABEL_STUDIO, ["Airplane", "Car", "traffic light"]),
    ("obj.names", CVAT_OBJ_NAMES, ["person", "bus", "tie"]),
    ("data/obj.names", b"\xef\xbb\xbfa\nb", ["a", "b"]),  # a BOM, no final newline
    ("dataset.yaml", FIFTYONE, ["cat", "dog"]),
])
def test_the_names_of_each_tools_class_file_become_data_yamls(relative, data, names):
    found = class_files.read(relative, data, FILE)
    assert (found.names, found.issues) == (names, [])
    assert names_of_written_data_yaml(found) == names


def test_names_yaml_would_misread_are_written_as_they_are():
    names = ["a: b", "#x", "- y", "'q'", '"dq"', "é ü", "null", "123", "true", "{x}", "[y]", "a\\b", "~", "*ref",
             "form\x0cfeed"]
    found = class_files.read("obj.names", "\n".join(names).encode(), FILE)
    assert found.names == names and names_of_written_data_yaml(found) == names


@pytest.mark.parametrize("data, code, line", [
    (b"", "class_file_empty", None),
    (b"\n \n", "class_file_empty", None),
    (b"cat\n\ndog\n", "class_file_blank_line", 2),
    (b"cat\n\xff\xfe\n", "class_file_not_utf8", None),
    (b"cat\n" + b"x" * (MAX_NAME_CHARS + 1) + b"\n", "class_file_name_too_long", 2),
    (b"c\n" * (MAX_CLASSES + 1), "class_file_too_many_classes", None),
    (b"c\n" * (class_files.MAX_CLASS_FILE_BYTES // 2 + 1), "class_file_too_large", None),
])
def test_a_class_list_that_cannot_be_read_is_an_issue_and_no_data_yaml(data, code, line):
    found = class_files.read("classes.txt", data, FILE)
    assert found.names is None
    assert [(issue.code, issue.line, issue.file) for issue in found.issues] == [(code, line, FILE)]
    assert found.issues[0].message


def test_a_dataset_yaml_without_names_is_data_yamls_issue():
    found = class_files.read("dataset.yaml", b"train: ./images/train/\n", "datasets/d/dataset.yaml")
    assert found.names is None and [issue.code for issue in found.issues] == ["yaml_no_names"]


def test_the_size_is_checked_before_reading():
    assert class_files.size_issue(class_files.MAX_CLASS_FILE_BYTES, FILE) is None
    assert class_files.size_issue(class_files.MAX_CLASS_FILE_BYTES + 1, FILE).code == "class_file_too_large"


def test_the_mark_tells_a_redelivery_its_own_data_yaml_from_anyone_elses():
    found = class_files.read("classes.txt", LABEL_STUDIO, FILE)
    mark = class_files.mark("classes.txt", 17)
    assert "Label Studio YOLO" in mark and "17" in mark
    assert class_files.written_from(found.data_yaml(mark), mark)
    assert not class_files.written_from(found.data_yaml(class_files.mark("classes.txt", 18)), mark)
    assert not class_files.written_from(b"names: [a, b, c]\n", mark)
    assert not class_files.written_from(b"# " + mark.encode() + b" and more\nnames: [a]\n", mark)


@pytest.mark.parametrize("relative, layout_name", [
    ("notes.json", "Label Studio YOLO"), ("obj.data", "Darknet YOLO / CVAT YOLO 1.1"),
    ("data/obj.data", "Darknet YOLO / CVAT YOLO 1.1"), ("train.txt", "Darknet YOLO / CVAT YOLO 1.1"),
    ("data/valid.txt", "Darknet YOLO / CVAT YOLO 1.1"), ("Test.txt", "Darknet YOLO / CVAT YOLO 1.1"),
])
def test_companion_files_of_the_layouts_a_drop_reads_are_recorded_without_an_issue(relative, layout_name):
    found = foreign_files.record(relative, f"datasets/d/{relative}", "d")
    assert found.issues == [] and found.details["layout"] == layout_name and found.details["summary"]


@pytest.mark.parametrize("relative, code", [
    ("annotations/instances_default.json", "drop_coco_json"),   # CVAT COCO 1.0
    ("annotations/instances_val2017.json", "drop_coco_json"),   # COCO 2017
    ("train/_annotations.coco.json", "drop_coco_json"),         # Roboflow COCO
    ("labels.json", "drop_coco_json"),                          # FiftyOne COCO
    ("Annotations/2007_000027.xml", "drop_voc_file"),
    ("a.xml", "drop_voc_file"),
    ("JPEGImages/2007_000027.jpg", "drop_voc_file"),
    ("ImageSets/Main/train.txt", "drop_voc_file"),
    ("labelmap.txt", "drop_voc_file"),                          # CVAT's Pascal VOC export
    ("annotations.xml", "drop_cvat_xml"),
])
def test_coco_and_voc_files_dropped_one_by_one_say_how_to_bring_the_export_in(relative, code):
    found = foreign_files.record(relative, f"datasets/d/{relative}", "d")
    assert [issue.code for issue in found.issues] == [code]
    message = found.issues[0].message
    if code != "drop_cvat_xml":
        assert "imports/d.zip" in message and "yolodrop push" in message
    else:
        assert "YOLO 1.1" in message


@pytest.mark.parametrize("relative", ["README.md", "sub/notes.json", "sub/train.txt", "x.json", "obj/readme.md",
                                      "a{b}.json", "sub/obj.data"])
def test_anything_else_stays_an_unrecognized_file(relative):
    found = foreign_files.record(relative, f"datasets/d/{relative}", "d")
    assert [issue.code for issue in found.issues] == ["unrecognized_file"] and found.details == {}


def test_ingest_handles_every_kind_of_file_a_dataset_holds():
    from common.services import ingest
    kinds = {"data_yaml", "class_names", "other", "import"}
    assert kinds <= set(ingest.OTHER_KINDS)


def test_cvats_image_lists_say_nothing_the_folders_do_not():
    head = b"data/obj_train_data/frame_000000.jpg\ndata/obj_train_data/sub/frame_000001.png\n"
    found = foreign_files.record("train.txt", "datasets/d/train.txt", "d", head)
    assert found.issues == [] and found.details["layout"] == "Darknet YOLO / CVAT YOLO 1.1"


@pytest.mark.parametrize("relative, head, split, count", [
    ("data/train.txt", b"data/obj/img1.jpg\r\ndata/obj/img2.png\r\n", "train", "2"),
    ("data/valid.txt", b"/home/me/darknet/data/obj/img3.jpg\nnot an image\n\n", "val", "1"),
    # longer than is read: the line cut off is not counted
    ("test.txt", b"x/ab.jpg\n" * (foreign_files.LIST_HEAD_BYTES // 9 + 1), "test", f"{65536 // 9}+"),
])
def test_darknets_image_lists_give_their_split_with_no_issue(relative, head, split, count):
    found = foreign_files.record(relative, f"datasets/d/{relative}", "d", head[:foreign_files.LIST_HEAD_BYTES])
    assert found.issues == [] and found.gives_splits
    assert f"its {count} images" in found.details["summary"] and f"the {split} split" in found.details["summary"]


def test_obj_data_and_a_list_data_yaml_names_give_splits_and_cvats_lists_do_not():
    assert foreign_files.record("data/obj.data", "datasets/d/data/obj.data", "d").gives_splits
    listed = foreign_files.record("autosplit_train.txt", "datasets/d/autosplit_train.txt", "d", listed=True)
    assert listed.issues == [] and listed.gives_splits
    assert not foreign_files.record("autosplit_train.txt", "datasets/d/autosplit_train.txt", "d").gives_splits
    cvat = foreign_files.record("train.txt", "datasets/d/train.txt", "d", b"data/obj_train_data/a.jpg\n")
    assert not cvat.gives_splits
