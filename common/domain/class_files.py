"""Class-name files other tools write at a dataset's root, made into its data.yaml when it has none.

Label Studio's YOLO export writes classes.txt, Darknet and CVAT YOLO 1.1 write obj.names (one name a line, the
line number is the class id), FiftyOne's YOLOv5 export writes dataset.yaml (Ultralytics' `names:`). Ingest reads
one such file when it is dropped and writes datasets/<d>/data.yaml from it, create-only: a data.yaml the person
dropped, before or after, always wins. The data.yaml written starts with a comment naming the file and its
generation (`mark`), so a redelivered event knows the data.yaml it finds is its own. Names are held to the limits
of data.yaml's (common.domain.datayaml). Pure: bytes in, names, data.yaml bytes and issues out.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from common.domain.datayaml import MAX_CLASSES, MAX_NAME_CHARS, parse_data_yaml
from common.domain.issues import Issue

# A class file of MAX_CLASSES names of about 60 bytes; larger is no class list, and is not read.
MAX_CLASS_FILE_BYTES = 256 * 1024
LAYOUTS = {  # the file at the root -> the export it comes from (the drop summary names it)
    "classes.txt": "Label Studio YOLO",
    "obj.names": "Darknet YOLO / CVAT YOLO 1.1",
    "data/obj.names": "Darknet YOLO",
    "dataset.yaml": "FiftyOne YOLOv5",
}
WRITTEN = "names written to data.yaml"
NOT_USED = "data.yaml exists: these names are not used"
NOT_READ = "names not read: see the file's issues"


@dataclass(frozen=True)
class ClassFile:
    names: list[str] | None  # in id order; None when the file gives no usable names
    issues: list[Issue]

    def data_yaml(self, mark: str) -> bytes:
        """The data.yaml of these names, its first line the mark of the file it comes from."""
        names = cast(list[str], self.names)  # asked only of a file that gave names
        lines = [f"# {mark}", f"nc: {len(names)}", "names:"]
        lines += [f"  {class_id}: {json.dumps(name, ensure_ascii=False)}" for class_id, name in enumerate(names)]
        return ("\n".join(lines) + "\n").encode()


def layout_of(relative: str) -> str:
    return LAYOUTS[relative]


def mark(relative: str, generation: int) -> str:
    """The first line of a data.yaml written from generation `generation` of the class file `relative`."""
    return (f"names from {relative} ({LAYOUTS[relative]}) generation {generation}, written by yolodrop "
            "because the dataset had no data.yaml; edit or replace this file to change the classes")


def written_from(data_yaml: bytes, mark_text: str) -> bool:
    """Whether a data.yaml is the one written from the file generation `mark_text` names (a redelivery's)."""
    return data_yaml.split(b"\n", 1)[0] == f"# {mark_text}".encode()


def size_issue(size: int, file: str) -> Issue | None:
    if size <= MAX_CLASS_FILE_BYTES:
        return None
    return Issue("class_file_too_large", f"the file is {size} bytes, over the {MAX_CLASS_FILE_BYTES} bytes a class "
                 "list may have; it is not read: drop a data.yaml with the class names instead", file)


def read(relative: str, data: bytes, file: str) -> ClassFile:
    too_large = size_issue(len(data), file)
    if too_large:
        return ClassFile(None, [too_large])
    if relative == "dataset.yaml":
        return _read_yaml(data, file)
    return _read_lines(data, file)


def _read_yaml(data: bytes, file: str) -> ClassFile:
    """FiftyOne's dataset.yaml is an Ultralytics data.yaml: read as one, its issues are data.yaml's."""
    parsed = parse_data_yaml(data, file)
    return ClassFile(parsed.names or None, parsed.issues)


def _read_lines(data: bytes, file: str) -> ClassFile:
    """One name a line, the line number (from 0) its class id; trailing empty lines are no classes."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return _refused("class_file_not_utf8", f"the file is not UTF-8 text (byte {error.start} is "
                        f"0x{data[error.start]:02x})", file)
    names = [line.strip() for line in text.split("\n")]  # as Darknet reads it: only \n ends a line
    while names and not names[-1]:
        names.pop()
    if not names:
        return _refused("class_file_empty", "the file lists no class names (one name a line)", file)
    if len(names) > MAX_CLASSES:
        return _refused("class_file_too_many_classes", f"the file lists {len(names)} classes; a dataset may have "
                        f"at most {MAX_CLASSES}", file)
    for line, name in enumerate(names, start=1):
        problem = _name_problem(name)
        if problem:
            return _refused(*problem, file, line)
    return ClassFile(names, [])


def _name_problem(name: str) -> tuple[str, str] | None:
    if not name:
        return "class_file_blank_line", ("an empty line among the names: the line number is the class id, so it "
                                         "would be a class without a name; name it, or remove it and renumber "
                                         "the labels after it")
    if len(name) > MAX_NAME_CHARS:
        return "class_file_name_too_long", f"a name of {len(name)} characters; the limit is {MAX_NAME_CHARS}"
    return None


def _refused(code: str, message: str, file: str, line: int | None = None) -> ClassFile:
    return ClassFile(None, [Issue(code, message + "; no data.yaml is written from it", file, line)])
