"""Versions and exports in Firestore: datasets/{dataset}/versions/{v<n>} and exports/{export_id}.

A version's number is the next free one: `create` fails when another request
took it first, and the next number is tried, so numbers are never shared.
"""
from __future__ import annotations

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

from common.cloud import dataset_index, db
from common.domain import versions

MAX_NUMBER_ATTEMPTS = 20


def versions_of(dataset: str):
    return dataset_index.dataset_ref(dataset).collection("versions")


def exports():
    return db.client().collection("exports")


def create_version(dataset: str, make_document, seconds: float | None = None) -> dict:
    """Store make_document(number) under the next free version number; the document as stored."""
    for _ in range(MAX_NUMBER_ATTEMPTS):
        document = make_document(_latest_number(dataset, seconds) + 1)
        try:
            versions_of(dataset).document(document["id"]).create(document, **db.deadline(seconds))
            return document
        except AlreadyExists:
            continue
    raise RuntimeError(f"no free version number for dataset {dataset!r} after {MAX_NUMBER_ATTEMPTS} tries")


def _latest_number(dataset: str, seconds: float | None) -> int:
    newest = versions_of(dataset).order_by("number", direction=firestore.Query.DESCENDING).limit(1)
    found = [snapshot.get("number") for snapshot in newest.stream(**db.deadline(seconds))]
    return found[0] if found else 0


def read_version(dataset: str, version: str, seconds: float | None = None) -> dict | None:
    if not versions.is_version_id(version):
        return None
    found = versions_of(dataset).document(version).get(**db.deadline(seconds))
    return found.to_dict() if found.exists else None
