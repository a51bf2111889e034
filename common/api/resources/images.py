"""Images of a dataset: the filtered list and one image. An image's id is its
entry key (the label path without .txt), which image and label share."""
from __future__ import annotations

import re

from common.api import access, pagination, params
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.domain.storable import quoted
from common.api.resources.datasets import DATASET, find_dataset
from common.api.routes import Route
from common.api.schema import BOOLEAN, INTEGER, NUMBER, STRING, array, nullable, obj, page_of
from common.cloud import dataset_index, pages
from common.domain import entries, proposals

STATUSES = (entries.LABELED, entries.BACKGROUND, entries.UNLABELED, entries.LABEL_ONLY)
_CLASS_ID = re.compile(r"[0-9]{1,9}")

ISSUE = obj(code=STRING, message=STRING, file=nullable(STRING), line=nullable(INTEGER))
BOX = obj(class_id=INTEGER, class_name=nullable(STRING), cx=NUMBER, cy=NUMBER, w=NUMBER, h=NUMBER)
IMAGE = obj(id=STRING, path=nullable(STRING), sha256=nullable(STRING), width=nullable(INTEGER),
            height=nullable(INTEGER), split=nullable(STRING), format=nullable(STRING),
            orientation=nullable(INTEGER), oriented_width=nullable(INTEGER), oriented_height=nullable(INTEGER),
            thumbnail=nullable(STRING),
            exif=nullable(obj(taken_at=nullable(STRING), camera_make=nullable(STRING), camera_model=nullable(STRING),
                              gps=BOOLEAN)),
            status=STRING, label_path=nullable(STRING), labels=array(BOX),
            image_generation=nullable(INTEGER), label_generation=INTEGER,
            duplicates=array(STRING), issues=array(ISSUE),
            proposals=array(obj(class_id=INTEGER, class_name=nullable(STRING), confidence=NUMBER, cx=NUMBER,
                                cy=NUMBER, w=NUMBER, h=NUMBER)),
            proposal_model=nullable(STRING))

FILTERS = (
    params.choice("split", "train, val, test, or none for images outside the three",
                  ("train", "val", "test", dataset_index.NO_SPLIT)),
    params.text("class", "a class name or id: images with at least one box of it"),
    params.boolean("labeled", "true: at least one valid box of a known class"),
    params.boolean("has_issues", "whether the entry has issues"),
    params.choice("status", "the entry's status; without it, entries that have an image", STATUSES),
    params.boolean("has_proposals", "whether auto-labelling proposals await review"),
)
SORTS = tuple(dataset_index.IMAGE_SORTS)
SORT = params.choice("sort", "boxes or issues: most first, across every page (with at most one filter)", SORTS)
IMAGE_ID = params.path("image_id", "the image id (its entry key, e.g. labels/train/bus)", holds_slashes=True)


def list_images(ctx: RequestContext, args: dict) -> dict:
    dataset = args["dataset"]
    classes = find_dataset(dataset, ctx).get("classes")
    sort = args["sort"]
    given = [param.name for param in FILTERS if args[param.name] is not None]
    if sort and len(given) > 1:
        raise ApiError(400, f"sort= takes at most one filter (each pair has its own index), not {' and '.join(given)}: "
                            "keep one, or sort none", "sort")
    source = pagination.Source(image_query(dataset, args, classes),
                               items=lambda entry: [image_view(entry, classes)])
    return pagination.page("images", f"images:{dataset}" + (f":by-{sort}" if sort else ""), [source], args, ctx)


def image_query(dataset: str, args: dict, classes: list[str] | None) -> pages.Query:
    """The index's query of the images the list's filters and sort name."""
    class_id = None if args["class"] is None else _class_id(args["class"], classes)
    return dataset_index.image_query(dataset, status=args["status"], split=args["split"], class_id=class_id,
                                     labeled=args["labeled"], has_issues=args["has_issues"],
                                     has_proposals=args["has_proposals"], sort=args["sort"])


def _class_id(raw: str, classes: list[str] | None) -> int:
    if classes and raw in classes:
        return classes.index(raw)
    if _CLASS_ID.fullmatch(raw):
        return int(raw)
    known = f"one of {', '.join(classes)}" if classes else "a class id (the dataset has no data.yaml yet)"
    raise ApiError(400, f"class must be {known} or a class id, got {quoted(raw)}", "class")


def get_image(ctx: RequestContext, args: dict) -> dict:
    classes, entry = find_image(ctx, args["dataset"], args["image_id"])
    return image_view(entry, classes)


def find_image(ctx: RequestContext, dataset: str, image_id: str, with_image: bool = False) -> tuple[list | None, dict]:
    """(the dataset's classes, the entry), or a 404; `with_image`: the image itself must be there."""
    classes = find_dataset(dataset, ctx).get("classes")
    entry = dataset_index.read_entry(dataset, image_id, ctx.deadline_seconds)
    if entry is None or not entry["present"] or (with_image and not entry.get("image")):
        raise ApiError(404, f"no image {image_id!r} in dataset {dataset!r}")
    return classes, entry


def image_view(entry: dict, classes: list[str] | None) -> dict:
    """An entry as the API shows it."""
    image = entry.get("image") or {}
    label = entry.get("label")

    return {
        "id": entry["key"], "path": image.get("path"), "sha256": image.get("sha256"),
        "width": image.get("width"), "height": image.get("height"), "split": entry.get("split"),
        "format": image.get("format"), "orientation": image.get("orientation"),
        "oriented_width": image.get("oriented_width"), "oriented_height": image.get("oriented_height"),
        "thumbnail": image.get("thumbnail"), "exif": image.get("exif"), "status": entry.get("status"),
        "label_path": label["path"] if label else None,
        "image_generation": image.get("generation"),
        "label_generation": label["generation"] if label else 0,  # what an edit's If-Match names
        "labels": boxes_view((label or {}).get("boxes", []), classes),
        "duplicates": entry.get("duplicates", []),
        "issues": entry.get("issues", []),
        **proposals.view(entry, classes),
    }


def boxes_view(boxes: list[dict], classes: list[str] | None) -> list[dict]:
    return [{"class_id": b["class_id"], "class_name": classes[b["class_id"]] if classes and b["class_id"] < len(classes)
             else None, "cx": b["cx"], "cy": b["cy"], "w": b["w"], "h": b["h"]} for b in boxes]


ROUTES = [
    Route("GET", "/datasets/{dataset}/images", list_images,
          "Images of a dataset, filtered, in id order (or the whole dataset sorted by boxes or issues)",
          page_of("images", IMAGE), params=(DATASET, *FILTERS, SORT,
                                            *pagination.page_params(default=100, maximum=1000)),
          role=access.VIEWER),
    Route("GET", "/datasets/{dataset}/images/{image_id}", get_image, "One image with its labels and issues",
          IMAGE, params=(DATASET, IMAGE_ID), role=access.VIEWER),
]
