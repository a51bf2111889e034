"""A class-name file dropped at a dataset's root (classes.txt, obj.names, dataset.yaml: common.domain.class_files):
its names written to datasets/<d>/data.yaml unless the dataset has one, create-only (if_generation_match=0), so a
data.yaml the person dropped, before or after, always wins. The data.yaml's own event then indexes the names as
for any data.yaml. What was done and the layout the file means are recorded on its file document (`layout`,
`summary`): the drop summary. Removing the file leaves data.yaml as it is: it is the dataset's now.
"""
from __future__ import annotations

from google.api_core.exceptions import NotFound

from common.cloud import dataset_index, guarded_objects, storage
from common.domain import class_files, layout
from common.domain.class_files import ClassFile
from common.platform.events import DELETED, ObjectEvent
from common.platform.handler import Outcome, Result

WRITER = "yolodrop-ingest"  # object metadata of the data.yaml written here


def handle(event: ObjectEvent, role: layout.DatasetObjectRole) -> Outcome:
    if event.action == DELETED:
        removed = dataset_index.put_file(role.dataset, event.name, event.generation, None)
        return _outcome(removed, "class-name file removed (data.yaml stays)")
    if dataset_index.is_stale_file(dataset_index.read_file(role.dataset, event.name), event.generation):
        return Outcome(Result.DUPLICATE, "duplicate event: this class-name file generation is recorded")
    relative = layout.dataset_relative(event.name, role.dataset)
    try:
        found = _read(event, relative)
    except NotFound:
        return Outcome(Result.STALE, "stale event: that generation is gone from the bucket")
    summary = _write_data_yaml(role.dataset, found, class_files.mark(relative, event.generation)) \
        if found.names else class_files.NOT_READ
    details = {"layout": class_files.layout_of(relative), "summary": summary, "names": len(found.names or [])}
    recorded = dataset_index.put_file(role.dataset, event.name, event.generation, found.issues, details)
    return _outcome(recorded, f"class-name file ({details['layout']}): {summary}", len(found.issues))


def _read(event: ObjectEvent, relative: str) -> ClassFile:
    too_large = class_files.size_issue(event.size, event.name) if event.size is not None else None
    if too_large:  # known from the event: not downloaded
        return ClassFile(None, [too_large])
    return class_files.read(relative, storage.download(event.name, event.generation), event.name)


def _write_data_yaml(dataset: str, found: ClassFile, mark: str) -> str:
    """WRITTEN when data.yaml now holds these names (written now, or by an earlier delivery of this event),
    NOT_USED when the dataset has a data.yaml (or data.yml) of its own."""
    if storage.bucket().get_blob(layout.dataset_object(dataset, "data.yml")) is not None:
        return class_files.NOT_USED
    try:
        guarded_objects.write(layout.dataset_object(dataset, "data.yaml"), found.data_yaml(mark), 0, WRITER,
                              "application/x-yaml")
    except guarded_objects.Moved as moved:
        mine = moved.data is not None and class_files.written_from(moved.data, mark)
        return class_files.WRITTEN if mine else class_files.NOT_USED
    return class_files.WRITTEN


def _outcome(applied: bool, what: str, issues: int = 0) -> Outcome:
    if not applied:
        return Outcome(Result.STALE, "stale event: a newer generation or a delete is recorded")
    return Outcome(Result.APPLIED, what, {"issues": issues})
