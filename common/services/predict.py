"""What one prediction request does: find the registered model, load its ONNX
(common.cloud.model_cache), read each image, predict as Ultralytics does
(common.domain.prediction) and answer one prediction per input, in input order.

A bad image fails that image with its reason; a model that cannot predict is
refused before any image is read.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from google.api_core.exceptions import NotFound

from common.api import access
from common.api.context import RequestContext
from common.api.errors import ApiError
from common.api.resources import documents
from common.cloud import model_cache, storage, training_store
from common.domain import layout, prediction
from common.domain.prediction import ImageRejected, Thresholds
from common.platform import config
from common.services.detection import Timer, detect_pixels

MAX_BATCH = 32
DECODE_AHEAD = 2
_readers = ThreadPoolExecutor(max_workers=16)
_decoders = ThreadPoolExecutor(max_workers=DECODE_AHEAD, thread_name_prefix="decode")
# A registered model's document is written once (on its job's completion) and never changed, so an instance
# keeps the ones that can predict for a while: one Firestore read fewer per request. Access is read every time.
MODEL_DOCUMENT_SECONDS = 60
MODEL_DOCUMENTS_KEPT = 256
_model_documents: OrderedDict[str, tuple[float, dict]] = OrderedDict()


@dataclass(frozen=True)
class ImageSource:
    source: str                       # how the answer names it: "body", a file part's name, a gs:// URI
    data: bytes | None = None
    problem: ImageRejected | None = None  # why it could not even be read


# ---- the model -----------------------------------------------------------------

def find_model(model_id: str, ctx: RequestContext) -> dict:
    """The registered model the caller may use, or a 404 (unknown, or a dataset the caller cannot see)."""
    model = _registered_model(model_id, ctx)
    access.require(ctx, model["dataset"], access.VIEWER)
    return model


def _registered_model(model_id: str, ctx: RequestContext) -> dict:
    kept = _model_documents.get(model_id)
    if kept and time.monotonic() - kept[0] < MODEL_DOCUMENT_SECONDS:
        return kept[1]
    model = documents.find(training_store.models(), model_id, "model", ctx)
    onnx = model.get("onnx") or {}
    if onnx.get("generation") and not onnx.get("error"):  # pinned weights: nothing about it will change
        _model_documents[model_id] = (time.monotonic(), model)
        _model_documents.move_to_end(model_id)  # a refreshed document goes last, as a new one does
        while len(_model_documents) > MODEL_DOCUMENTS_KEPT:
            _model_documents.popitem(last=False)
    return model


def loaded(model: dict) -> model_cache.LoadedModel:
    """The model's ONNX, loaded; 404 without ONNX weights, 409 when they cannot serve predictions."""
    uri, generation = onnx_weights(model)
    try:
        session = model_cache.get(uri, generation or model_cache.current_generation(uri))
    except model_cache.ModelUnusable as unusable:
        raise ApiError(409, f"model {model['id']} cannot predict: {unusable}") from None
    if model.get("classes") and session.names != model["classes"]:
        raise ApiError(409, f"model {model['id']} cannot predict: its ONNX has the classes {session.names}, "
                            f"the model {model['classes']}")
    return session


def onnx_weights(model: dict) -> tuple[str, int | None]:
    """The ONNX file's URI and generation (None for a model registered before generations were recorded)."""
    onnx = model.get("onnx") or {}
    if onnx.get("error"):
        raise ApiError(409, f"model {model['id']} has no ONNX weights: the export failed ({onnx['error']})")
    uri = (model.get("weights") or {}).get("onnx")
    if not uri:
        raise ApiError(404, f"model {model['id']} has no ONNX weights")
    return uri, onnx.get("generation")


def class_filter(wanted: list | None, names: list[str]) -> frozenset[int] | None:
    """Class names or ids to keep, as ids; a 400 naming one the model does not have."""
    if wanted is None:
        return None
    ids = set()
    for item in wanted:
        text = str(item).strip()
        if text in names:
            ids.add(names.index(text))
        elif text.isdigit() and int(text) < len(names):
            ids.add(int(text))
        else:
            raise ApiError(400, f"classes: {text!r} is not a class of this model ({', '.join(names)}) "
                                f"nor an id below {len(names)}", "classes")
    return frozenset(ids)


# ---- images named in the bucket ------------------------------------------------

def bucket_sources(uris: list, ctx: RequestContext) -> list[ImageSource]:
    """Dataset images named by gs:// URI, read in parallel; 400 for a malformed one, 403 outside the data
    bucket's datasets, 404 for a dataset the caller cannot see."""
    names = [_object_name(uri, ctx) for uri in uris]
    return list(_readers.map(_read_object, uris, names))


def _object_name(uri, ctx: RequestContext) -> str:
    if not isinstance(uri, str) or not uri.startswith("gs://") or "/" not in uri[5:]:
        raise ApiError(400, f"images: {str(uri)[:200]!r} is not a gs://<bucket>/<object> URI", "images")
    bucket, _, name = uri[5:].partition("/")
    role = layout.classify(name)
    if bucket != config.data_bucket() or role.kind != "image":
        raise ApiError(403, f"images: {uri[:200]!r} is not a dataset image of gs://{config.data_bucket()}/"
                            f"{layout.DATASETS_PREFIX}", "images")
    access.require(ctx, role.dataset, access.VIEWER)
    return name


def _read_object(uri: str, name: str) -> ImageSource:
    try:
        return ImageSource(uri, storage.blob(name).download_as_bytes())
    except NotFound:
        return ImageSource(uri, problem=ImageRejected("image_not_found", f"no object {uri}"))


# ---- predicting ------------------------------------------------------------------

class Decoding:
    """The sources' images decoded in the background, at most DECODE_AHEAD ahead of the one being predicted:
    the first overlap the model's lookup, each next one the inference before it, and memory stays bounded."""

    def __init__(self, sources: list[ImageSource]):
        self.sources = sources
        self._pending: dict[int, Future] = {}
        for index in range(min(DECODE_AHEAD, len(sources))):
            self._start(index)

    def _start(self, index: int) -> None:
        self._pending[index] = _decoders.submit(_decoded, self.sources[index])

    def pixels(self, index: int) -> np.ndarray:
        """The upright RGB pixels of source `index`; ImageRejected when it is no image."""
        if index + DECODE_AHEAD < len(self.sources):
            self._start(index + DECODE_AHEAD)
        return self._pending.pop(index).result()


def _decoded(source: ImageSource) -> np.ndarray:
    if source.problem:
        raise source.problem
    return prediction.decode_image(source.data)


def predict(model: dict, session: model_cache.LoadedModel, decoding: Decoding, thresholds: Thresholds) -> dict:
    timer = Timer()
    results = [_prediction(session, decoding, index, thresholds, timer) for index in range(len(decoding.sources))]
    return {"model_id": model["id"], "classes": session.names, "predictions": results, "speed_ms": timer.view()}


def _prediction(session: model_cache.LoadedModel, decoding: Decoding, index: int, thresholds: Thresholds,
                timer: Timer) -> dict:
    source = decoding.sources[index]
    try:
        started = time.perf_counter()
        pixels = decoding.pixels(index)
        timer.add("preprocess", started)  # what decoding still took once the image was wanted
        (width, height), found = detect_pixels(session, pixels, thresholds, timer)
    except ImageRejected as rejected:
        return {"source": source.source, "width": None, "height": None, "boxes": [],
                "error": {"code": rejected.code, "message": rejected.message}}
    return {"source": source.source, "width": width, "height": height,
            "boxes": [prediction.box_view(d, (width, height), session.names) for d in found]}
