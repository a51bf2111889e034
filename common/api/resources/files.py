"""The files of a dataset that are neither images nor labels, and what each did: what a drop says back.

An archive dropped at imports/<dataset>.zip (the layout recognised, the files unpacked, its import), a
class-name file (Label Studio's classes.txt, Darknet's obj.names, FiftyOne's dataset.yaml: whether its names
were written to data.yaml), another tool's companion files (obj.data, notes.json) and anything unrecognised.
"""
from __future__ import annotations

from common.api import access, pagination
from common.api.context import RequestContext
from common.api.resources.datasets import DATASET, find_dataset
from common.api.routes import Route
from common.api.schema import INTEGER, STRING, nullable, obj, page_of
from common.cloud import dataset_index

FILE = obj(required=("path", "generation", "issue_count"), path=STRING, generation=INTEGER,
           layout={**nullable(STRING), "description": "the export layout the file was recognised as"},
           summary={**nullable(STRING), "description": "what the file did (names written to data.yaml, ...)"},
           unpacked={**nullable(INTEGER), "description": "an archive's files unpacked into the dataset"},
           import_id={**nullable(STRING), "description": "the import that unpacks a large archive"},
           names={**nullable(INTEGER), "description": "how many class names a class-name file gives"},
           issue_count=INTEGER)


def _view(document: dict) -> list[dict]:
    return [{"path": document["path"], "generation": document["generation"], "layout": document.get("layout"),
             "summary": document.get("summary"), "unpacked": document.get("unpacked"),
             "import_id": document.get("import_id"), "names": document.get("names"),
             "issue_count": document.get("issues_total") or document.get("issue_count") or 0}]


def list_files(ctx: RequestContext, args: dict) -> dict:
    dataset = args["dataset"]
    find_dataset(dataset, ctx)
    present = pagination.Source(dataset_index.present_files(dataset), items=_view)
    return pagination.page("files", f"files:{dataset}", [present], args, ctx)


ROUTES = [
    Route("GET", "/datasets/{dataset}/files", list_files, "The dataset's files that are neither images nor labels "
          "(archives, class-name files, other tools' companion files) and what each did: the layout recognised, "
          "the files unpacked, the names written", page_of("files", FILE),
          params=(DATASET, *pagination.page_params(default=100, maximum=1000)), role=access.VIEWER),
]
