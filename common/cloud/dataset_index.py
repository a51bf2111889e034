"""The Firestore index of the datasets: thin transactions around the pure rules
in common.domain (entries, generations, duplicates).

Layout:
  datasets/{dataset}                      classes and the data.yaml generation
  datasets/{dataset}/images/{entry}       one entry per image stem (image + label)
  datasets/{dataset}/files/{path}         other files: data.yaml issues, unrecognized files, archives
  datasets/{dataset}/contents/{sha256}    the entries sharing one image content
  datasets/{dataset}/split_assignments/{entry}  the split an image list gives an entry (common.cloud.split_store)

No event writes the dataset document except a data.yaml change; statistics are
aggregation queries over the entries (common.cloud.stats), exact at rest.
Every read and write goes through a transaction (db.in_transaction) or carries
a deadline (db.deadline()).
"""
from __future__ import annotations

import copy
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import cast
from collections.abc import Callable, Iterator

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db, pages
from common.domain import duplicates, entries, generations, split_lists
from common.domain.entries import Entry, ImageRecord
from common.domain.issues import Issue
from common.domain.layout import doc_id
from common.platform.failures import is_transient

ENTRIES, FILES, CONTENTS, ASSIGNMENTS = "images", "files", "contents", "split_assignments"
NO_SPLIT = "none"  # what image_query's split names entries outside train, val and test by
IMAGE_SORTS = {"boxes": "n_boxes", "issues": "issue_count"}  # most first, then by id (descending)

_known_datasets: set[str] = set()

# The image and the label events of one stem update the same entry. Two
# transactions that both read it and then write it deadlock on the Firestore
# emulator until its lock timeout (seconds), and abort and retry in production.
# Serializing them within this process avoids that; correctness never depends
# on it (the transaction does).
_ENTRY_LOCKS = [threading.Lock() for _ in range(1024)]


def _entry_lock(dataset: str, entry_id: str) -> threading.Lock:
    return _ENTRY_LOCKS[hash((dataset, entry_id)) % len(_ENTRY_LOCKS)]


def datasets():
    return db.client().collection("datasets")


def dataset_ref(dataset: str):
    return datasets().document(dataset)


def entries_of(dataset: str):
    return dataset_ref(dataset).collection(ENTRIES)


def files_of(dataset: str):
    return dataset_ref(dataset).collection(FILES)


def contents_of(dataset: str):
    return dataset_ref(dataset).collection(CONTENTS)


def assignments_of(dataset: str):
    """The splits image lists give entries, by entry id (common.cloud.split_store writes them)."""
    return dataset_ref(dataset).collection(ASSIGNMENTS)


def read_dataset(dataset: str, deadline: float | None = None) -> dict | None:
    snapshot = dataset_ref(dataset).get(**db.deadline(deadline))
    return snapshot.to_dict() if snapshot.exists else None


def probe(deadline: float | None = None) -> None:
    """One cheap read (a one-document query): raises when the index does not answer."""
    datasets().limit(1).get(**db.deadline(deadline))


def read_entry(dataset: str, key: str, deadline: float | None = None) -> dict | None:
    """The entry of `key` (an image's id: its label path without .txt); None when there is none, or no entry
    could have that key (too long, or empty)."""
    try:
        entry_id = doc_id(key)
    except ValueError:
        return None
    snapshot = entries_of(dataset).document(entry_id).get(**db.deadline(deadline))
    return snapshot.to_dict() if snapshot.exists else None


def image_query(dataset: str, *, status: str | None = None, split: str | None = None, class_id: int | None = None,
                labeled: bool | None = None, has_issues: bool | None = None, has_proposals: bool | None = None,
                sort: str | None = None) -> pages.Query:
    """The dataset's entries that have an image (or, given a status, those of that status), filtered: of a
    split (NO_SPLIT: of none), with a box of a class, labelled or not, with issues or not, with proposals or
    not; in id order, or most first by `sort` (a key of IMAGE_SORTS). A sort with one filter has its index
    (infra/firestore.indexes.json)."""
    filters = [FieldFilter("has_image", "==", True) if status is None else FieldFilter("status", "==", status)]
    if split is not None:
        filters.append(FieldFilter("split", "==", None if split == NO_SPLIT else split))
    if class_id is not None:
        filters.append(FieldFilter("class_ids", "array_contains", class_id))
    if labeled is not None:
        filters.append(FieldFilter("status", "==", entries.LABELED) if labeled else
                       FieldFilter("status", "in", [entries.BACKGROUND, entries.UNLABELED]))
    if has_issues is not None:
        filters.append(FieldFilter("has_issues", "==", has_issues))
    if has_proposals is not None:
        filters.append(FieldFilter("has_proposals", "==", has_proposals))
    collection = query = entries_of(dataset)
    for field_filter in filters:
        query = query.where(filter=field_filter)
    return pages.Query(collection, query, order=(IMAGE_SORTS[sort],) if sort else (), descending=bool(sort))


def present_files(dataset: str) -> pages.Query:
    """The dataset's files that are neither images nor labels, there now."""
    collection = files_of(dataset)
    return pages.Query(collection, collection.where(filter=FieldFilter("present", "==", True)))


def issue_queries(dataset: str) -> list[pages.Query]:
    """The documents with issues (only their issues): the dataset's files' first, then its entries'."""
    return [pages.Query(collection, collection.where(filter=FieldFilter("has_issues", "==", True)).select(["issues"]))
            for collection in (files_of(dataset), entries_of(dataset))]


def is_present_file(dataset: str, path: str, deadline: float | None = None) -> bool:
    """Whether the dataset's file at `path` (neither image nor label: data.yaml, say) is there now."""
    found = db.read_fields(files_of(dataset).document(doc_id(path)), ["present"], deadline)
    return bool(found and found.get("present"))


def ensure_dataset(dataset: str) -> None:
    """Create the dataset document once; later events never write it."""
    if dataset in _known_datasets:
        return
    create_dataset(dataset)
    _known_datasets.add(dataset)


def create_dataset(dataset: str, fields: dict | None = None, deadline: float | None = None) -> bool:
    """Create the dataset document with `fields` (members, say); False when it exists."""
    try:
        dataset_ref(dataset).create({"id": dataset, "classes": None, "yaml_generation": 0, "yaml_tombstone": 0,
                                     "created": firestore.SERVER_TIMESTAMP, **(fields or {})},
                                    **db.deadline(deadline))
    except AlreadyExists:
        return False
    return True


def read_guards(wanted: list[tuple[str, str, str, str]]) -> list[Entry | None]:
    """For each (dataset, key, part, path), only what the generation guard of `part` reads (its generation
    and tombstone; for an image, those of its own file), all in one request: the cheap check before any
    download. None for an entry that does not exist."""
    fields = {f"{part}.generation" for _, _, part, _ in wanted} | {f"{part}_tombstone" for _, _, part, _ in wanted}
    images = [path for _, _, part, path in wanted if part == "image"]
    if images:
        fields |= {"image.path", "sources_kept"} | {f"image_sources.{entries.source_key(path)}" for path in images}
    refs = [entries_of(dataset).document(doc_id(key)) for dataset, key, _, _ in wanted]
    found = db.read_all(refs, field_paths=sorted(fields))
    return [_as_entry(found[ref.path]) for ref in refs]


def read_entries(dataset: str, keys: list[str]) -> dict[str, dict | None]:
    """{key: its entry, None when there is none} for the entries of `keys`, in one request."""
    refs = {key: entries_of(dataset).document(doc_id(key)) for key in keys}
    found = db.read_all(refs.values())
    return {key: found[ref.path] for key, ref in refs.items()}


def read_entry_fields(dataset: str, key: str, field_paths: list[str]) -> dict | None:
    """Only `field_paths` of the entry of `key`, in one unary read; None when there is none."""
    return db.read_fields(entries_of(dataset).document(doc_id(key)), field_paths)


def each_entry(dataset: str, field_paths: list[str], labelled: bool = False) -> Iterator[tuple[str, dict]]:
    """(entry id, {field path: value}) for every entry of the dataset (only those with a label file when
    `labelled`), streamed. No deadline: a job's plan reads a whole dataset in this one call."""
    query = entries_of(dataset)
    if labelled:
        query = query.where(filter=FieldFilter("has_label", "==", True))
    for snapshot in query.select(field_paths).stream():
        yield snapshot.id, {path: snapshot.get(path) for path in field_paths}


def _as_entry(document: dict | None) -> Entry | None:
    """An entries document as the domain reads it: Firestore hands back plain dicts."""
    return cast("Entry | None", document)


def _class_count(dataset_doc: dict | None) -> int | None:
    classes = (dataset_doc or {}).get("classes")
    return len(classes) if classes is not None else None


def _read(transaction, ref) -> dict | None:
    snapshot = ref.get(transaction=transaction, **db.deadline())
    return snapshot.to_dict() if snapshot.exists else None


@dataclass(frozen=True)
class EntryUpdate:
    applied: bool  # False: the event was stale, nothing written
    # (object name, generation) of a thumbnail no entry of the dataset shows any more: the change removed the
    # last entry with that content. Deleting it at that generation spares one a newer event wrote since.
    orphaned_thumbnail: tuple[str, int] | None = None

    def __bool__(self) -> bool:
        return self.applied


@dataclass(frozen=True)
class EntryChange:
    """One event's change to an entry's `part` ("image" or "label"): `mutate` applied unless the event at
    `generation` is stale. `content`, the sha256 the image will hold, lets the first read fetch its content
    group too; `path`, the image file the event is about, picks that file's guard."""
    dataset: str
    key: str
    split: str | None
    part: str
    generation: int
    mutate: Callable[[Entry], None]
    deleting: bool = False
    content: str | None = None
    path: str | None = None


def update_entries(changes: list[EntryChange]) -> list[EntryUpdate | Exception]:
    """Apply `changes` in order, in one transaction: one batched read of every entry, dataset and likely content
    group, one commit, duplicate groups and derived fields kept true. A change whose `mutate` raises is left
    out and its exception returned in its place. A transient failure raises (nothing is written); any other
    failure of the whole transaction (a commit too large, say) applies the changes one by one instead, so only
    the change at fault fails."""
    if not changes:
        return []
    try:
        with _entry_locks({(c.dataset, doc_id(c.key)) for c in changes}):
            return db.in_transaction(lambda transaction: _apply(transaction, changes))
    except Exception as error:
        if len(changes) == 1 or is_transient(error):
            raise
        return [_one(change) for change in changes]


def _one(change: EntryChange) -> EntryUpdate | Exception:
    try:
        return update_entries([change])[0]
    except Exception as error:
        return error


@contextmanager
def _entry_locks(entry_ids: set[tuple[str, str]]):
    """The in-process locks of these entries, taken in one order (a lock may stand for several entries)."""
    locks = sorted({id(lock): lock for lock in (_entry_lock(*entry) for entry in entry_ids)}.items())
    with ExitStack() as stack:
        for _, lock in locks:
            stack.enter_context(lock)
        yield


class _Documents:
    """The documents a transaction has read, as the changes applied so far leave them; written at the end
    (a Firestore transaction reads before it writes)."""

    def __init__(self, transaction):
        self.transaction = transaction
        self.docs: dict[str, dict | None] = {}
        self.refs: dict[str, object] = {}
        self.dirty: set[str] = set()

    def read(self, refs) -> dict[str, dict | None]:
        """{path: document} of `refs`, fetching those not read yet in one request."""
        refs = list(refs)
        missing = {ref.path: ref for ref in refs if ref.path not in self.docs}
        if missing:
            self.docs.update(db.read_all(missing.values(), self.transaction))
            self.refs.update(missing)
        return {ref.path: self.docs[ref.path] for ref in refs}

    def put(self, ref, data: dict | None) -> None:
        """Replace (None: delete) the document at the end."""
        self.docs[ref.path], self.refs[ref.path] = data, ref
        self.dirty.add(ref.path)

    def flush(self) -> None:
        for path in sorted(self.dirty):
            if self.docs[path] is None:
                self.transaction.delete(self.refs[path])
            else:
                self.transaction.set(self.refs[path], self.docs[path])


def _apply(transaction, changes: list[EntryChange]) -> list[EntryUpdate | Exception]:
    documents = _Documents(transaction)
    documents.read(ref for change in changes for ref in _first_reads(change))  # one request for all
    documents.read(ref for change in changes for ref in _assignment_reads(documents, change))  # and one more
    results = [_apply_change(documents, change) for change in changes]
    documents.flush()
    return [_unless_regained(documents, result, group) for result, group in results]


def _first_reads(change: EntryChange) -> list:
    return ([entries_of(change.dataset).document(doc_id(change.key)), dataset_ref(change.dataset)]
            + ([contents_of(change.dataset).document(change.content)] if change.content else []))


def _assignment_reads(documents: _Documents, change: EntryChange) -> list:
    """The split assignment of an entry the change creates, when image lists gave the dataset any: read in the
    transaction, so that one written after this read (common.services.resplit) makes the transaction retry."""
    own_ref = entries_of(change.dataset).document(doc_id(change.key))
    dataset_doc = documents.docs.get(dataset_ref(change.dataset).path) or {}
    if documents.docs.get(own_ref.path) is not None or not dataset_doc.get("split_assignments"):
        return []
    return [assignments_of(change.dataset).document(own_ref.id)]


def _new_entry_split(documents: _Documents, change: EntryChange) -> str | None:
    """The split of a new entry: its image list's, its folder's, or a folder rule of data.yaml's."""
    dataset_doc = documents.read([dataset_ref(change.dataset)])[dataset_ref(change.dataset).path] or {}
    assigned = None
    if dataset_doc.get("split_assignments"):
        ref = assignments_of(change.dataset).document(doc_id(change.key))
        assigned = (documents.read([ref])[ref.path] or {}).get("split")
    return split_lists.split_for(change.key, change.split, assigned, dataset_doc.get("split_rules") or [])


def _apply_change(documents: _Documents, change: EntryChange) -> tuple[EntryUpdate | Exception, str | None]:
    """The change's result, and the path of the content group whose thumbnail it orphaned."""
    own_ref = entries_of(change.dataset).document(doc_id(change.key))
    stored = _as_entry(documents.read([own_ref])[own_ref.path])
    entry = copy.deepcopy(stored) if stored else entries.new_entry(change.key, _new_entry_split(documents, change))
    if entries.is_stale(entry, change.part, change.generation, change.deleting, change.path):
        return EntryUpdate(False), None
    before = entry["image"]
    try:
        change.mutate(entry)
    except Exception as error:
        return error, None
    groups, members = _regroup_duplicates(documents, change.dataset, own_ref.id, before, entry)
    for sha, group in groups.items():
        documents.put(contents_of(change.dataset).document(sha), {"members": group} if group else None)
    dataset_doc = dataset_ref(change.dataset)
    class_count = _class_count(documents.read([dataset_doc])[dataset_doc.path])
    for ref, member in {**members, own_ref: entry}.items():
        documents.put(ref, entries.derive(member, class_count))
    orphan = _orphaned_thumbnail(before, groups, entry)
    return EntryUpdate(True, orphan), (contents_of(change.dataset).document(before["sha256"]).path
                                       if orphan and before else None)


def _unless_regained(documents: _Documents, result: EntryUpdate | Exception, group: str | None):
    """A thumbnail orphaned by one change is not one when a later change of the batch took its content (whose
    group document is at `group`) again."""
    if group and (documents.docs.get(group) or {}).get("members"):
        return EntryUpdate(True)
    return result


def _orphaned_thumbnail(before: ImageRecord | None, groups: dict, entry: Entry) -> tuple[str, int] | None:
    """The thumbnail of the content the entry showed before, when the change left that content's group empty
    (and no other image file of the entry's name holds it, to be shown should the newest go)."""
    if not before or groups.get(before.get("sha256"), True):  # untouched (absent) or still with members
        return None
    if any(source["held"] and source["record"]["sha256"] == before["sha256"]
           for source in entries.image_sources(entry).values()):
        return None
    thumbnail, generation = before.get("thumbnail"), before.get("thumbnail_generation")
    if thumbnail and generation:
        return thumbnail, int(generation)
    return None  # indexed before thumbnails recorded their generation: left alone


def _regroup_duplicates(documents: _Documents, dataset: str, own_id: str, before: ImageRecord | None,
                        entry: Entry) -> tuple[dict, dict]:
    """Read the content groups an image change touches (those not read already) and apply the pure rule:
    returns the groups to write and the other member entries whose duplicates changed."""
    shas = duplicates.touched_groups(before, entry["image"])
    return _regroup(documents, dataset, own_id, entry, shas) if shas else ({}, {})


def _regroup(documents: _Documents, dataset: str, own_id: str, entry: Entry, shas: set[str]) -> tuple[dict, dict]:
    """The content groups `shas` with the entry moved into its current content's group (at its current split),
    and the other member entries with their duplicates learnt again."""
    group_refs = {sha: contents_of(dataset).document(sha) for sha in shas}
    read = documents.read(group_refs.values())
    groups = duplicates.move_member({sha: (read[ref.path] or {}).get("members", {}) for sha, ref in group_refs.items()},
                                    own_id, entry["image"], entry["split"])
    member_groups = {entries_of(dataset).document(member_id): group
                     for group in groups.values() for member_id in group.keys() - {own_id}}
    read_members = documents.read(member_groups) if member_groups else {}
    members = {}
    for ref, group in member_groups.items():
        member = copy.deepcopy(_as_entry(read_members[ref.path]))
        if member is not None:  # a group never outlives its entries; be safe all the same
            duplicates.set_duplicates(member, ref.id, group)
            members[ref] = member
    own_group = groups.get(entry["image"]["sha256"], {}) if entry["image"] else {}
    duplicates.set_duplicates(entry, own_id, own_group)
    return groups, members


def resplit_entries(dataset: str, entry_ids: list[str]) -> int:
    """Give each entry the split the dataset's lists and its folders say now (split_lists.split_for), in one
    transaction that reads the entries, their assignments and the dataset document; each entry's content group
    and the group's other members (the split of each member, split_leakage) kept true. How many moved."""
    if not entry_ids:
        return 0
    with _entry_locks({(dataset, entry_id) for entry_id in entry_ids}):
        return db.in_transaction(lambda transaction: _resplit(transaction, dataset, entry_ids))


def _current_split(entry: Entry, assignment: dict | None, dataset_doc: dict) -> str | None:
    assigned = (assignment or {}).get("split") if dataset_doc.get("split_assignments") else None
    return split_lists.split_for(entry["key"], split_lists.folder_split(entry["key"]), assigned,
                                 dataset_doc.get("split_rules") or [])


def _resplit(transaction, dataset: str, entry_ids: list[str]) -> int:
    documents = _Documents(transaction)
    own_refs = [entries_of(dataset).document(entry_id) for entry_id in entry_ids]
    assignment_refs = [assignments_of(dataset).document(entry_id) for entry_id in entry_ids]
    read = documents.read([*own_refs, *assignment_refs, dataset_ref(dataset)])
    dataset_doc = read[dataset_ref(dataset).path] or {}
    moved = 0
    for own_ref, assignment_ref in zip(own_refs, assignment_refs):
        entry = copy.deepcopy(_as_entry(documents.docs[own_ref.path]))
        split = _current_split(entry, documents.docs[assignment_ref.path], dataset_doc) if entry else None
        if entry is None or split == entry.get("split"):
            continue
        entry["split"] = split
        image = entry.get("image")
        shas = {image["sha256"]} if image else set()
        groups, members = _regroup(documents, dataset, own_ref.id, entry, shas) if shas else ({}, {})
        for sha, group in groups.items():
            documents.put(contents_of(dataset).document(sha), {"members": group} if group else None)
        for ref, member in {**members, own_ref: entry}.items():
            documents.put(ref, entries.derive(member, _class_count(dataset_doc)))
        moved += 1
    documents.flush()
    return moved


def rederive_entry(dataset: str, entry_id: str) -> None:
    """Recompute an entry's derived fields against the current classes."""
    ref = entries_of(dataset).document(entry_id)

    def work(transaction) -> None:
        read = db.read_all([ref, dataset_ref(dataset)], transaction)
        entry = _as_entry(read[ref.path])
        if entry is None:
            return
        derived = entries.derive(entry, _class_count(read[dataset_ref(dataset).path]))
        if derived != entry:
            transaction.set(ref, derived)

    with _entry_lock(dataset, entry_id):
        db.in_transaction(work)


def read_file(dataset: str, path: str) -> dict | None:
    snapshot = files_of(dataset).document(doc_id(path)).get(**db.deadline())
    return snapshot.to_dict() if snapshot.exists else None


def is_stale_file(record: dict | None, generation: int, deleting: bool = False, reapply_current: bool = False) -> bool:
    return record is not None and generations.is_stale(generation, record["generation"], record["tombstone"], deleting,
                                                       reapply_current)


def put_file(dataset: str, path: str, generation: int, issues: list[Issue] | None,
             details: dict | None = None, reapply_current: bool = False) -> bool:
    """Record a non-image, non-label file and its issues; issues None means deleted. `reapply_current`: the
    generation recorded may be recorded again (what a job learnt of it since). Returns False for a stale event."""
    ref = files_of(dataset).document(doc_id(path))

    def work(transaction) -> bool:
        current = _read(transaction, ref) or {"generation": 0, "tombstone": 0}
        if reapply_current and current["tombstone"] >= generation:
            return False  # deleted since: never recorded present again
        if is_stale_file(current, generation, deleting=issues is None, reapply_current=reapply_current):
            return False
        transaction.set(ref, {**_file_doc(path, generation, issues, current), **(details or {})})
        return True

    return db.in_transaction(work)


def _file_doc(path: str, generation: int, issues: list[Issue] | None, current: dict) -> dict:
    deleted = issues is None
    stored = [i.to_dict() for i in issues or []]
    return {"path": path, "present": not deleted,
            "generation": current["generation"] if deleted else generation,
            "tombstone": generation if deleted else current["tombstone"],
            "issues": stored, "issue_count": len(stored), "has_issues": bool(stored)}


def put_data_yaml(dataset: str, path: str, generation: int, names: list[str] | None,
                  issues: list[Issue] | None) -> bool:
    """Set the dataset's classes from data.yaml (issues None: the file was deleted).
    Returns False for a stale event. Re-applying the current generation returns
    True so a retried event still revalidates the labels."""
    ref = dataset_ref(dataset)
    deleted = issues is None

    def work(transaction) -> bool:
        data = _read(transaction, ref) or {}
        if generations.is_stale(generation, data.get("yaml_generation", 0), data.get("yaml_tombstone", 0),
                                deleted, reapply_current=True):
            return False
        transaction.set(ref, {
            "id": dataset, "classes": None if deleted else names,
            "yaml_generation": 0 if deleted else generation,
            "yaml_tombstone": generation if deleted else data.get("yaml_tombstone", 0),
            "updated": firestore.SERVER_TIMESTAMP}, merge=True)
        file_ref = files_of(dataset).document(doc_id(path))
        transaction.set(file_ref, _file_doc(path, generation, issues, {"generation": generation, "tombstone": 0}))
        return True

    return db.in_transaction(work)
