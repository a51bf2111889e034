"""The JSON bodies the API takes, one declared model each (docs/api.md, "Request bodies").

The router validates a request's body against its route's model and hands the handler the model's instance
(common.api.edge); the OpenAPI document describes the body from the same model (common.api.openapi), so what
is documented is what is refused. A body that breaks its model is one 400 naming each field at fault and what
is wrong with it (common.domain.bodies.parse). Shape only: what a value means for a dataset as it is now (a
class it has, a version that exists, a path inside it, the operator's caps) is checked where that state is
known.

Every model is a bodies.Body: strict, refusing fields it does not declare; a label box and a training request
are the two that keep what they do not declare, each for the reason given there.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetCoreSchemaHandler, model_validator

from common.domain import access, class_changes, exports, imports, layout, proposals, training_request, versions
from common.domain.datayaml import MAX_CLASSES
from common.domain.labels import SentBox
from common.domain.bodies import Body

MAX_KEY_NAME = 100  # characters of an API key's name


@dataclass(frozen=True)
class OneOf:
    """A string that is one of `choices` (a domain's tuple of words): an enum in the schema."""
    choices: tuple[str, ...]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return handler.generate_schema(Literal.__getitem__(self.choices))


def rule(problem_of: Callable[[Any], str | None]) -> AfterValidator:
    """A domain rule that says what is wrong with a value (None: nothing), as a validator."""
    def check(value: Any) -> Any:
        problem = problem_of(value)
        if problem:
            raise ValueError(problem)
        return value
    return AfterValidator(check)


def _dataset_name(name: str) -> str | None:
    return None if layout.is_valid_dataset_name(name) else f"id must be a dataset name: {layout.DATASET_NAME_RULE}"


RequestId = Annotated[str, Field(pattern=training_request.REQUEST_ID.pattern)]


def _request_id() -> Any:
    return Field(None, description="1-128 letters, digits or . _ : -; a retry with the same one gets the job the "
                                   "first request made (the CLI sends one)")


Fraction = Annotated[float, Field(ge=0, le=1)]


class NewDataset(Body):
    """The dataset to make: empty, owned by the caller."""
    id: Annotated[str, rule(_dataset_name)] = Field(description=layout.DATASET_NAME_RULE)


class MemberRole(Body):
    """The role to give."""
    role: Annotated[str, OneOf(access.ROLES)] = Field(description="viewer < editor < owner")


class NewApiKey(Body):
    """The key to make."""
    name: Annotated[str, Field(min_length=1, max_length=MAX_KEY_NAME)] = Field(
        description="what the key is for (surrounding spaces are dropped)")
    expires_at: float | None = Field(None, description="seconds since the epoch; default and maximum: "
                                                       "API_KEY_DEFAULT_DAYS, API_KEY_MAX_DAYS")

    @model_validator(mode="before")
    @classmethod
    def _stripped(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            return {**data, "name": data["name"].strip()}
        return data


class NewVersion(Body):
    """A name and a note, both optional; a request_id makes a retried request get the version the first one
    made."""
    name: Annotated[str, Field(max_length=versions.MAX_NAME)] | None = None
    note: Annotated[str, Field(max_length=versions.MAX_NOTE)] | None = None
    request_id: RequestId | None = _request_id()


class ExportRequest(Body):
    """What to export."""
    format: Annotated[str, OneOf(exports.FORMATS)]
    version: Annotated[str, Field(pattern=training_request.VERSION_ID.pattern)] | None = Field(
        None, description="a version id (v1, v2, ...); without one, a new version is frozen")
    background: bool = Field(True, description="include background images (an empty label)")
    request_id: RequestId | None = _request_id()


class NewImport(Body):
    """What to import."""
    url: Annotated[str, Field(min_length=1)] = Field(description="https://…, http://… or gs://…: a .zip, .tar, "
                                                                 ".tar.gz or .tgz")
    format: Annotated[str, OneOf(imports.FORMATS)] | None = Field(None, description="left out, the archive's "
                                                                                    "files say")
    tasks: Annotated[int, Field(ge=1, le=imports.MAX_TASKS)] | None = Field(
        None, description="parallel tasks for a zip (at most the deployment's IMPORT_TASKS run)")
    request_id: RequestId | None = _request_id()


class AutolabelRequest(Body):
    """The registered model that proposes boxes, and for which images."""
    model_id: Annotated[str, Field(min_length=1)] = Field(description="a registered model's id (GET /models)")
    conf: Fraction = Field(0.25, description="the least confidence of a proposed box")
    iou: Fraction = Field(0.7, description="boxes overlapping more than this are one box")
    images: Annotated[str, OneOf(proposals.SCOPES)] = Field(proposals.UNLABELED,
                                                           description="unlabeled: images without a label file")
    request_id: RequestId | None = _request_id()


class AcceptAll(Body):
    """Which proposals become labels: those at or above min_confidence; with merge, added to a label file's
    own rows (else an image with a label file is skipped)."""
    min_confidence: Fraction = 0.0
    merge: bool = False
    request_id: RequestId | None = _request_id()


class AcceptImage(Body):
    """As for every image, for one; label_generation is the one the reviewer saw."""
    min_confidence: Fraction = 0.0
    merge: bool = False
    label_generation: Annotated[int, Field(ge=0)] | None = Field(
        None, description="the image's label_generation (0: no label); left out, the one the index holds")


class ClassNames(Body):
    """The dataset's class names, in class id order."""
    names: Annotated[list[str], Field(min_length=1, max_length=MAX_CLASSES),
                     rule(class_changes.names_problem)]


class Remap(Body):
    """Classes to rename, merge (two mapped to one name) or delete (mapped to null); those not named keep
    their name. names: the order after the remap (else the order the new names first appear in)."""
    map: Annotated[dict[str, Annotated[str, Field(min_length=1)] | None], Field(min_length=1)] = Field(
        description='{"old name": "new name" or null}')
    names: list[str] | None = None


class Box(BaseModel):
    """A box of a label: its class by id or by name (class wins), centre and size as fractions of the image.
    Fields it does not declare are left alone, so a box of the image view (with class_name) may be sent back."""
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    class_id: int | None = None
    class_name: str | None = Field(None, alias="class", description="the class by name")
    cx: float
    cy: float
    w: float
    h: float

    @model_validator(mode="after")
    def _has_a_class(self) -> Box:
        if self.class_id is None and self.class_name is None:
            raise ValueError("a box names its class: class_id, or class by name")
        return self

    def sent(self) -> SentBox:
        """The box as the label rules read it (common.domain.labels.rows_from_boxes)."""
        named = self.class_name if self.class_name is not None else cast(int, self.class_id)
        return named, self.cx, self.cy, self.w, self.h


class Labels(Body):
    """The image's boxes, replacing those its label file holds."""
    labels: list[Box]


class UploadFile(Body):
    """A file to upload, by its path inside the dataset."""
    path: str = Field(description="e.g. images/train/a.jpg; an archive: any name ending .zip")
    size: Annotated[int, Field(ge=0)] = Field(description="bytes (at most MAX_UPLOAD_BYTES)")
    content_type: str = ""
    md5: str = Field("", description="base64, as Cloud Storage's md5Hash: a file already there with it gets no "
                                     "session")
    archive: bool = Field(False, description="a zip to unpack into the dataset")


class Uploads(Body):
    """The files to upload (at most MAX_UPLOAD_FILES)."""
    files: Annotated[list[UploadFile], Field(min_length=1)]


class TrainingBody(Body):
    """A training request. request_id and model are checked here (a registered model you may not view answers
    404); any other field is the training request's own (epochs, imgsz, batch, patience, val_fraction,
    version, accelerator, and Ultralytics' arguments: docs/training.md), checked by the training request's rules
    before it is recorded (a 400). What depends on the dataset's files ends as a failed job with its reason, as
    for a request published directly."""
    model_config = ConfigDict(extra="allow")
    request_id: RequestId | None = _request_id()
    dataset: str | None = Field(None, description="the dataset to train on")
    model: Annotated[str, AfterValidator(training_request.check_model)] = Field(
        description=training_request.MODEL_YAML_HELP)

    def request(self, request_id: str) -> dict[str, Any]:
        """The request as the training function reads it, with its request_id."""
        return {**self.model_dump(exclude_none=True), "request_id": request_id}
