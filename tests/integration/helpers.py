"""Shared steps of the integration tests."""
from __future__ import annotations

import json

from infra.local.client import ApiClient, wait_for

DEADLINE = 90


def drop(bucket, dataset: str, files: dict[str, bytes]) -> None:
    """Upload dataset-relative files one by one, in the order given."""
    for name, data in files.items():
        bucket.blob(f"datasets/{dataset}/{name}").upload_from_string(data)


def stats_when(api: ApiClient, dataset: str, expected: dict, timeout: float = DEADLINE) -> dict:
    """Poll the dataset until every expected statistic holds and no job of it
    (a revalidation after a class change) is still running; return the stats."""
    return dataset_when(api, dataset, lambda view: all(view["stats"].get(k) == v for k, v in expected.items()),
                        f"stats to reach {expected}", timeout)["stats"]


def dataset_when(api: ApiClient, dataset: str, done, what: str, timeout: float = DEADLINE) -> dict:
    """Poll the dataset's view until `done(view)` holds and none of its jobs is running; return the view."""
    return wait_for(lambda: api.get_or_none(f"/datasets/{dataset}"),
                    lambda view: view is not None and view.get("pending_jobs", 0) == 0 and done(view),
                    timeout, f"{dataset}: {what}")


def handled_objects(stack, dataset: str) -> list[str]:
    """The objects of `dataset` the ingest server has logged an outcome for, once per handling."""
    prefix = f"datasets/{dataset}/"
    lines = (stack.state_dir / "ingest.log").read_text(errors="replace").splitlines()
    records = (json.loads(line) for line in lines if line.startswith("{"))
    return [record["object"] for record in records if record.get("object", "").startswith(prefix)]


def issues_by_file(api: ApiClient, dataset: str) -> dict[str, list[tuple[str, int | None]]]:
    found: dict[str, list] = {}
    for issue in api.all_pages(f"/datasets/{dataset}/issues", "issues"):
        found.setdefault(issue["file"].split(f"datasets/{dataset}/", 1)[-1], []).append(
            (issue["code"], issue["line"]))
    return found


# Facts of the objects themselves, not of what they hold: two datasets dropped
# differently have other generations and thumbnail names for the same content.
PER_OBJECT = ("thumbnail", "image_generation", "label_generation")


def index_snapshot(api: ApiClient, dataset: str) -> dict:
    """Everything the API says about a dataset, with the dataset name taken out,
    so two datasets dropped differently can be compared."""
    def strip(value):
        return value.replace(f"datasets/{dataset}/", "") if isinstance(value, str) else value

    images = api.all_pages(f"/datasets/{dataset}/images", "images", page_size=7)
    view = api.get(f"/datasets/{dataset}")
    return {
        "classes": view["classes"], "stats": view["stats"],
        "images": sorted(
            ({**{k: strip(v) for k, v in image.items() if k not in PER_OBJECT},
              "duplicates": [strip(d) for d in image["duplicates"]],
              "issues": sorted((i["code"], strip(i["file"]), i["line"]) for i in image["issues"])}
             for image in images), key=lambda image: image["id"]),
        "issues": sorted((i["code"], strip(i["file"]), i["line"])
                         for i in api.all_pages(f"/datasets/{dataset}/issues", "issues", page_size=3)),
    }
