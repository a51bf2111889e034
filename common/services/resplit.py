"""The resplit job: a drop's entries given the splits the dataset's image lists say (common.domain.split_lists).

Ingest starts one for each event of a list source (data.yaml, obj.data, a list file they name, Darknet's
train.txt / valid.txt / test.txt), under an id of the dataset, the object, its generation and the action, so a
redelivered event finds its job. The plan reads every current list source (not just the one that changed: any
order of events ends in the state of the last), writes what they say, and lists the entries whose split
differs; each unit moves its entries in one transaction per batch (common.cloud.dataset_index.resplit_entries).
"""
from __future__ import annotations

import time

from common.cloud import dataset_index, guarded_objects, split_store, storage
from common.domain import dataset_jobs, foreign_files, split_lists
from common.domain.datayaml import MAX_DATA_YAML_BYTES, readable_mapping
from common.domain.issues import Issue
from common.domain.layout import DATA_YAML_NAMES, dataset_object, doc_id
from common.platform import log
from common.services import dataset_jobs as dataset_job_service  # registers this kind: imported as a module

PLAN_ATTEMPTS = 5  # the sources changed while the plan wrote what they said: read them again
ENTRIES_PER_TRANSACTION = 50
DARKNET_LAYOUT, YAML_LAYOUT = foreign_files.DARKNET_CVAT, "Ultralytics YOLO"


def start_resplit(dataset: str, object_name: str, generation: int, action: str) -> dict:
    job_id = split_lists.resplit_job_id(dataset, object_name, generation, action)
    return dataset_job_service.start(dataset_jobs.new_job(job_id, dataset, dataset_jobs.RESPLIT, time.time(), None,
                                                          source=object_name, source_generation=generation))


class _Sources:
    """The list sources read for one plan: what they say, and the generation of every object consulted (0: it
    was not there), to tell whether any changed meanwhile."""

    def __init__(self, dataset: str):
        self.dataset = dataset
        self.consulted: dict[str, int] = {}
        self.read_lists: list[tuple[str, int, split_lists.ListReference, list[Issue]]] = []

    def read(self, relative: str, max_bytes: int) -> tuple[bytes | None, Issue | None]:
        name = dataset_object(self.dataset, relative)
        try:
            generation, data = guarded_objects.current(name, max_bytes=max_bytes)
        except guarded_objects.TooLarge as too_large:
            self.consulted[name] = too_large.generation
            return None, Issue("split_list_too_large", f"{too_large}: its splits are not read", relative)
        self.consulted[name] = generation
        return data, None

    def first(self, names: tuple[str, ...], max_bytes: int) -> tuple[str, bytes | None]:
        for relative in names:
            data, _ = self.read(relative, max_bytes)
            if data is not None:
                return relative, data
        return names[0], None

    def changed(self) -> bool:
        return any(_generation(name) != generation for name, generation in self.consulted.items())


def _generation(name: str) -> int:
    blob = storage.bucket().get_blob(name)
    return blob.generation if blob is not None else 0


def plan(job: dict) -> list[str]:
    """Write what the lists say now, then list the entries whose split differs. The order of the writes is what
    keeps ingest right while they happen: an ingest transaction that creates an entry reads the dataset document
    and (when its count says there are any) the entry's assignment, so a write after its read makes it retry.
    1. The names of the list files, first: a list file written from now on starts a job of its own; one
       written before is read below.
    2. The folder rules and the assignment count: from now on a new entry reads them.
    3. The assignment documents, made equal to the lists.
    4. The entries that exist now, listed after all that: one created before a write above is among them
       and moved by a unit; one created after reads what was written.
    Two plans of one dataset may run at once (two files changed): each checks after its writes that no source
    it read changed, and otherwise reads them again, so the last plan to finish wrote what the files say."""
    dataset = job["dataset"]
    for _ in range(PLAN_ATTEMPTS):
        sources = _Sources(dataset)
        wanted = _what_the_lists_say(sources, job)
        if not sources.changed():
            _record_list_files(dataset, sources, wanted.listed)
            return _entries_to_move(dataset, wanted)
    raise dataset_job_service.Contended(f"the list files of {dataset} kept changing while a resplit read them")


def _what_the_lists_say(sources: _Sources, job: dict) -> split_lists.SplitPlan:
    dataset = sources.dataset
    yaml_name, yaml_data = sources.first(DATA_YAML_NAMES, MAX_DATA_YAML_BYTES)
    document = readable_mapping(yaml_data) if yaml_data else None
    obj_data_name, obj_data = sources.first(split_lists.OBJ_DATA_FILES, MAX_DATA_YAML_BYTES)
    settings = split_lists.obj_data_settings(_text(obj_data)) if obj_data else None
    references = split_lists.list_references(document, settings, yaml_name, obj_data_name)
    split_store.record_sources(dataset, [dataset_object(dataset, tail) for reference in references
                                         for tail in split_lists.tails(reference.reference)])
    wanted = split_lists.SplitPlan(rules=split_lists.folder_rules(document))
    for reference in references:
        _read_list(sources, reference, wanted)
    summary = {"assigned": len(wanted.assignments), "rules": len(wanted.rules), "lists": wanted.listed}
    split_store.record_rules(dataset, wanted.rules, len(wanted.assignments), summary)
    moved = split_store.replace_assignments(dataset, wanted.assignments, job["id"])
    log.info("split lists read", dataset=dataset, job=job["id"], assignments=len(wanted.assignments),
             rules=len(wanted.rules), documents_written=moved)
    return wanted


def _read_list(sources: _Sources, reference: split_lists.ListReference, wanted: split_lists.SplitPlan) -> None:
    """The list a reference names (its longest tail that is there), added to `wanted`; a file two references name
    (data.yaml's and Darknet's) is read for the first."""
    for tail in split_lists.tails(reference.reference):
        if any(tail == read for read, *_ in sources.read_lists):
            return
        data, too_large = sources.read(tail, split_lists.MAX_LIST_BYTES)
        issues_before = len(wanted.issues)
        if too_large:
            wanted.issues.append(too_large)
        elif data is not None:
            split_lists.add_list(wanted, reference, tail, _text(data))
        else:
            continue  # no list at this tail: the next one
        name = dataset_object(sources.dataset, tail)
        sources.read_lists.append((tail, sources.consulted[name], reference, wanted.issues[issues_before:]))
        return


def _text(data: bytes) -> str:
    return data.decode("utf-8-sig", "replace")


def _record_list_files(dataset: str, sources: _Sources, lines: dict[str, int]) -> None:
    """Each list file read, recorded as what it is (it may have been dropped before the data.yaml naming it,
    and recorded as unrecognized then)."""
    for relative, generation, reference, issues in sources.read_lists:
        listed = f"{reference.named_by}'s {reference.split} list, {lines.get(relative, 0)} paths"
        summary = f"an image list ({listed}): a drop gives its images the {reference.split} split"
        layout_name = YAML_LAYOUT if reference.yaml else DARKNET_LAYOUT
        dataset_index.put_file(dataset, dataset_object(dataset, relative), generation,
                               [Issue(i.code, i.message, dataset_object(dataset, i.file)) for i in issues],
                               {"layout": layout_name, "summary": summary}, reapply_current=True)


def _entries_to_move(dataset: str, wanted: split_lists.SplitPlan) -> list[str]:
    """The ids of the entries whose split is not what the lists and folders say now (every entry is looked at:
    a plan run again after a crash cannot tell which splits an earlier run of it changed)."""
    assigned = {doc_id(key): split for key, (split, _) in wanted.assignments.items()}
    moving = []
    for entry_id, fields in dataset_index.each_entry(dataset, ["key", "split"]):
        key = fields["key"]
        split = split_lists.split_for(key, split_lists.folder_split(key), assigned.get(entry_id), wanted.rules)
        if split != fields["split"]:
            moving.append(entry_id)
    return moving


def unit(job: dict, entry_ids: list[str]) -> dict:
    """Move a unit's entries to the split the lists say now (read again in each transaction)."""
    moved = sum(dataset_index.resplit_entries(job["dataset"], entry_ids[start:start + ENTRIES_PER_TRANSACTION])
                for start in range(0, len(entry_ids), ENTRIES_PER_TRANSACTION))
    return {"moved": moved}
