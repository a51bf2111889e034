"""Every listing of a dataset's images that Firestore can only serve from a composite index has that index in
infra/firestore.indexes.json (the emulator needs none, so no integration test would notice one missing). The
query shapes come from the stores' own code, built on a client that never connects."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from common.api.resources import images, jobs
from common.cloud import clients, job_store, pages, version_store
from common.services import watch_versions

CLIENT = firestore.Client(project="indexes", credentials=AnonymousCredentials())
INDEXES = json.loads((Path(__file__).resolve().parents[2] / "infra" / "firestore.indexes.json").read_text())
ONE_OF_EACH = {"split": "val", "class": "bus", "labeled": True, "has_issues": True, "status": "labeled",
               "has_proposals": False}


@pytest.fixture(autouse=True)
def offline_client():
    clients.use("firestore", CLIENT)
    yield
    clients.reset()


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
    args = {**{param.name: None for param in images.FILTERS}, "sort": sort}
    if filter_name:
        args[filter_name] = ONE_OF_EACH[filter_name]
    return images.image_query("a-dataset", args, ["person", "bus", "tie"]).ordered()


@pytest.mark.parametrize("sort", sorted(images.SORTS))
@pytest.mark.parametrize("filter_name", [None, *ONE_OF_EACH])
def test_each_sort_with_at_most_one_filter_has_its_index(filter_name, sort):
    assert needed(listing(filter_name, sort)) in declared(), (filter_name, sort)


def test_the_filters_named_here_are_every_filter_of_the_listing():
    assert set(ONE_OF_EACH) == {param.name for param in images.FILTERS}


def group_of(query) -> tuple[str, str]:
    """(the collection id, the index's query scope) a query reads."""
    return query._parent.id, "COLLECTION_GROUP" if query._all_descendants else "COLLECTION"


@pytest.mark.parametrize("active", [None, True, False])
@pytest.mark.parametrize("datasets", [None, ["a", "b"]])
@pytest.mark.parametrize("family", jobs.FAMILIES, ids=lambda family: family.kinds[0])
def test_every_shape_of_the_job_list_has_its_index(family, datasets, active):
    for kind in {None, family.kinds[-1]}:
        for query in jobs.queries(family, kind, datasets, active):
            group, scope = group_of(query.ordered())
            filtered, order = needed(query.ordered())
            assert (filtered == frozenset() and scope == "COLLECTION") or (filtered, order) in declared(group, scope), \
                (kind, filtered)


def test_a_version_is_listed_across_datasets_from_its_collection_group():
    """What makes the test above hold an index for it: versions live in each dataset's subcollection."""
    version_family = jobs.BY_KIND["version"]
    assert {group_of(query.ordered()) for query in jobs.queries(version_family, None, None, None)} == \
        {("versions", "COLLECTION_GROUP")}


def filter_values(query, field: str) -> list[str] | None:
    """The values of the query's `in` filter on `field`; None without one."""
    found = [f for f in query._field_filters if f.field.field_path == field]
    return [value.string_value for value in found[0].value.array_value.values] if found else None


@pytest.mark.parametrize("active", [None, True])
@pytest.mark.parametrize("family", jobs.FAMILIES, ids=lambda family: family.kinds[0])
def test_a_list_of_more_datasets_than_one_query_serves_asks_in_groups_that_name_each_once(family, active):
    """Firestore serves at most 30 disjunctions in a query: the datasets of an `in` times the statuses of another."""
    datasets = [f"dataset-{n}" for n in range(70)]
    queries = [query.ordered() for query in jobs.queries(family, None, datasets, active)]
    groups = [filter_values(query, "dataset") or [] for query in queries]
    assert sorted(name for group in groups for name in group) == sorted(datasets) and len(groups) > 2
    for query, group in zip(queries, groups):
        assert len(group) * len(filter_values(query, "status") or [None]) <= pages.MAX_DISJUNCTIONS


def test_the_watchs_query_over_every_datasets_versions_has_its_index():
    """A collection group has no automatic single-field index: the watch's sweep over versions needs one declared."""
    waiting = dataclasses.replace(
        watch_versions.WAITING, source=lambda: version_store.newest_first(CLIENT.collection_group("versions")))
    assert needed(job_store.status_query(waiting.source(), waiting.statuses)) in declared("versions",
                                                                                             "COLLECTION_GROUP")
