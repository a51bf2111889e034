"""A dataset's index rebuilt from its bucket: the reindex job kind (common.services.dataset_jobs registers it), and
the one way both a reindex and the scheduled reconciliation (common.services.reconcile) repair an index.

Every repair goes through ingest's own path (common.services.ingest.handle_batch) with the events the bucket's
state implies: an object listed is its finalize event (a generation the index holds is a duplicate there, and
costs one guard read); an object the index holds that the bucket no longer has is its delete event, at the
generation the index holds, exactly what the lost notification would have carried. So a reindex gives what
dropping the same files gives, and is idempotent as ingest is: a chunk run twice changes nothing.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from common.cloud import bucket_listing, dataset_index, index_objects
from common.domain import reindex
from common.domain.reindex import Gone, Listed
from common.platform import config, log
from common.platform.events import DELETED, FINALIZED, ObjectEvent
from common.platform.failures import is_transient
from common.platform.handler import Outcome, Result
from common.services import ingest


def listed_objects(dataset: str) -> list[Listed]:
    """The dataset's objects ingest indexes, as the bucket lists them now."""
    return [found for found in bucket_listing.dataset_objects(dataset) if reindex.is_indexed(found.name, dataset)]


def plan(job: dict) -> list[str]:
    """Every object of the dataset, and every object its index holds that the bucket no longer lists. Its class
    files are applied here, before any chunk runs (reindex.defines_classes)."""
    dataset = job["dataset"]
    dataset_index.create_dataset(dataset)  # an index lost with its dataset document starts again here
    listed = listed_objects(dataset)
    every: list[Listed | Gone] = [*listed, *reindex.compare(listed, index_objects.indexed(dataset)).removed]
    apply([found for found in every if reindex.defines_classes(found.name)], f"reindex-{job['id']}")
    return [reindex.item_of(found) for found in every if not reindex.defines_classes(found.name)]


def unit(job: dict, items: list[str]) -> dict:
    """Apply one chunk's objects as ingest would: what it counts (common.domain.dataset_jobs.COUNTED)."""
    applied = apply([reindex.parse_item(item) for item in items], f"reindex-{job['id']}")
    return {"indexed": applied["applied"], "removed": applied["removed"], "unchanged": applied["unchanged"]}


def apply(found: Iterable[Listed | Gone], source: str) -> Counter:
    """Apply each object's event through ingest, in ingest's batches: how many were applied (a finalize that
    changed the index), removed (a delete that did), or left unchanged. A transient failure raises (the
    caller's message is redelivered); any other is logged and the object left as ingest would leave it."""
    counts: Counter = Counter(applied=0, removed=0, unchanged=0)
    events = [_event(item, source) for item in found]
    size = config.ingest_batch_size()
    for start in range(0, len(events), size):
        batch = events[start:start + size]
        for event, result in zip(batch, ingest.handle_batch(batch)):
            counts[_counted(event, result)] += 1
    return counts


def _event(found: Listed | Gone, source: str) -> ObjectEvent:
    """The event the object's state implies. An object the index holds but the listing missed is looked at
    again: written since (its new generation's finalize), or gone (its delete at the generation held)."""
    if isinstance(found, Gone):
        live = bucket_listing.live(found.name)
        if live is None:
            return ObjectEvent(DELETED, config.data_bucket(), found.name, found.generation, None,
                               f"{source}:{found.generation}")
        found = live
    return ObjectEvent(FINALIZED, config.data_bucket(), found.name, found.generation, found.size,
                       f"{source}:{found.generation}", metadata=found.metadata)


def _counted(event: ObjectEvent, result: Outcome | Exception) -> str:
    if isinstance(result, Exception):
        if is_transient(result):
            raise result
        log.error("reindex could not apply an object", object=event.name, generation=event.generation,
                  error=repr(result)[:300])
        return "unchanged"
    if result.result != Result.APPLIED:
        return "unchanged"
    return "removed" if event.action == DELETED else "applied"
