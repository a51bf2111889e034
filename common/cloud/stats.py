"""Dataset statistics as Firestore aggregation queries over the entries.

Why aggregations: ten thousand files dropped at once would each have to write a
shared dataset document if statistics were counters, and Firestore sustains
about one write per second per document. Aggregations read the committed
entries, so the figures are exact at rest by construction and ingest never
contends on a hot document. Each query sums at most five fields (Firestore's
limit), and only fields every entry carries (see common.domain.entries).

Two views: `dataset_summaries` is constant cost per dataset (three aggregations, whatever the
classes), for lists; `dataset_stats` adds the splits, the two histograms (three
more aggregations) and the boxes per class (one single-sum query per class, or one pass over the
entries with boxes when that is cheaper: _boxes_per_class), for one dataset. Every call takes an
optional `deadline` in seconds (retries included); without one, the client's defaults apply.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import dataset_index, db
from common.domain import entries

MAX_AGGREGATIONS = 5
# Classes past which the boxes per class are counted in one pass over the entries with boxes rather than one
# query per class (data.yaml has at most datayaml.MAX_CLASSES, 4096).
PER_CLASS_QUERIES_MAX = 1000
# The fixed fields of the summary; the file issues are one more query.
SUMMARY_FIELDS = ("f_image", "f_labeled", "f_background", "f_unlabeled", "f_label_only",
                  "f_duplicate", "n_boxes", "issue_count")
_pool = ThreadPoolExecutor(max_workers=16)


def _limits(deadline: float | None) -> dict:
    return db.deadline(deadline) if deadline else {}


def _aggregate(query, fields: list[str], deadline: float | None) -> dict[str, int]:
    """Sum `fields` over `query` in one aggregation; keys are the field names."""
    aliases = {f"s{i}": name for i, name in enumerate(fields)}
    aggregation = query
    for alias, name in aliases.items():
        aggregation = aggregation.sum(name, alias=alias)
    return {aliases[result.alias]: int(result.value) for result in aggregation.get(**_limits(deadline))[0]}


def _chunks(fields: tuple[str, ...]) -> list[list[str]]:
    return [list(fields[i:i + MAX_AGGREGATIONS]) for i in range(0, len(fields), MAX_AGGREGATIONS)]


def _submit_totals(dataset: str, fields: tuple[str, ...], deadline: float | None) -> list[Future]:
    """Start the aggregations of `fields` over the entries and of the files' issues."""
    entry_query = dataset_index.entries_of(dataset)
    summed = [_pool.submit(_aggregate, entry_query, chunk, deadline) for chunk in _chunks(fields)]
    return summed + [_pool.submit(_file_issues, dataset, deadline)]


def _file_issues(dataset: str, deadline: float | None) -> dict[str, int]:
    """Issues of files that are not entries (data.yaml, unrecognized files)."""
    return {"file_issues": _aggregate(dataset_index.files_of(dataset), ["issue_count"], deadline)["issue_count"]}


def _until(deadline: float | None) -> float | None:
    """When waiting for queued aggregations must stop: the deadline bounds the whole view."""
    return time.monotonic() + deadline if deadline else None


def _result(future: Future, until: float | None) -> dict[str, int]:
    """The future's result; TimeoutError once `until` has passed."""
    return future.result(timeout=None if until is None else max(0.0, until - time.monotonic()))


def _totals(futures: list[Future], until: float | None) -> dict[str, int]:
    return {name: n for future in futures for name, n in _result(future, until).items()}


def _summary_view(totals: dict[str, int]) -> dict:
    return {
        "images": totals["f_image"], "labeled": totals["f_labeled"],
        "background": totals["f_background"], "unlabeled": totals["f_unlabeled"],
        "labels_without_image": totals["f_label_only"], "boxes": totals["n_boxes"],
        "issues": totals["issue_count"] + totals["file_issues"], "duplicates": totals["f_duplicate"],
    }


def dataset_summaries(datasets: list[str], deadline: float | None = None) -> list[dict]:
    """The summary of each dataset (no per-class or split figures): a constant
    number of aggregations per dataset, all of them in parallel."""
    until = _until(deadline)
    started = [_submit_totals(dataset, SUMMARY_FIELDS, deadline) for dataset in datasets]
    return [_summary_view(_totals(futures, until)) for futures in started]


def dataset_stats(dataset: str, classes: list[str] | None, deadline: float | None = None) -> dict:
    """The exact statistics of one dataset: the summary, the splits and the boxes per class."""
    until = _until(deadline)
    started = _submit_totals(dataset, entries.SUMMED_FIELDS, deadline) + [_pool.submit(_proposals, dataset, deadline)]
    started += [_pool.submit(_aggregate, dataset_index.entries_of(dataset), chunk, deadline)
                for chunk in _chunks(entries.HISTOGRAM_FIELDS)]
    totals = _totals(started, until)
    per_class = _boxes_per_class(dataset, classes, totals["f_labeled"], deadline, until)
    splits = {split: totals[flag] for split, flag in entries.SPLIT_FLAGS.items() if split}
    if totals["f_nosplit"]:
        splits["none"] = totals["f_nosplit"]
    return {**_summary_view(totals), "boxes_per_class": per_class, "splits": splits, "proposals": totals["proposals"],
            "boxes_per_image": _histogram(totals, "h_boxes", entries.BOXES_PER_IMAGE_EDGES),
            "box_sizes": _histogram(totals, "h_size", entries.BOX_SIZE_EDGES)}


def _histogram(totals: dict[str, int], prefix: str, edges: tuple) -> dict[str, int]:
    return {name: totals[f"{prefix}{i}"] for i, name in enumerate(entries.bucket_names(edges))}


def _proposals(dataset: str, deadline: float | None) -> dict[str, int]:
    """Images with auto-labelling proposals awaiting review: a count over has_proposals (a filter, not a
    sum, so entries indexed before proposals existed are counted right too)."""
    query = dataset_index.entries_of(dataset).where(filter=FieldFilter("has_proposals", "==", True))
    return {"proposals": int(query.count(alias="n").get(**_limits(deadline))[0][0].value)}


def _boxes_per_class(dataset: str, classes: list[str] | None, labelled: int, deadline: float | None,
                     until: float | None) -> dict[str, int]:
    """The boxes of each class, the cheaper way: one sum query per class (a query of several sums counts only
    the entries that hold every summed field, so classes cannot share one), or one pass over the entries with
    boxes when they are fewer than the classes or the classes are many (Firestore bills an aggregation a read
    per thousand entries it matches: C queries cost about C * labelled / 1000 reads, the pass `labelled`)."""
    if classes is None:
        return _boxes_per_class_id(dataset, deadline)
    if labelled < len(classes) or len(classes) > PER_CLASS_QUERIES_MAX:
        by_id = _boxes_per_class_id(dataset, deadline)
        counts: dict[str, int] = {}
        for class_id, name in enumerate(classes):
            counts[name] = counts.get(name, 0) + by_id.get(str(class_id), 0)
        return counts
    return _per_class_queries(dataset, classes, deadline, until)


def _per_class_queries(dataset: str, classes: list[str], deadline: float | None,
                       until: float | None) -> dict[str, int]:
    futures = [_pool.submit(_aggregate, dataset_index.entries_of(dataset), [f"class_counts.c{i}"], deadline)
               for i in range(len(classes))]
    counts: dict[str, int] = {}
    for class_id, (name, future) in enumerate(zip(classes, futures)):
        counts[name] = counts.get(name, 0) + _result(future, until)[f"class_counts.c{class_id}"]
    return counts


def _boxes_per_class_id(dataset: str, deadline: float | None) -> dict[str, int]:
    """One pass over the class counts of the entries with boxes (linear in their number), by class id."""
    query = (dataset_index.entries_of(dataset).where(filter=FieldFilter("n_boxes", ">", 0))
             .select(["class_counts"]))
    counts: dict[str, int] = {}
    for snapshot in query.stream(**_limits(deadline)):
        for field, n in (snapshot.get("class_counts") or {}).items():
            counts[field[1:]] = counts.get(field[1:], 0) + n
    return dict(sorted(counts.items(), key=lambda item: int(item[0])))
