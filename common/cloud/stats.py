"""Dataset statistics as Firestore aggregation queries over the entries.

Why aggregations: ten thousand files dropped at once would each have to write a
shared dataset document if statistics were counters, and Firestore sustains
about one write per second per document. Aggregations read the committed
entries, so the figures are exact at rest by construction and ingest never
contends on a hot document. Each query sums at most five fields (Firestore's
limit), and only fields every entry carries (see common.entries); per-class box
counts are one single-sum query per class, run in parallel.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import dataset_index
from common.domain import entries

MAX_AGGREGATIONS = 5
_pool = ThreadPoolExecutor(max_workers=16)


def _aggregate(query, fields: list[str]) -> dict[str, int]:
    """Sum `fields` over `query` in one aggregation; keys are the field names."""
    aliases = {f"s{i}": name for i, name in enumerate(fields)}
    aggregation = query
    for alias, name in aliases.items():
        aggregation = aggregation.sum(name, alias=alias)
    return {aliases[result.alias]: int(result.value) for result in aggregation.get()[0]}


def _chunks(fields: tuple[str, ...]) -> list[list[str]]:
    return [list(fields[i:i + MAX_AGGREGATIONS]) for i in range(0, len(fields), MAX_AGGREGATIONS)]


def dataset_stats(dataset: str, classes: list[str] | None) -> dict:
    entry_query = dataset_index.entries_of(dataset)
    summed = [_pool.submit(_aggregate, entry_query, chunk) for chunk in _chunks(entries.SUMMED_FIELDS)]
    file_issues = _pool.submit(_aggregate, dataset_index.files_of(dataset), ["issue_count"])
    per_class = _boxes_per_class(dataset, classes)
    totals = {k: v for future in summed for k, v in future.result().items()}
    splits = {split: totals[flag] for split, flag in entries.SPLIT_FLAGS.items() if split}
    if totals["f_nosplit"]:
        splits["none"] = totals["f_nosplit"]
    return {
        "images": totals["f_image"], "labeled": totals["f_labeled"],
        "background": totals["f_background"], "unlabeled": totals["f_unlabeled"],
        "labels_without_image": totals["f_label_only"],
        "boxes": totals["n_boxes"], "boxes_per_class": per_class, "splits": splits,
        "issues": totals["issue_count"] + file_issues.result()["issue_count"],
        "duplicates": totals["f_duplicate"],
    }


def _boxes_per_class(dataset: str, classes: list[str] | None) -> dict[str, int]:
    if classes is None:
        return _boxes_per_class_id(dataset)
    futures = [_pool.submit(_aggregate, dataset_index.entries_of(dataset), [f"class_counts.c{i}"])
               for i in range(len(classes))]
    counts: dict[str, int] = {}
    for class_id, (name, future) in enumerate(zip(classes, futures)):
        counts[name] = counts.get(name, 0) + future.result()[f"class_counts.c{class_id}"]
    return counts


def _boxes_per_class_id(dataset: str) -> dict[str, int]:
    """Without data.yaml the class ids are unknown in advance: read the counts
    of the labelled entries (the degenerate case, linear in their number)."""
    query = (dataset_index.entries_of(dataset).where(filter=FieldFilter("status", "==", entries.LABELED))
             .select(["class_counts"]))
    counts: dict[str, int] = {}
    for snapshot in query.stream():
        for field, n in (snapshot.get("class_counts") or {}).items():
            counts[field[1:]] = counts.get(field[1:], 0) + n
    return dict(sorted(counts.items(), key=lambda item: int(item[0])))
