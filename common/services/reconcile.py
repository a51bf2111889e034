"""The scheduled reconciliation: each dataset's bucket listing (names and generations) compared with its index, and
the difference repaired through ingest's own path (common.services.reindex.apply), so events lost to the
dead-letter limit, an outage longer than the retry budget, or a bug are found and fixed unasked.

A run is bounded: it compares whole datasets (the bucket's folders and the index's datasets), in name order,
until it has listed RECONCILE_OBJECTS_PER_RUN objects, and repairs at most RECONCILE_REPAIRS_PER_RUN differences;
the next run goes on after the last dataset it finished (common.cloud.reconciliation_store), and from the first
again once it reached the end. Objects written within RECONCILE_GRACE_SECONDS are left to their own events. Each
dataset it repaired is one log line, "reconciliation repaired", with dataset, added, updated and removed: the
log-based metric counts those (docs/operations.md). Running twice changes nothing more than running once: the
second finds no difference.

Each dataset compared also has its stray thumbnails removed: those under derived/thumbnails/<dataset>/ that no
entry names, older than the grace (ingest removes a thumbnail its change orphans; this finds what a failed
removal, a killed instance or a change that lost its race left), logged as "stray thumbnails removed".
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from common.cloud import bucket_listing, index_objects, reconciliation_store, storage
from common.domain import layout
from common.domain import reindex as compare_rules
from common.platform import config, log
from common.platform.handler import Outcome, Result
from common.services import reindex

REPAIRED = "reconciliation repaired"  # the log line a metric counts: keep it and its fields as they are
STRAY_THUMBNAILS = "stray thumbnails removed"


@dataclass
class Budget:
    objects: int
    repairs: int

    def spent(self) -> bool:
        return self.objects <= 0 or self.repairs <= 0


def run(now: float | None = None) -> Outcome:
    """One bounded run from where the last stopped: {dataset: {added, updated, removed}} for those repaired."""
    now = time.time() if now is None else now
    budget = Budget(config.reconcile_objects_per_run(), config.reconcile_repairs_per_run())
    after, repaired, compared = _sweep(reconciliation_store.resume_after(), budget, now)
    reconciliation_store.stopped_after(after, now)
    detail = f"reconciled {compared} datasets; repaired {repaired or 'nothing'}; next after {after!r}"
    return Outcome(Result.APPLIED if repaired else Result.DUPLICATE, detail,
                   {"repaired": repaired, "compared": compared, "after": after})


def _sweep(after: str | None, budget: Budget, now: float) -> tuple[str | None, dict[str, dict[str, int]], int]:
    """Datasets after `after` compared until the budget is spent: the last one finished (None once the end of
    the bucket was reached), the counts of those repaired, how many were compared."""
    repaired: dict[str, dict[str, int]] = {}
    compared = 0
    while not budget.spent():
        datasets = index_objects.every_dataset(after)
        if not datasets:
            return None, repaired, compared
        for dataset in datasets:
            counts, finished = reconcile(dataset, now, budget)
            compared += 1
            if any(counts.values()):
                repaired[dataset] = counts
            if not finished:
                return after, repaired, compared  # repairs left: the next run compares this dataset again
            after = dataset
            if budget.spent():
                break
    return after, repaired, compared


def reconcile(dataset: str, now: float, budget: Budget) -> tuple[dict[str, int], bool]:
    """Compare one dataset and repair its difference within the budget: the counts repaired, and whether every
    difference was repaired (or left to its own event within the grace)."""
    listed = reindex.listed_objects(dataset)
    budget.objects -= len(listed)
    held = index_objects.index_of(dataset)
    difference = compare_rules.settled(compare_rules.compare(listed, held.objects), now,
                                       config.reconcile_grace_seconds())
    _remove_stray_thumbnails(dataset, held.thumbnails, now, budget)
    repairs = difference.first(budget.repairs)
    budget.repairs -= len(repairs)
    source = f"reconcile-{int(now)}"
    counts = {"added": reindex.apply(repairs.added, source)["applied"],
              "updated": reindex.apply(repairs.updated, source)["applied"],
              "removed": reindex.apply(repairs.removed, source)["removed"]}
    if any(counts.values()):
        log.warning(REPAIRED, dataset=dataset, **counts)
    return counts, len(repairs) == len(difference)


def _remove_stray_thumbnails(dataset: str, held: set[str], now: float, budget: Budget) -> None:
    """Delete the dataset's thumbnails no entry names (each at the generation listed: one written again since is
    left)."""
    thumbnails = list(bucket_listing.objects(layout.thumbnails_prefix(dataset)))
    budget.objects -= len(thumbnails)
    strays = compare_rules.stray_thumbnails(thumbnails, held, now, config.reconcile_grace_seconds())
    removed = sum(storage.delete_generation(stray.name, stray.generation) for stray in strays)
    if removed:
        log.info(STRAY_THUMBNAILS, dataset=dataset, removed=removed)
