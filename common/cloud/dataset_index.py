"""The Firestore index: thin transactions around the pure rules in common.entries.

Layout:
  datasets/{dataset}                      classes and the data.yaml generation
  datasets/{dataset}/images/{entry}       one entry per image stem (image + label)
  datasets/{dataset}/files/{path}         other files: data.yaml issues, unrecognized files
  datasets/{dataset}/contents/{sha256}    the entries sharing one image content

No event writes the dataset document except a data.yaml change; statistics are
aggregation queries over the entries (common.stats), exact at rest.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from common.domain import entries
from common.cloud import db
from common.platform import config
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


def dataset_ref(dataset: str):
    return db.client().collection("datasets").document(dataset)


def entries_of(dataset: str):
    return dataset_ref(dataset).collection(ENTRIES)


def files_of(dataset: str):
    return dataset_ref(dataset).collection(FILES)


def ensure_dataset(dataset: str) -> None:
    """Create the dataset document once; later events never write it."""
    if dataset in _known_datasets:
        return
    try:
        dataset_ref(dataset).create({"id": dataset, "classes": None, "yaml_generation": 0,
                                     "yaml_tombstone": 0, "created": firestore.SERVER_TIMESTAMP})
    except AlreadyExists:
        pass
    _known_datasets.add(dataset)


def read_entry(dataset: str, key: str) -> dict | None:
    snapshot = entries_of(dataset).document(doc_id(key)).get()
    return snapshot.to_dict() if snapshot.exists else None


def class_count(dataset_snapshot) -> int | None:
    classes = dataset_snapshot.get("classes") if dataset_snapshot.exists else None
    return len(classes) if classes is not None else None


def update_entry(dataset: str, key: str, split: str | None, part: str,
                 generation: int, mutate: Callable[[dict], None], deleting: bool = False) -> bool:
    """Apply `mutate` to an entry's `part` ("image" or "label") in one transaction,
    keeping duplicate groups and derived fields true. Returns False when the event
    at `generation` is stale (nothing written)."""
    db = client()
    own_ref = entries_of(dataset).document(doc_id(key))

    @firestore.transactional
    def run(transaction) -> bool:
        snapshot = own_ref.get(transaction=transaction)
        entry = snapshot.to_dict() if snapshot.exists else entries.new_entry(key, split)
        if entries.is_stale(entry, part, generation, deleting):
            return False
        before = entry["image"]
        mutate(entry)
        nc = class_count(dataset_ref(dataset).get(transaction=transaction))
        writes = _regroup_duplicates(transaction, dataset, own_ref.id, before, entry)
        writes[own_ref] = entry
        for ref, data in writes.items():
            if ref.parent.id == CONTENTS:
                _write_group(transaction, ref, data)
            else:
                transaction.set(ref, entries.derive(data, nc))
        return True

    with _entry_lock(dataset, own_ref.id):
        return run(db.transaction(max_attempts=TRANSACTION_ATTEMPTS))


def _regroup_duplicates(transaction, dataset: str, own_id: str, before: dict | None, entry: dict) -> dict:
    """Move the entry between content groups when its image changed; return the
    documents to write: changed groups and the other members whose duplicates changed."""
    after = entry["image"]
    old_member = before and (before["sha256"], before["path"])
    new_member = after and (after["sha256"], after["path"])
    if old_member == new_member:
        return {}
    contents = dataset_ref(dataset).collection(CONTENTS)
    shas = {image["sha256"] for image in (before, after) if image}
    groups = {}
    for sha in shas:
        snapshot = contents.document(sha).get(transaction=transaction)
        members = dict((snapshot.to_dict() or {}).get("members", {}))
        members.pop(own_id, None)
        if after and after["sha256"] == sha:
            members[own_id] = {"path": after["path"], "split": entry["split"]}
        groups[contents.document(sha)] = members
    writes: dict = {}
    for group_ref, members in groups.items():
        writes[group_ref] = members
        for member_id in members:
            if member_id == own_id:
                continue
            member_ref = entries_of(dataset).document(member_id)
            member = member_ref.get(transaction=transaction).to_dict()
            if member is None:  # a group never outlives its entries; be safe all the same
                continue
            entries.set_duplicates(member, member_id, members)
            writes[member_ref] = member
    own_group = groups.get(contents.document(after["sha256"])) if after else {}
    entries.set_duplicates(entry, own_id, own_group or {})
    return writes


def _write_group(transaction, ref, members: dict) -> None:
    if members:
        transaction.set(ref, {"members": members})
    else:
        transaction.delete(ref)


def rederive_entry(dataset: str, entry_id: str) -> None:
    """Recompute an entry's derived fields against the current classes."""
    ref = entries_of(dataset).document(entry_id)

    @firestore.transactional
    def run(transaction) -> None:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return
        entry = snapshot.to_dict()
        derived = entries.derive(entry, class_count(dataset_ref(dataset).get(transaction=transaction)))
        if derived != entry:
            transaction.set(ref, derived)

    with _entry_lock(dataset, entry_id):
        run(client().transaction(max_attempts=TRANSACTION_ATTEMPTS))


def revalidate_labels(dataset: str) -> int:
    """Re-derive every entry with a label, after the classes changed."""
    query = entries_of(dataset).where(filter=FieldFilter("has_label", "==", True)).select([])
    ids = [snapshot.id for snapshot in query.stream()]
    with ThreadPoolExecutor(max_workers=config.ingest_workers()) as pool:
        list(pool.map(lambda entry_id: rederive_entry(dataset, entry_id), ids))
    return len(ids)


def read_file(dataset: str, path: str) -> dict | None:
    snapshot = files_of(dataset).document(doc_id(path)).get()
    return snapshot.to_dict() if snapshot.exists else None


def put_file(dataset: str, path: str, generation: int, issues: list[Issue] | None,
             details: dict | None = None) -> bool:
    """Record a non-image, non-label file and its issues; issues None means deleted."""
    ref = files_of(dataset).document(doc_id(path))

    @firestore.transactional
    def run(transaction) -> bool:
        snapshot = ref.get(transaction=transaction)
        current = snapshot.to_dict() if snapshot.exists else {"generation": 0, "tombstone": 0}
        deleting = issues is None
        if generation <= current["tombstone"] or (
                generation < current["generation"] if deleting else generation <= current["generation"]):
            return False
        transaction.set(ref, {**_file_doc(path, generation, issues, current), **(details or {})})
        return True

    return run(client().transaction(max_attempts=TRANSACTION_ATTEMPTS))


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

    @firestore.transactional
    def run(transaction) -> bool:
        data = ref.get(transaction=transaction).to_dict() or {}
        latest = max(data.get("yaml_generation", 0), data.get("yaml_tombstone", 0))
        if generation < latest:
            return False
        deleted = issues is None
        transaction.set(ref, {
            "id": dataset, "classes": None if deleted else names,
            "yaml_generation": 0 if deleted else generation,
            "yaml_tombstone": generation if deleted else data.get("yaml_tombstone", 0),
            "updated": firestore.SERVER_TIMESTAMP}, merge=True)
        file_ref = files_of(dataset).document(doc_id(path))
        transaction.set(file_ref, _file_doc(path, generation, issues, {"generation": generation, "tombstone": 0}))
        return True

    return run(client().transaction(max_attempts=TRANSACTION_ATTEMPTS))

