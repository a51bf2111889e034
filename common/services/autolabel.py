"""Auto-labelling as dataset jobs: a model's boxes become proposals in the index,
and accepted proposals become label files in the bucket.

- autolabel: planned once (the model's classes mapped onto the dataset's by
  name; a job whose model shares none fails naming both lists), items are the
  entry ids of the images to label; a chunk runs the model in-process (the
  prediction function's own path: common.services.detection, the model cache)
  and stores each image's proposals, pinned to the image generation it saw. A
  redelivered chunk finds its record and does nothing; were it to run again,
  it would write the same values.
Accepting them is common.services.proposal_review. This module runs the model:
only the dataset-jobs function loads it (Pillow, ONNX Runtime), never the API.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor

from google.api_core.exceptions import NotFound

from common.cloud import dataset_index, model_cache, proposal_store, storage, training_store
from common.domain import proposals
from common.domain.proposals import CannotLabel
from common.domain.imaging import MAX_IMAGE_PIXELS
from common.domain.prediction import ImageRejected, Thresholds, box_view
from common.services.detection import detect

READ_AHEAD = 8  # images of a chunk read at once, and held read ahead of the model at most
# The largest image file read whole to be labelled: READ_AHEAD of them fit beside the model in the dataset-jobs
# function's 1 GiB. Ordinary photos are a few MB.
MAX_IMAGE_BYTES = 32 * 1024 * 1024
_readers = ThreadPoolExecutor(max_workers=READ_AHEAD)


# ---- planning ------------------------------------------------------------------

def plan(job: dict) -> tuple[dict, list[str]]:
    """(what the job records of its model, the entry ids to label); CannotLabel says why it cannot run."""
    model = _model(job["model_id"])
    dataset = dataset_index.read_dataset(job["dataset"]) or {}
    mapping, dropped = proposals.class_map(model.get("classes") or [], dataset.get("classes"))
    uri, generation = _onnx(model)
    details = {"class_map": {str(k): v for k, v in mapping.items()}, "dropped_classes": dropped,
               "onnx": {"uri": uri, "generation": generation}}
    return details, proposal_store.entry_keys(job["dataset"], job["images"])


def _model(model_id: str) -> dict:
    model = training_store.model(model_id)
    if model is None:
        raise CannotLabel(f"no model {model_id!r}")
    return model


def _onnx(model: dict) -> tuple[str, int]:
    onnx, uri = model.get("onnx") or {}, (model.get("weights") or {}).get("onnx")
    if onnx.get("error") or not uri:
        raise CannotLabel(f"model {model.get('id')} has no ONNX weights to label with "
                       f"({onnx.get('error') or 'none were registered'})")
    try:
        return uri, onnx.get("generation") or model_cache.current_generation(uri)
    except model_cache.ModelUnusable as unusable:
        raise CannotLabel(str(unusable)) from None


# ---- labelling a chunk -----------------------------------------------------------

def label_chunk(job: dict, keys: list[str]) -> dict:
    """Propose boxes for each image of the chunk; the chunk's counts and its failed images."""
    try:
        session = model_cache.get(job["onnx"]["uri"], job["onnx"]["generation"])
    except model_cache.ModelUnusable as unusable:
        return _all_failed(keys, str(unusable))
    thresholds = Thresholds(conf=job["conf"], iou=job["iou"])
    mapping = {int(model_id): dataset_id for model_id, dataset_id in job["class_map"].items()}
    proposed = dropped_total = 0
    failed: list[dict[str, str]] = []
    for key, image, data in _read_ahead(job["dataset"], keys):
        try:
            boxes, dropped = _propose(job, session, thresholds, mapping, key, image, data)
        except ImageRejected as rejected:
            failed.append({"image": key, "reason": rejected.message})
            continue
        proposed += boxes
        dropped_total += dropped
    return {"boxes": proposed, "dropped": dropped_total, "failures": len(failed), "failed": failed}


def _all_failed(keys: list[str], reason: str) -> dict:
    return {"boxes": 0, "dropped": 0, "failures": len(keys),
            "failed": [{"image": key, "reason": reason} for key in keys]}


def _read_ahead(dataset: str, keys: list[str]):
    """_image_of each key, in order, at most READ_AHEAD read and not yet used at any time."""
    pending: deque = deque()
    for key in keys:
        pending.append(_readers.submit(_image_of, dataset, key))
        if len(pending) >= READ_AHEAD:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _too_large(image: dict) -> str | None:
    """Why the image is not read to be labelled, from what ingest recorded of it; None when it may be."""
    size, pixels = image.get("size") or 0, (image.get("width") or 0) * (image.get("height") or 0)
    if size > MAX_IMAGE_BYTES:
        return f"the image file is {size} bytes, over the {MAX_IMAGE_BYTES} bytes an image may have to be labelled"
    if pixels > MAX_IMAGE_PIXELS:
        return f"the image has {pixels} pixels, over the {MAX_IMAGE_PIXELS} an image may have"
    return None


def _image_of(dataset: str, key: str) -> tuple[str, dict | None, bytes | None]:
    """(entry key, its image record, the bytes of that generation); None where it is gone or too large."""
    entry = dataset_index.read_entry_fields(dataset, key, ["image"]) or {}
    image = entry.get("image")
    if not image or _too_large(image):
        return key, image or None, None
    try:
        return key, image, storage.blob(image["path"], image["generation"]).download_as_bytes()
    except NotFound:
        return key, image, None


def _propose(job: dict, session, thresholds: Thresholds, mapping: dict[int, int], key: str,
             image: dict | None, data: bytes | None) -> tuple[int, int]:
    """Run the model on one image and store its proposals: (boxes proposed, boxes dropped)."""
    too_large = _too_large(image) if image else None
    if too_large:
        raise ImageRejected("image_too_large", too_large)
    if image is None or data is None:
        raise ImageRejected("image_gone", "the image was deleted or replaced since the job listed it")
    size, found = detect(session, data, thresholds)
    kept, dropped = proposals.from_boxes([box_view(d, size, session.names) for d in found], mapping)
    fields = proposals.entry_fields(kept, job["model_id"], job["id"], image["generation"])
    if not proposal_store.put(job["dataset"], key, image["generation"], fields):
        raise ImageRejected("image_changed", "the image changed while it was labelled: label it again")
    return len(kept), dropped
