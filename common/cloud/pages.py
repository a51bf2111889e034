"""The queries lists page through: a store makes one (its filters and its order), this reads it from a position on.

A position names the document to start at: its order values, then its id (a cursor needs the document's
reference, which only its collection can make). The API keeps positions in its signed page tokens
(common.api.pagination) and never sees a reference or a query's filters.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from common.cloud import db

# Firestore serves at most 30 disjunctions in one query (each dataset of an `in` times each status of another).
MAX_DISJUNCTIONS = 30


@dataclass(frozen=True)
class Query:
    """A store-made query: its documents in one order, the document id last."""
    collection: Any                 # the collection (or collection group) the documents live in
    filtered: Any = None            # its filtered query; None: the whole collection
    order: tuple[str, ...] = ()     # fields ordered by before the document id
    descending: bool = False        # the direction of the whole order
    id_field: str | None = None     # where a document that does not hold its id is given it

    def read(self, at: list | None, limit: int, deadline: float | None = None) -> Iterator[tuple[list, dict]]:
        """Up to `limit` (position, document) pairs, from the document at position `at` (inclusive) on."""
        query = self.ordered()
        if at:
            query = query.start_at([*at[:-1], self.collection.document(at[-1])])
        for snapshot in query.limit(limit).stream(**db.deadline(deadline)):
            document = snapshot.to_dict()
            if self.id_field:
                document[self.id_field] = snapshot.id
            yield [snapshot.get(field) for field in self.order] + [snapshot.id], document

    def ordered(self):
        """The Firestore query with its whole order (what a composite index must serve)."""
        direction = firestore.Query.DESCENDING if self.descending else firestore.Query.ASCENDING
        query = self.collection if self.filtered is None else self.filtered
        for field in self.order:
            query = query.order_by(field, direction=direction)
        return query.order_by(FieldPath.document_id(), direction=direction)


def newest_first(collection, datasets: Sequence[str] | None = None, statuses: Sequence[str] = (),
                 **equal: object) -> Query:
    """The documents of `collection` newest first (created_at): of these datasets (None: of every one), with
    one of these statuses (none: any), and whose `equal` fields hold these values (each shape has its index in
    infra/firestore.indexes.json)."""
    query = collection
    for field, value in equal.items():
        query = query.where(filter=FieldFilter(field, "==", value))
    if statuses:
        query = query.where(filter=FieldFilter("status", "in", list(statuses)))
    if datasets is not None:
        query = query.where(filter=FieldFilter("dataset", "in", list(datasets)))
    return Query(collection, query, order=("created_at",), descending=True)


def dataset_groups(datasets: Sequence[str] | None, statuses: int) -> list[list[str] | None]:
    """`datasets` in groups one query each may filter by, beside a filter of `statuses` statuses (None: one
    query of every dataset)."""
    if datasets is None:
        return [None]
    per_query = MAX_DISJUNCTIONS // max(1, statuses)
    return [list(datasets[start:start + per_query]) for start in range(0, len(datasets), per_query)]
