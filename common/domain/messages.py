"""The Pub/Sub messages: one declared model per message, used to publish (common.cloud.topics) and to consume
(common.platform.events.decode). docs/architecture.md#messages lists them with their topics.

On the wire a message is its model as JSON, the fields it was given only (exclude_unset), under the names
older deployments publish, so a message queued before a deployment still decodes after it.

Every model is strict (JSON types as they are: "3" is not a number, true is not 1) and frozen. A field it
does not declare is ignored: a rejected message is acknowledged and never retried, so refusing a field a
newer publisher added would lose its work during a rolling deployment, while ignoring it does what the
message asked before the field existed. Two messages keep what they do not declare, as their consumer reads
it: a progress event (its metrics, evaluation and what a newer trainer adds are recorded on the job) and a
training request (its Ultralytics arguments, checked by common.domain.training_request).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from common.domain import layout, training_job
from common.domain.training_request import VERSION_ID

MAX_DOCUMENT_ID_BYTES = 1500  # Firestore's limit on a document id


def _document_id(value: str) -> str:
    if not layout.is_document_id(value) or len(value.encode()) > MAX_DOCUMENT_ID_BYTES:
        raise ValueError("not a document id (1-1500 bytes, no '/', not '.', '..' or '__...__')")
    return value


def _dataset_name(value: str) -> str:
    if not layout.is_valid_dataset_name(value):
        raise ValueError(f"not a dataset name: {layout.DATASET_NAME_RULE}")
    return value


def _version_id(value: str) -> str:
    if not VERSION_ID.match(value):
        raise ValueError("not a version id (v1, v2, ...)")
    return value


def _event_type(value: str) -> str:
    if value not in training_job.EVENT_TYPES:
        raise ValueError(f"not a progress event type ({', '.join(training_job.EVENT_TYPES)})")
    return value


DocumentId = Annotated[str, AfterValidator(_document_id)]
DatasetName = Annotated[str, AfterValidator(_dataset_name)]
VersionId = Annotated[str, AfterValidator(_version_id)]
Count = Annotated[int, Field(ge=0, le=2**53)]  # a JSON number every reader holds exactly


class Message(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    def wire(self) -> bytes:
        """The message as published: JSON of the fields it was given."""
        return self.model_dump_json(exclude_unset=True).encode()


class JobStep(Message):
    """dataset-jobs: one step of a kernel job (common.services.jobs): its plan, one unit, or its end."""
    job_id: DocumentId
    step: Literal["plan", "chunk", "end"]
    chunk: Count | None = None  # the unit's number, for a chunk step
    items: list[str] | None = None  # a chunk published before plans were stored carried its items

    @model_validator(mode="after")
    def _a_chunk_names_its_unit(self) -> Self:
        if self.step == "chunk" and self.chunk is None:
            raise ValueError("a chunk step needs its chunk number")
        return self


class ExportRequest(Message):
    """export-requests: write this export (common.services.export)."""
    export_id: DocumentId


class VersionRequest(Message):
    """export-requests: freeze this version of the dataset (common.services.versions)."""
    dataset: DatasetName
    version: VersionId


# What export-requests carries: an export to write, or a version to freeze (an export_id wins where both are).
EXPORT_TOPIC: TypeAdapter[ExportRequest | VersionRequest] = TypeAdapter(
    Annotated[ExportRequest | VersionRequest, Field(union_mode="left_to_right")])


class ImportRequest(Message):
    """import-requests: probe this import's source and launch its phase (common.services.start_import)."""
    import_id: DocumentId


class ContinuationRequest(Message):
    """training-requests with the attribute continuation=1 (training_job.CONTINUATION_ATTRIBUTE): start the
    execution that goes on after run `continues_run` of the job (common.services.continue_training)."""
    job_id: DocumentId
    continues_run: Count


class TrainingRequest(Message):
    """training-requests: a training as the API's POST /training body gives it, or as a direct publisher
    writes it. Only its being a JSON object is checked here: common.domain.training_request.validate checks
    its fields with the reasons the failed job records for its requester to read."""
    model_config = ConfigDict(extra="allow")

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ProgressEvent(Message):
    """training-progress: what the trainer did (common.services.record_progress applies it to the job). The
    fields declared are those a job's rules read; what else a trainer sends is kept (metrics, evaluation...)."""
    model_config = ConfigDict(extra="allow")
    job_id: DocumentId
    sequence: Count  # training_job.sequence: run * RUN_STRIDE + n
    type: Annotated[str, AfterValidator(_event_type)]
    run: Count | None = None
    time: float | None = None
    epoch: Count | None = None
    epochs: Count | None = None
    error: str | None = None
    execution: str | None = None
    device: str | None = None
    metrics: dict[str, Any] | None = None
    weights: dict[str, Any] | None = None
    classes: list[str] | None = None
    onnx: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _an_epoch_says_which(self) -> Self:
        if self.type in ("epoch", "continued") and self.epoch is None:
            raise ValueError(f"a {self.type} event needs its epoch")
        if self.type == "epoch" and self.epochs is None:
            raise ValueError("an epoch event needs its epochs")
        if self.type == "continued" and self.run is None:
            raise ValueError("a continued event needs its run (the continuation goes on after it)")
        return self

    def fields(self) -> dict[str, Any]:
        """The event as its rules read it (common.domain.training_job.apply_event): the fields it was given."""
        return self.model_dump(exclude_unset=True)


class Sweep(Message):
    """training-watch: one sweep of the watch (Cloud Scheduler's tick, and the local stack's); with reconcile, the
    scheduled reconciliation of the buckets' listing with the index instead (common.services.reconcile)."""
    sweep: Literal[True]
    reconcile: bool = False
