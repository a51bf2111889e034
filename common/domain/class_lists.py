"""Class lists of another tool's export matched onto a dataset's own. Pure.

An export names its classes (COCO categories, Pascal VOC object names); a
dataset that already names its classes (its data.yaml) keeps every id: a known
name keeps its class id, a new one is appended after the existing classes, and
an issue lists the new ones, so no label already in the dataset changes meaning.
"""
from __future__ import annotations

from common.domain.archive import ArchiveRefused
from common.domain.datayaml import MAX_CLASSES
from common.domain.issues import Issue

SHOWN_NAMES = 10


def onto_existing(incoming: list[str], existing: list[str], source: str, code: str) -> tuple[list[str], list[int],
                                                                                               Issue | None]:
    """(the dataset's classes after the import, the class id of each incoming class, the issue when they differ).
    ArchiveRefused when the existing list names a class twice or the new names pass MAX_CLASSES."""
    repeated = sorted({name for name in existing if existing.count(name) > 1})
    if repeated:
        raise ArchiveRefused(code, f"the dataset's data.yaml names {repeated[0]!r} more than once, so the "
                             "export's classes cannot be matched by name: give each class one name in data.yaml, "
                             "then bring the export in again")
    classes = list(existing)
    added = [name for name in dict.fromkeys(incoming) if name not in classes]
    if len(classes) + len(added) > MAX_CLASSES:
        raise ArchiveRefused(code, f"the export's {len(added)} new classes would take the dataset past "
                             f"{MAX_CLASSES} classes: bring it into a new dataset")
    classes.extend(added)
    position = {name: class_id for class_id, name in enumerate(classes)}
    issue = None
    if incoming != classes[:len(incoming)]:
        issue = Issue(code, _reconciled_message(incoming, existing, added), source)
    return classes, [position[name] for name in incoming], issue


def _reconciled_message(incoming: list[str], existing: list[str], added: list[str]) -> str:
    message = (f"the export's {len(incoming)} classes differ from the dataset's {len(existing)}: they were "
               "matched by name, so the labels already in the dataset keep their classes")
    if added:
        shown = ", ".join(repr(name) for name in added[:SHOWN_NAMES]) + (" ..." if len(added) > SHOWN_NAMES else "")
        message += f"; new classes appended after the existing ones: {shown}"
    return message + "; check data.yaml's names"
