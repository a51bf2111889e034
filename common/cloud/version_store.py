"""Versions and exports in Firestore: datasets/{dataset}/versions/{v<n>} and exports/{export_id}.

A version's number is the next free one: `create` fails when another request
took it first, and the next number is tried, so numbers are never shared.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

from collections.abc import Callable

from common.cloud import dataset_index, db, job_store, pages
from common.domain import jobs as kernel
from common.domain import versions

MAX_NUMBER_ATTEMPTS = 20


def versions_of(dataset: str):
    return dataset_index.dataset_ref(dataset).collection("versions")


def every_version():
    """Every dataset's versions (a collection-group query)."""
    return db.client().collection_group("versions")


def versions_listed(dataset: str) -> pages.Query:
    """The dataset's versions, newest (the highest number) first."""
    return pages.Query(versions_of(dataset), order=("number",), descending=True)


def versions_newest_first(datasets: Sequence[str] | None = None, statuses: Sequence[str] = ()) -> pages.Query:
    """Versions of these datasets (None: of every one), newest first (pages.newest_first): a collection group
    query, which a composite index serves only with a filter (infra/firestore.indexes.json)."""
    return pages.newest_first(every_version(), datasets, statuses)


def exports_newest_first(datasets: Sequence[str] | None = None, statuses: Sequence[str] = ()) -> pages.Query:
    return pages.newest_first(exports(), datasets, statuses)


def record_export(document: dict, seconds: float | None = None) -> dict:
    """The export as stored: `document` when recorded now, else the one of its id recorded before (a retried
    request)."""
    return job_store.create(exports(), document, seconds)


def read_export(export_id: str, seconds: float | None = None) -> dict | None:
    found = exports().document(export_id).get(**db.deadline(seconds))
    return found.to_dict() if found.exists else None


def version_request(dataset: str, requested_by: str, request_id: str):
    """The document that names the one version a person's request_id ever gets."""
    key = hashlib.sha256(f"{requested_by}\0{request_id}".encode()).hexdigest()[:32]
    return dataset_index.dataset_ref(dataset).collection("version_requests").document(key)


def newest_first(every):
    """Versions newest first: a collection group has no automatic single-field index, and this shape (status in,
    newest first) has the index GET /jobs uses (infra/firestore.indexes.json)."""
    return every.order_by("created_at", direction=firestore.Query.DESCENDING)


def every_version_newest_first():
    return newest_first(every_version())


def update_version(dataset: str, version: str, fields: dict) -> None:
    versions_of(dataset).document(version).update(fields, **db.deadline())


def exports():
    return db.client().collection("exports")


def export_request(export_id: str):
    """The export's document as what asks for a version (create_version's `request`)."""
    return exports().document(export_id)


def claim_export(export_id: str, lease: kernel.Lease, holder: str, allows: Callable[[dict], bool],
                 taking: Callable[[dict], dict]) -> job_store.Claim:
    """The export's claim for `holder` (common.cloud.job_store.claim): LeaseHeld while another holder's runs."""
    return job_store.claim_job(exports(), export_id, lease, holder, allows, taking)


def update_export(export_id: str, fields: dict) -> None:
    exports().document(export_id).update(fields, **db.deadline())


def export_status(export_id: str) -> str | None:
    """The export's status, read alone; None when there is no export."""
    return (db.read_fields(exports().document(export_id), ["status"]) or {}).get("status")


def settle_export(export_id: str, fields: dict) -> str | None:
    """Write `fields` on the export unless it has ended (a cancel, or another delivery, was first), in one
    transaction: None when written, else the state it had ended in."""
    ref = exports().document(export_id)

    def work(transaction) -> str | None:
        status = ref.get(["status"], transaction=transaction, **db.deadline()).get("status")
        if status in kernel.FINAL:  # an export's states are the kernel's (common.domain.exports)
            return status
        transaction.update(ref, fields)
        return None
    return db.in_transaction(work)


def create_version(dataset: str, make_document, seconds: float | None = None, request=None) -> dict:
    """Store make_document(number) under the next free version number; the document as stored. With
    `request` (the document of what asks for it, an export), the version is made and named in the request's
    `version` field in one transaction, and a request that names one already gets that one ({"id"} only):
    one version per request, whatever crashed or was delivered again."""
    for _ in range(MAX_NUMBER_ATTEMPTS):
        document = make_document(_latest_number(dataset, seconds) + 1)
        try:
            if request is not None:
                return _create_for(request, document)
            versions_of(dataset).document(document["id"]).create(document, **db.deadline(seconds))
            return document
        except AlreadyExists:
            continue
    raise RuntimeError(f"no free version number for dataset {dataset!r} after {MAX_NUMBER_ATTEMPTS} tries")


def _create_for(request, document: dict) -> dict:
    ref = versions_of(document["dataset"]).document(document["id"])

    def work(transaction) -> dict:
        found = db.read_all([request, ref], transaction)
        named = (found[request.path] or {}).get("version")
        if named:
            return {"id": named}
        if found[ref.path] is not None:
            raise AlreadyExists(f"version {document['id']} was taken")
        transaction.create(ref, document)
        transaction.set(request, {"version": document["id"]}, merge=True)
        return document
    return db.in_transaction(work)


def _latest_number(dataset: str, seconds: float | None) -> int:
    newest = versions_of(dataset).order_by("number", direction=firestore.Query.DESCENDING).limit(1)
    found = [snapshot.get("number") for snapshot in newest.stream(**db.deadline(seconds))]
    return found[0] if found else 0


def read_version(dataset: str, version: str, seconds: float | None = None) -> dict | None:
    if not versions.is_version_id(version):
        return None
    found = versions_of(dataset).document(version).get(**db.deadline(seconds))
    return found.to_dict() if found.exists else None
