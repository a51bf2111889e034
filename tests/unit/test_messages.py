"""The Pub/Sub messages' contracts (common.domain.messages) and their one decoder (common.platform.events.decode):
what decodes, what is refused and how, what goes on the wire, and that every consumer's function answers a bad
message the same way."""
import base64
import importlib
import json

import pytest
from cloudevents.http import CloudEvent

from common.domain import messages, training_job
from common.domain.bounded_json import MAX_DEPTH
from common.domain.messages import (ContinuationRequest, ExportRequest, ImportRequest, JobStep, ProgressEvent, Sweep,
                                    TrainingRequest, VersionRequest)
from common.platform.events import MAX_MESSAGE_BYTES, BadMessage, PubSubMessage, decode
from common.platform.handler import Result


def message(data, **attributes: str) -> PubSubMessage:
    return PubSubMessage("m1", data if isinstance(data, bytes) else json.dumps(data).encode(), "e1", attributes)


def refusal(data, model) -> BadMessage:
    with pytest.raises(BadMessage) as refused:
        decode(message(data), model)
    return refused.value


# ---- decode ----------------------------------------------------------------------------

def test_a_good_message_decodes_to_its_model():
    step = decode(message({"job_id": "job-1", "step": "chunk", "chunk": 3}), JobStep)
    assert (step.job_id, step.step, step.chunk, step.items) == ("job-1", "chunk", 3, None)


def test_a_message_that_is_not_json_is_refused_as_such():
    bad = refusal(b"{not json", JobStep)
    assert bad.field == "" and bad.problem.startswith("the message is not JSON") and bad.document is None


def test_a_message_that_is_not_utf8_is_refused_as_not_json():
    assert refusal(b"\xff\xfe{}", ImportRequest).problem.startswith("the message is not JSON")


def test_a_missing_field_is_named():
    bad = refusal({"job_id": "job-1"}, ContinuationRequest)
    assert (bad.field, bad.problem) == ("continues_run", "Field required")
    assert bad.document == {"job_id": "job-1"} and str(bad) == "continues_run: Field required"


@pytest.mark.parametrize("body, field", [
    ({"job_id": "job-1", "continues_run": "3"}, "continues_run"),   # strict: a string is not a number
    ({"job_id": "job-1", "continues_run": True}, "continues_run"),  # nor is true 1
    ({"job_id": "job-1", "continues_run": 1.5}, "continues_run"),
    ({"job_id": "job-1", "continues_run": -1}, "continues_run"),
    ({"job_id": 7, "continues_run": 1}, "job_id"),
    ({"job_id": "a/b", "continues_run": 1}, "job_id"),              # never a path into another collection
    ({"job_id": "", "continues_run": 1}, "job_id"),
])
def test_a_field_of_the_wrong_type_or_value_is_named(body, field):
    assert refusal(body, ContinuationRequest).field == field


def test_a_message_that_is_not_an_object_is_refused_for_the_whole():
    bad = refusal([1, 2], ImportRequest)
    assert bad.field == "" and "valid dictionary" in bad.problem


def test_an_extra_field_is_ignored_so_a_newer_publisher_is_not_lost():
    assert decode(message({"import_id": "import-1", "priority": 9}), ImportRequest) == \
        ImportRequest(import_id="import-1")


def test_the_progress_event_and_the_training_request_keep_what_they_do_not_declare():
    event = decode(message({"job_id": "job-1", "sequence": 4, "type": "started", "device": "cpu",
                            "materialize_seconds": 1.5}), ProgressEvent)
    assert event.fields()["materialize_seconds"] == 1.5
    request = decode(message({"dataset": "d", "model": "yolo11n.pt", "lr0": 0.01}), TrainingRequest)
    assert request.body() == {"dataset": "d", "model": "yolo11n.pt", "lr0": 0.01}


def test_a_message_over_the_size_limit_is_refused_before_it_is_parsed():
    bad = refusal(b" " * (MAX_MESSAGE_BYTES + 1), ImportRequest)
    assert f"at most {MAX_MESSAGE_BYTES}" in bad.problem


def test_a_message_nested_too_deep_is_refused_without_a_recursion_error():
    deep = b'{"import_id": "i", "x": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"
    assert "nests" in refusal(deep, ImportRequest).problem
    assert "nests" in refusal(b"[" * 100_000, ImportRequest).problem


def test_every_error_is_told_a_few_at_most():
    bad = refusal({"job_id": 1, "sequence": "x", "type": "exploded"}, ProgressEvent)
    assert bad.field == "job_id" and "(and 2 more: sequence: " in bad.problem and "type: not a progress" in bad.problem


# ---- the messages' own rules -----------------------------------------------------------

def test_a_chunk_step_names_its_chunk():
    bad = refusal({"job_id": "job-1", "step": "chunk"}, JobStep)
    assert bad.field == "" and "chunk number" in bad.problem
    assert refusal({"job_id": "job-1", "step": "unit", "chunk": 1}, JobStep).field == "step"


def test_an_export_topic_message_is_an_export_or_a_version_and_the_export_wins():
    assert decode(message({"export_id": "export-1"}), messages.EXPORT_TOPIC) == ExportRequest(export_id="export-1")
    assert decode(message({"dataset": "d", "version": "v2"}), messages.EXPORT_TOPIC) == \
        VersionRequest(dataset="d", version="v2")
    both = {"export_id": "export-1", "dataset": "d", "version": "v2"}
    assert isinstance(decode(message(both), messages.EXPORT_TOPIC), ExportRequest)
    bad = refusal({"dataset": "d", "version": "2"}, messages.EXPORT_TOPIC)
    assert "export_id" in str(bad) and "version" in str(bad)


@pytest.mark.parametrize("event, problem", [
    ({"type": "epoch", "epochs": 3}, "needs its epoch"),
    ({"type": "epoch", "epoch": 1}, "needs its epochs"),
    ({"type": "continued", "epoch": 1}, "needs its run"),
    ({"type": "done"}, "not a progress event type"),
])
def test_a_progress_event_carries_what_its_type_is_applied_with(event, problem):
    assert problem in refusal({"job_id": "job-1", "sequence": 1, **event}, ProgressEvent).problem


def test_the_event_types_are_the_jobs_rules_own():
    for kind in training_job.EVENT_TYPES:
        fields = {"epoch": 1, "epochs": 2, "run": 0} if kind in ("epoch", "continued") else {}
        assert decode(message({"job_id": "j", "sequence": 1, "type": kind, **fields}), ProgressEvent).type == kind


def test_the_watch_tick_is_cloud_schedulers_body():
    assert decode(message({"sweep": True}), Sweep).sweep is True
    assert refusal({}, Sweep).field == "sweep"


# ---- on the wire -----------------------------------------------------------------------

# What the code before these models published (json.dumps of a dict): queued messages must still decode.
OLDER_DEPLOYMENTS = [
    (JobStep, {"job_id": "job-1", "step": "plan"}),
    (JobStep, {"job_id": "job-1", "step": "chunk", "chunk": 2}),
    (JobStep, {"job_id": "job-1", "step": "chunk", "chunk": 0, "items": ["labels/a.txt"]}),
    (JobStep, {"job_id": "job-1", "step": "end"}),
    (ExportRequest, {"export_id": "export-1"}),
    (VersionRequest, {"dataset": "d", "version": "v1"}),
    (ImportRequest, {"import_id": "import-1"}),
    (ContinuationRequest, {"job_id": "job-1", "continues_run": 2}),
    (TrainingRequest, {"dataset": "d", "model": "yolov8n.yaml", "epochs": 1, "request_id": "r1"}),
    (ProgressEvent, {"job_id": "job-1", "sequence": 1000001, "type": "epoch", "run": 1, "time": 1.5, "epoch": 1,
                     "epochs": 3, "metrics": {"metrics/mAP50(B)": 0.5}, "seconds": 2.0}),
    (ProgressEvent, {"job_id": "job-1", "sequence": 2, "type": "failed", "run": 0, "time": 3.0, "error": "boom"}),
    (Sweep, {"sweep": True}),
]


@pytest.mark.parametrize("model, older", OLDER_DEPLOYMENTS)
def test_what_older_deployments_publish_decodes_and_is_published_the_same(model, older):
    decoded = decode(message(json.dumps(older).encode()), model)
    assert json.loads(decoded.wire()) == older
    assert json.loads(model.model_validate(older).wire()) == older


def test_a_message_built_by_its_publisher_has_only_the_fields_it_was_given():
    assert json.loads(JobStep(job_id="job-1", step="plan").wire()) == {"job_id": "job-1", "step": "plan"}


# ---- every consumer answers a bad message the same way ----------------------------------

FUNCTIONS = [("dataset_jobs", "dataset_job", {}), ("export", "export_request", {}),
             ("imports", "import_request", {}), ("progress", "training_progress", {}),
             ("watch", "training_watch", {}),
             ("train", "training_request", {training_job.CONTINUATION_ATTRIBUTE: "1"})]


def delivered(data: bytes, attributes: dict) -> CloudEvent:
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "e1", "source": "test"},
                      {"message": {"messageId": "m1", "data": base64.b64encode(data).decode(),
                                   "attributes": attributes}})


def logged(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("function, entry, attributes", FUNCTIONS)
@pytest.mark.parametrize("data, field", [(b"{not json", ""), (b'{"job_id": ["x"], "sweep": false}', None)])
def test_every_consumer_rejects_a_bad_message_the_same_way(capsys, function, entry, attributes, data, field):
    """Through each function's own entry point: acknowledged (nothing raised, so never redelivered), REJECTED,
    and one log line naming the field and what is wrong with it, before any cloud is touched."""
    handler = getattr(importlib.import_module(f"functions.{function}.main"), entry)
    outcome = handler(delivered(data, attributes))
    assert outcome.result is Result.REJECTED and outcome.detail.startswith("bad message: ")
    (record,) = [line for line in logged(capsys) if line.get("outcome") == "rejected"]
    assert (record["severity"], record["message_id"]) == ("WARNING", "m1")
    assert record["error"] and record["message"] == outcome.detail
    assert record["field"] == field if field is not None else record["field"]
