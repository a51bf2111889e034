"""What a dataset's image lists say, in Firestore (common.domain.split_lists; written by common.services.resplit,
read by ingest when it creates an entry: common.cloud.dataset_index):

  datasets/{dataset}                   split_sources: the list files its data.yaml and obj.data name (a change
                                       of one starts a resplit); split_rules: [{"prefix", "split"}];
                                       split_assignments: how many assignment documents there are (0: ingest
                                       reads none); split_lists: what the last resplit read, for people
  datasets/{dataset}/split_assignments/{entry id}   {key, split, source, job}
"""
from __future__ import annotations

from google.cloud import firestore

from common.cloud import db
from common.cloud.dataset_index import assignments_of, dataset_ref
from common.domain.layout import doc_id

WRITES_PER_BATCH = 400  # under Firestore's 500 writes a commit
STATE_FIELDS = ["split_sources", "split_rules", "split_assignments"]


def state(dataset: str) -> dict:
    """The dataset document's split fields ({} when it has none, or no document)."""
    return db.read_fields(dataset_ref(dataset), STATE_FIELDS) or {}


def has_lists(dataset_state: dict) -> bool:
    """Whether a resplit ever read lists for the dataset (a change of its data.yaml then starts one again)."""
    return any(dataset_state.get(name) for name in STATE_FIELDS)


def record_sources(dataset: str, object_names: list[str]) -> None:
    dataset_ref(dataset).set({"split_sources": sorted(set(object_names))}, merge=True, **db.deadline())


def record_rules(dataset: str, rules: list[dict], assignments: int, summary: dict) -> None:
    """The folder rules and the count of assignments (the flag ingest reads), in one write."""
    dataset_ref(dataset).set({"split_rules": rules, "split_assignments": assignments, "split_lists": summary,
                              "updated": firestore.SERVER_TIMESTAMP}, merge=True, **db.deadline())


def assignments(dataset: str) -> dict[str, dict]:
    """{entry id: {key, split, source}} of every assignment document."""
    return {snapshot.id: snapshot.to_dict() for snapshot in
            assignments_of(dataset).select(["key", "split", "source"]).stream(**db.deadline())}


def replace_assignments(dataset: str, wanted: dict[str, tuple[str, str]], job_id: str) -> int:
    """Make the assignment documents equal `wanted` {key: (split, list file)}: write those that differ, delete
    the rest, in batches. How many documents were written or deleted."""
    current = assignments(dataset)
    documents = {doc_id(key): {"key": key, "split": split, "source": source}
                 for key, (split, source) in wanted.items()}
    writes: list[tuple[str, dict | None]] = [(entry_id, document) for entry_id, document in documents.items()
                                             if current.get(entry_id) != document]
    writes += [(entry_id, None) for entry_id in current.keys() - documents.keys()]
    for start in range(0, len(writes), WRITES_PER_BATCH):
        batch = db.client().batch()
        for entry_id, document in writes[start:start + WRITES_PER_BATCH]:
            ref = assignments_of(dataset).document(entry_id)
            if document is None:
                batch.delete(ref)
            else:
                batch.set(ref, {**document, "job": job_id})
        batch.commit(**db.deadline())
    return len(writes)
