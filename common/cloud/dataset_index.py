"""The Firestore index of the datasets: thin transactions around the pure rules
in common.domain (entries, generations, duplicates).

Layout:
  datasets/{dataset}                      classes and the data.yaml generation
  datasets/{dataset}/images/{entry}       one entry per image stem (image + label)
  datasets/{dataset}/files/{path}         other files: data.yaml issues, unrecognized files, archives
  datasets/{dataset}/contents/{sha256}    the entries sharing one image content

No event writes the dataset document except a data.yaml change; statistics are
aggregation queries over the entries (common.cloud.stats), exact at rest.
Every read and write goes through a transaction (db.in_transaction) or carries
a deadline (db.deadline()).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import db
from common.domain import duplicates, entries, generations
from common.domain.entries import Entry
from common.domain.issues import Issue
from common.domain.layout import doc_id

ENTRIES, FILES, CONTENTS = "images", "files", "contents"

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


def read_generations(dataset: str, key: str, part: str, path: str | None = None) -> Entry | None:
    """Only what the generation guard of `part` reads (its generation and tombstone; for an image, those of
    its own file), in one unary call: the cheap check before any download."""
    fields = [f"{part}.generation", f"{part}_tombstone"]
    if part == "image" and path is not None:
        fields += ["image.path", "sources_kept", f"image_sources.{entries.source_key(path)}"]
    return db.read_fields(entries_of(dataset).document(doc_id(key)), fields)


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


def update_entry(dataset: str, key: str, split: str | None, part: str, generation: int,
                 mutate: Callable[[Entry], None], deleting: bool = False, content: str | None = None,
                 path: str | None = None) -> EntryUpdate:
    """Apply `mutate` to an entry's `part` ("image" or "label") in one transaction,
    keeping duplicate groups and derived fields true. Not applied when the event
    at `generation` is stale (nothing written). `content`, the sha256 the image will
    hold, lets the first read of the transaction fetch its content group too; `path`,
    the image file the event is about, picks that file's guard."""
    own_ref = entries_of(dataset).document(doc_id(key))
    first_reads = [own_ref, dataset_ref(dataset)] + ([contents_of(dataset).document(content)] if content else [])

    def work(transaction) -> EntryUpdate:
        read = db.read_all(first_reads, transaction)  # the entry, the classes and the likely group: one request
        entry = read[own_ref.path] or entries.new_entry(key, split)
        if entries.is_stale(entry, part, generation, deleting, path):
            return EntryUpdate(False)
        before = entry["image"]
        mutate(entry)
        groups, members = _regroup_duplicates(transaction, dataset, own_ref.id, before, entry, read)
        for sha, group in groups.items():
            _write_group(transaction, contents_of(dataset).document(sha), group)
        class_count = _class_count(read[dataset_ref(dataset).path])
        for ref, member in {**members, own_ref: entry}.items():
            db.put(transaction, ref, entries.derive(member, class_count))
        return EntryUpdate(True, _orphaned_thumbnail(before, groups, entry))

    with _entry_lock(dataset, own_ref.id):
        return db.in_transaction(work)


def _orphaned_thumbnail(before: dict | None, groups: dict, entry: Entry) -> tuple[str, int] | None:
    """The thumbnail of the content the entry showed before, when the change left that content's group empty
    (and no other image file of the entry's name holds it, to be shown should the newest go)."""
    if not before or groups.get(before.get("sha256"), True):  # untouched (absent) or still with members
        return None
    if any(source["held"] and source["record"]["sha256"] == before["sha256"]
           for source in entries.image_sources(entry).values()):
        return None
    if before.get("thumbnail") and before.get("thumbnail_generation"):
        return before["thumbnail"], int(before["thumbnail_generation"])
    return None  # indexed before thumbnails recorded their generation: left alone


def _regroup_duplicates(transaction, dataset: str, own_id: str, before, entry: Entry,
                        read: dict[str, dict | None]) -> tuple[dict, dict]:
    """Read the content groups an image change touches (those not in `read` already)
    and apply the pure rule: returns the groups to write and the other member entries
    whose duplicates changed."""
    shas = duplicates.touched_groups(before, entry["image"])
    if not shas:
        return {}, {}
    group_refs = {sha: contents_of(dataset).document(sha) for sha in shas}
    missing = [ref for ref in group_refs.values() if ref.path not in read]
    read = {**read, **(db.read_all(missing, transaction) if missing else {})}
    groups = duplicates.move_member({sha: (read[ref.path] or {}).get("members", {}) for sha, ref in group_refs.items()},
                                    own_id, entry["image"], entry["split"])
    member_groups = {entries_of(dataset).document(member_id): group
                     for group in groups.values() for member_id in group.keys() - {own_id}}
    read_members = db.read_all(member_groups, transaction) if member_groups else {}
    members = {}
    for ref, group in member_groups.items():
        member = read_members[ref.path]
        if member is not None:  # a group never outlives its entries; be safe all the same
            duplicates.set_duplicates(member, ref.id, group)
            members[ref] = member
    own_group = groups.get(entry["image"]["sha256"], {}) if entry["image"] else {}
    duplicates.set_duplicates(entry, own_id, own_group)
    return groups, members


def _write_group(transaction, ref, members: duplicates.Members) -> None:
    if members:
        db.put(transaction, ref, {"members": members})
    else:
        transaction.delete(ref)


def rederive_entry(dataset: str, entry_id: str) -> None:
    """Recompute an entry's derived fields against the current classes."""
    ref = entries_of(dataset).document(entry_id)

    def work(transaction) -> None:
        read = db.read_all([ref, dataset_ref(dataset)], transaction)
        entry = read[ref.path]
        if entry is None:
            return
        derived = entries.derive(entry, _class_count(read[dataset_ref(dataset).path]))
        if derived != entry:
            db.put(transaction, ref, derived)

    with _entry_lock(dataset, entry_id):
        db.in_transaction(work)


def read_file(dataset: str, path: str) -> dict | None:
    snapshot = files_of(dataset).document(doc_id(path)).get(**db.deadline())
    return snapshot.to_dict() if snapshot.exists else None


def is_stale_file(record: dict | None, generation: int, deleting: bool = False) -> bool:
    return record is not None and generations.is_stale(generation, record["generation"], record["tombstone"], deleting)


def put_file(dataset: str, path: str, generation: int, issues: list[Issue] | None,
             details: dict | None = None) -> bool:
    """Record a non-image, non-label file and its issues; issues None means deleted.
    Returns False for a stale event."""
    ref = files_of(dataset).document(doc_id(path))

    def work(transaction) -> bool:
        current = _read(transaction, ref) or {"generation": 0, "tombstone": 0}
        if is_stale_file(current, generation, deleting=issues is None):
            return False
        transaction.set(ref, {**_file_doc(path, generation, issues, current), **(details or {})})
        return True

    return db.in_transaction(work)


def _file_doc(path: str, generation: int, issues: list[Issue] | None, current: dict) -> dict:
    deleted = issues is None
    issues = [i.to_dict() for i in issues or []]
    return {"path": path, "present": not deleted,
            "generation": current["generation"] if deleted else generation,
            "tombstone": generation if deleted else current["tombstone"],
            "issues": issues, "issue_count": len(issues), "has_issues": bool(issues)}


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
