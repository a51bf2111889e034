"""Every listing of a dataset's images that Firestore can only serve from a composite index has that index in
infra/firestore.indexes.json (the emulator needs none, so no integration test would notice one missing). The
query shapes come from the listing's own code, built on a client that never connects."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from common.api import pagination
from common.api.resources import images, jobs
from common.services import jobs as jobs_kernel, watch_versions

CLIENT = firestore.Client(project="indexes", credentials=AnonymousCredentials())
INDEXES = json.loads((Path(__file__).resolve().parents[2] / "infra" / "firestore.indexes.json").read_text())
ONE_OF_EACH = {"split": "val", "class": "bus", "labeled": True, "has_issues": True, "status": "labeled",
               "has_proposals": False}


def declared(group: str = "images", scope: str = "COLLECTION") -> set[tuple]:
    return {(frozenset(_index_field(f) for f in index["fields"][:-1]), _index_field(index["fields"][-1]))
            for index in INDEXES["indexes"]
            if index["collectionGroup"] == group and index.get("queryScope", "COLLECTION") == scope}


def _index_field(field: dict) -> tuple[str, str]:
    return field["fieldPath"], field.get("order") or field["arrayConfig"]


def needed(query) -> tuple:
    """(the filtered fields, the first ordered field), as an index names them."""
    kind = {"EQUAL": "ASCENDING", "IN": "ASCENDING", "ARRAY_CONTAINS": "CONTAINS"}
    filtered = frozenset((f.field.field_path, kind[f.op.name]) for f in query._field_filters)
    order = query._orders[0]
    return filtered, (order.field.field_path, order.direction.name)


def listing(filter_name: str | None, sort: str | None):
    collection = CLIENT.collection("images")
    args = {param.name: None for param in images.FILTERS}
    if filter_name:
        args[filter_name] = ONE_OF_EACH[filter_name]
    query = images._filtered(collection, args, ["person", "bus", "tie"])
    order = (images.SORTS[sort],) if sort else ()
    return pagination.Source(collection, query, order=order, descending=bool(sort))._ordered()


@pytest.mark.parametrize("sort", sorted(images.SORTS))
@pytest.mark.parametrize("filter_name", [None, *ONE_OF_EACH])
def test_each_sort_with_at_most_one_filter_has_its_index(filter_name, sort):
    assert needed(listing(filter_name, sort)) in declared(), (filter_name, sort)


def test_the_filters_named_here_are_every_filter_of_the_listing():
    assert set(ONE_OF_EACH) == {param.name for param in images.FILTERS}


# GET /jobs: each family of job documents, as this client names it (a version lives in its dataset's subcollection)
JOB_COLLECTIONS = {"training": ("training_jobs", False), "import": ("imports", False), "export": ("exports", False),
                   "version": ("versions", True), "revalidate": ("dataset_jobs", False)}


@pytest.mark.parametrize("active", [None, True, False])
@pytest.mark.parametrize("datasets", [None, ["a", "b"]])
@pytest.mark.parametrize("family", jobs.FAMILIES, ids=lambda family: family.kinds[0])
def test_every_shape_of_the_job_list_has_its_index(family, datasets, active):
    group, across_datasets = JOB_COLLECTIONS[family.kinds[0]]
    family = dataclasses.replace(family, collection=lambda: (CLIENT.collection_group if across_datasets
                                                             else CLIENT.collection)(group))
    scope = "COLLECTION_GROUP" if across_datasets else "COLLECTION"
    for kind in {None, family.kinds[-1]}:
        for query in jobs.queries(family, kind, datasets, active):
            filtered, order = needed(jobs.newest_first(query, 10))
            assert (filtered == frozenset() and not across_datasets) or (filtered, order) in declared(group, scope), \
                (kind, filtered)


def test_the_watchs_query_over_every_datasets_versions_has_its_index():
    """A collection group has no automatic single-field index: the watch's sweep over versions needs one declared."""
    waiting = dataclasses.replace(
        watch_versions.WAITING, collection=lambda: watch_versions.newest_first(CLIENT.collection_group("versions")))
    assert needed(jobs_kernel.waiting_query(waiting)) in declared("versions", "COLLECTION_GROUP")
