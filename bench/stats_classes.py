"""The statistics of a dataset with the most classes data.yaml may have, in one run.

    python -m bench.stats_classes [--classes 4096] [--images 50] [--repeats 3]

Starts its own stack on free ports, drops a data.yaml of --classes names (datayaml.MAX_CLASSES by default) and
--images labelled images (each label uses a few of the classes), then times, each --repeats times:

1. GET /datasets/{d} through the API (its statistics, boxes per class included: with more classes than
   labelled entries, or over stats.PER_CLASS_QUERIES_MAX classes, counted in one pass);
2. the boxes per class by one aggregation query per class (as before issue 21: a query of several sums counts
   only the documents that hold every summed field, so classes cannot share a query);
3. by one grouped pass: the class counts of every entry with boxes read and added up.

Both ways must give the same counts; the ratio is grouped pass / per-class queries.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from infra.local import stack as local_stack
from infra.local.client import ApiClient, upload_all, wait_for
from infra.local.sample import synthetic_image


def _grouped(dataset: str, classes: list[str]) -> dict[str, int]:
    """One pass over the class counts of the entries with boxes (linear in them, whatever the classes)."""
    from common.cloud import stats
    by_id = stats._boxes_per_class_id(dataset, None)
    return {name: by_id.get(str(class_id), 0) for class_id, name in enumerate(classes)}


def _per_class(dataset: str, classes: list[str]) -> dict[str, int]:
    from common.cloud import stats
    return stats._per_class_queries(dataset, classes, None, None)


R = TypeVar("R")


def _timed(work: Callable[[], R], repeats: int) -> tuple[float, R]:
    """The median seconds of `repeats` runs of `work` (one at least), and its last result."""
    seconds, results = [], []
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        results.append(work())
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), results[-1]


def _drop(bucket, dataset: str, classes: int, images: int) -> None:
    names = "".join(f"  {i}: class{i}\n" for i in range(classes))
    files = {f"datasets/{dataset}/data.yaml": f"names:\n{names}".encode()}
    for i in range(images):
        files[f"datasets/{dataset}/images/train/i{i}.jpg"] = synthetic_image(i, size=(64, 48))[0]
        rows = "".join(f"{(i * 7 + k * 997) % classes} 0.5 0.5 0.2 0.2\n" for k in range(3))
        files[f"datasets/{dataset}/labels/train/i{i}.txt"] = rows.encode()
    upload_all(bucket, files)


def main(argv: list[str]) -> int:
    from common.domain.datayaml import MAX_CLASSES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=MAX_CLASSES)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with local_stack.temporary_stack("yolodrop-bench-stats-") as stack:
        from common.cloud import storage
        api, dataset = ApiClient(stack.env()["API_URL"], stack.token), f"b-{uuid.uuid4().hex[:8]}"
        _drop(storage.bucket(), dataset, args.classes, args.images)
        wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"),
                 lambda view: view is not None and view["stats"]["labeled"] == args.images
                 and len(view["classes"] or []) == args.classes and not view.get("pending_jobs"),
                 600, "the dataset indexed", interval=1)
        classes = api.get(f"/datasets/{dataset}")["classes"]
        api_seconds, _ = _timed(lambda: api.get(f"/datasets/{dataset}"), args.repeats)
        per_class_seconds, per_class = _timed(lambda: _per_class(dataset, classes), args.repeats)
        grouped_seconds, grouped = _timed(lambda: _grouped(dataset, classes), args.repeats)
        assert per_class == grouped, "the two ways disagree"
        print(f"{args.classes} classes, {args.images} labelled images ({sum(per_class.values())} boxes), median of "
              f"{args.repeats}: GET /datasets/{{d}} {api_seconds:.2f} s; boxes per class by {args.classes} "
              f"queries {per_class_seconds:.2f} s, by one grouped pass {grouped_seconds:.2f} s; "
              f"grouped/per-class {grouped_seconds / per_class_seconds:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
