"""What one prediction request does: find the registered model the caller may
use, load its ONNX (common.cloud.model_cache), read each image, predict as
Ultralytics does (common.domain.prediction) and answer one prediction per input,
in input order.

Nothing of the images is read before the model is found and the caller may use
it. A refusal is a common.domain.refusals kind, which the HTTP edge
(common.api.resources.predictions) answers with its status. A bad image fails
that image with its reason; a model that cannot predict is refused before any
image is read. Memory stays bounded: the images of a request
total at most the request's byte cap (a named object's size is read from its
metadata first), an image over the pixel limit is refused before it is decoded,
and only DECODE_AHEAD images are decoded at full size at once in the whole
instance, each turned into the model's small input as soon as it is decoded.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from google.api_core.exceptions import NotFound as ObjectGone

from common.cloud import model_cache, storage, training_store
from common.domain import layout, prediction
from common.domain.prediction import ImageRejected, Thresholds
from common.domain.refusals import Conflict, Forbidden, Invalid, NotFound, TooLarge
from common.platform import config
from common.platform.ttl_cache import TtlCache
from common.services.detection import Timer

MaySee = Callable[[str], bool]  # whether the caller may see a dataset (the edge's access rule)
# Images decoded at once in the whole instance (the pool is shared by its requests): with the pixel limit, this
# bounds the memory of full-size pixels (docs/security.md, "Prediction").
DECODE_AHEAD = 2
_readers = ThreadPoolExecutor(max_workers=16)
_decoders = ThreadPoolExecutor(max_workers=DECODE_AHEAD, thread_name_prefix="decode")
# A registered model's document is written once (on its job's completion) and never changed, so an instance
# keeps the ones that can predict for a while: one Firestore read fewer per request. Access is read every time.
MODEL_DOCUMENT_SECONDS = 60
MODEL_DOCUMENTS_KEPT = 256
_model_documents: TtlCache[dict | None] = TtlCache(lambda: MODEL_DOCUMENT_SECONDS, MODEL_DOCUMENTS_KEPT)


@dataclass(frozen=True)
class ImageSource:
    source: str                       # how the answer names it: "body", a file part's name, a gs:// URI
    data: bytes | None = None
    problem: ImageRejected | None = None  # why it could not even be read


# ---- the model -----------------------------------------------------------------

def find_model(model_id: str, may_see: MaySee, deadline_seconds: float) -> dict:
    """The registered model the caller may use (view its dataset); NotFound says no more than the API's
    GET /models/{id} does: unknown, or of a dataset the caller cannot see."""
    model = _registered_model(model_id, deadline_seconds)
    if model is None or not isinstance(model.get("dataset"), str) or not may_see(model["dataset"]):
        raise NotFound(f"no model {model_id!r}")
    return model


def _registered_model(model_id: str, deadline_seconds: float) -> dict | None:
    return _model_documents.get(model_id, lambda: training_store.model(model_id, deadline_seconds), keep=_pinned)


def _pinned(model: dict | None) -> bool:
    """Pinned weights that can predict: nothing about the document will change."""
    onnx = (model or {}).get("onnx") or {}
    return bool(onnx.get("generation")) and not onnx.get("error")


def loaded(model: dict) -> model_cache.LoadedModel:
    """The model's ONNX, loaded; NotFound without ONNX weights, Conflict when they cannot serve predictions."""
    uri, generation = onnx_weights(model)
    try:
        session = model_cache.get(uri, generation or model_cache.current_generation(uri))
    except model_cache.ModelUnusable as unusable:
        raise Conflict(f"model {model['id']} cannot predict: {unusable}") from None
    if model.get("classes") and session.names != model["classes"]:
        raise Conflict(f"model {model['id']} cannot predict: its ONNX has the classes {session.names}, "
                            f"the model {model['classes']}")
    return session


def onnx_weights(model: dict) -> tuple[str, int | None]:
    """The ONNX file's URI and generation (None for a model registered before generations were recorded)."""
    onnx = model.get("onnx") or {}
    if onnx.get("error"):
        raise Conflict(f"model {model['id']} has no ONNX weights: the export failed ({onnx['error']})")
    uri = (model.get("weights") or {}).get("onnx")
    if not uri:
        raise NotFound(f"model {model['id']} has no ONNX weights")
    return uri, onnx.get("generation")


def class_filter(wanted: list | None, names: list[str]) -> frozenset[int] | None:
    """Class names or ids to keep, as ids; Invalid naming one the model does not have."""
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
            raise Invalid(f"classes: {text!r} is not a class of this model ({', '.join(names)}) "
                          f"nor an id below {len(names)}", "classes")
    return frozenset(ids)


# ---- images named in the bucket ------------------------------------------------

def bucket_sources(uris: list, may_see: MaySee, deadline_seconds: float, max_bytes: int) -> list[ImageSource]:
    """Dataset images named by gs:// URI: Invalid for a malformed one, Forbidden outside the data bucket's
    datasets, NotFound for a dataset the caller cannot see, and TooLarge when together they are over
    `max_bytes` (their sizes read from the objects' metadata first); then read in parallel, each the
    generation whose size was read."""
    names = [_object_name(uri, may_see) for uri in uris]
    found = list(_readers.map(lambda name: _stored(name, deadline_seconds), names))
    _check_total(uris, found, max_bytes)
    return list(_readers.map(_read_object, uris, found))


def _object_name(uri, may_see: MaySee) -> str:
    if not isinstance(uri, str) or not uri.startswith("gs://") or "/" not in uri[5:]:
        raise Invalid(f"images: {str(uri)[:200]!r} is not a gs://<bucket>/<object> URI", "images")
    bucket, _, name = uri[5:].partition("/")
    role = layout.classify(name)
    if bucket != config.data_bucket() or role.kind != "image" or role.dataset is None:
        raise Forbidden(f"images: {uri[:200]!r} is not a dataset image of gs://{config.data_bucket()}/"
                        f"{layout.DATASETS_PREFIX}", "images")
    if not may_see(role.dataset):  # another tenant's object: as if it did not exist
        raise NotFound(f"images: no dataset {role.dataset!r} (of {uri[:200]!r})", "images")
    return name


@dataclass(frozen=True)
class _Stored:
    """An object's generation and size, from its metadata."""
    name: str
    generation: int
    size: int


def _stored(name: str, deadline_seconds: float) -> _Stored | None:
    blob = storage.bucket().get_blob(name, timeout=deadline_seconds)
    return _Stored(name, blob.generation, blob.size or 0) if blob else None


def _check_total(uris: list[str], found: list[_Stored | None], max_bytes: int) -> None:
    sizes = [stored.size if stored else 0 for stored in found]
    if sum(sizes) > max_bytes:
        largest = max(range(len(sizes)), key=sizes.__getitem__)
        raise TooLarge(f"images: the {len(uris)} named objects hold {sum(sizes)} bytes together "
                       f"({uris[largest][:200]} alone {sizes[largest]}); a prediction request takes at most "
                       f"{max_bytes} bytes ({max_bytes >> 20} MiB) of images: name fewer or smaller images",
                       "images")


def _read_object(uri: str, stored: _Stored | None) -> ImageSource:
    try:
        if stored is None:
            raise NotFound(uri)
        return ImageSource(uri, storage.blob(stored.name, stored.generation).download_as_bytes())
    except (NotFound, ObjectGone):  # never there, or replaced since its size was read
        return ImageSource(uri, problem=ImageRejected("image_not_found", f"no object {uri}"))


# ---- predicting ------------------------------------------------------------------

@dataclass(frozen=True)
class Prepared:
    """One image made ready for the model: its upright size (w, h), the model input and where it sits in it."""
    size: tuple[int, int]
    batch: np.ndarray
    placement: prediction.Letterbox


class Decoding:
    """The sources' images decoded in the background, at most DECODE_AHEAD ahead of the one being predicted
    (each next one overlaps the inference before it). Each is turned into the model's input where it is
    decoded, so only that small input waits: full-size pixels never outlive their decoding."""

    def __init__(self, sources: list[ImageSource], session: model_cache.LoadedModel, max_pixels: int):
        self.sources, self.session, self.max_pixels = sources, session, max_pixels
        self._pending: dict[int, Future] = {}
        for index in range(min(DECODE_AHEAD, len(sources))):
            self._start(index)

    def _start(self, index: int) -> None:
        self._pending[index] = _decoders.submit(_prepared, self.sources[index], self.session, self.max_pixels)

    def prepared(self, index: int) -> Prepared:
        """Source `index` ready for the model; ImageRejected when it is no image, or one too large."""
        if index + DECODE_AHEAD < len(self.sources):
            self._start(index + DECODE_AHEAD)
        return self._pending.pop(index).result()


def _prepared(source: ImageSource, session: model_cache.LoadedModel, max_pixels: int) -> Prepared:
    if source.problem:
        raise source.problem
    if source.data is None:  # a source is its bytes or why it has none: never neither
        raise ImageRejected("image_not_found", f"{source.source}: no bytes were read")
    pixels = prediction.decode_image(source.data, max_pixels)
    canvas, placement = prediction.letterbox(pixels, session.input_size, session.stride)
    return Prepared((pixels.shape[1], pixels.shape[0]), prediction.to_input([canvas]), placement)


def predict(model: dict, session: model_cache.LoadedModel, decoding: Decoding, thresholds: Thresholds) -> dict:
    timer = Timer()
    results = [_prediction(session, decoding, index, thresholds, timer) for index in range(len(decoding.sources))]
    return {"model_id": model["id"], "classes": session.names, "predictions": results, "speed_ms": timer.view()}


def _prediction(session: model_cache.LoadedModel, decoding: Decoding, index: int, thresholds: Thresholds,
                timer: Timer) -> dict:
    source = decoding.sources[index]
    try:
        started = time.perf_counter()
        ready = decoding.prepared(index)
        started = timer.add("preprocess", started)  # what decoding still took once the image was wanted
    except ImageRejected as rejected:
        return {"source": source.source, "width": None, "height": None, "boxes": [],
                "error": {"code": rejected.code, "message": rejected.message}}
    output = session.run(ready.batch)
    started = timer.add("inference", started)
    found = prediction.detections(output[0], ready.placement, thresholds, session.end_to_end)
    timer.add("postprocess", started)
    width, height = ready.size
    return {"source": source.source, "width": width, "height": height,
            "boxes": [prediction.box_view(d, ready.size, session.names) for d in found]}
