"""The API's request bodies as declared models (common.domain.request_bodies, read by common.domain.bodies):
what each takes, what it refuses and how the refusal reads, and that the OpenAPI document describes each body
from its model."""
from __future__ import annotations

import inspect
import json

import pytest

from common.api import openapi, router
from common.api.resources import predictions
from common.domain import imports, request_bodies
from common.domain.bodies import MAX_PROBLEMS, Body, BodyRefused, parse
from common.domain.prediction_request import MAX_BATCH, PredictImages

GOOD = [
    (request_bodies.NewDataset, {"id": "birds-2"}),
    (request_bodies.MemberRole, {"role": "editor"}),
    (request_bodies.NewApiKey, {"name": "ci", "expires_at": 1.8e9}),
    (request_bodies.NewVersion, {}),
    (request_bodies.ExportRequest, {"format": "voc", "version": "v2", "background": False, "request_id": "r-1"}),
    (request_bodies.NewImport, {"url": "gs://b/a.zip", "format": "coco", "tasks": 4}),
    (request_bodies.AutolabelRequest, {"model_id": "m", "conf": 0, "iou": 1, "images": "all"}),
    (request_bodies.AcceptAll, {"min_confidence": 0.5, "merge": True}),
    (request_bodies.AcceptImage, {"label_generation": 0}),
    (request_bodies.ClassNames, {"names": ["person", "bus"]}),
    (request_bodies.Remap, {"map": {"a": "b", "c": None}, "names": ["b"]}),
    (request_bodies.Labels, {"labels": [{"class_id": 0, "cx": 0.5, "cy": 0.5, "w": 0.2, "h": 0.1}]}),
    (request_bodies.Uploads, {"files": [{"path": "images/a.jpg", "size": 3}]}),
    (request_bodies.TrainingBody, {"dataset": "d", "model": "yolov8n.yaml", "epochs": 3, "lr0": 0.01}),
]


@pytest.mark.parametrize("model, body", GOOD)
def test_a_sound_body_is_its_model(model, body):
    parsed = parse(model, body)
    assert isinstance(parsed, model) and parsed.model_dump(by_alias=True, exclude_unset=True) == body


def test_left_out_fields_take_the_defaults_the_handlers_used():
    assert parse(request_bodies.AutolabelRequest, {"model_id": "m"}).model_dump() == \
        {"model_id": "m", "conf": 0.25, "iou": 0.7, "images": "unlabeled", "request_id": None}
    assert parse(request_bodies.ExportRequest, {"format": "yolo"}).background is True
    assert parse(request_bodies.AcceptImage, {}).model_dump() == \
        {"min_confidence": 0.0, "merge": False, "label_generation": None}
    assert parse(request_bodies.NewVersion, {}).model_dump() == {"name": None, "note": None, "request_id": None}


@pytest.mark.parametrize("model, body, param", [
    (request_bodies.NewImport, None, "body"), (request_bodies.NewImport, [], "body"),
    (request_bodies.NewImport, {"url": 3}, "url"), (request_bodies.NewImport, {}, "url"),
    (request_bodies.NewImport, {"url": "https://x", "extra": 1}, "extra"),
    (request_bodies.NewImport, {"url": "https://x", "format": "voc"}, "format"),
    (request_bodies.NewImport, {"url": "https://x", "tasks": 0}, "tasks"),
    (request_bodies.NewImport, {"url": "https://x", "tasks": True}, "tasks"),
    (request_bodies.NewImport, {"url": "https://x", "tasks": imports.MAX_TASKS + 1}, "tasks"),
    (request_bodies.NewImport, {"url": "https://x", "tasks": 2.0}, "tasks"),
    (request_bodies.NewVersion, {"name": 3}, "name"), (request_bodies.NewVersion, {"note": "x" * 2001}, "note"),
    (request_bodies.NewVersion, {"label": "x"}, "label"),
    (request_bodies.ExportRequest, {"format": "pascal"}, "format"),
    (request_bodies.ExportRequest, {"format": "coco", "version": "1"}, "version"),
    (request_bodies.ExportRequest, {"format": "yolo", "background": "no"}, "background"),
    (request_bodies.ExportRequest, {"format": "yolo", "x": 1}, "x"),
    (request_bodies.AutolabelRequest, {}, "model_id"), (request_bodies.AutolabelRequest, {"model_id": ""}, "model_id"),
    (request_bodies.AutolabelRequest, {"model_id": "m", "conf": 1.5}, "conf"),
    (request_bodies.AutolabelRequest, {"model_id": "m", "conf": True}, "conf"),
    (request_bodies.AutolabelRequest, {"model_id": "m", "iou": "high"}, "iou"),
    (request_bodies.AutolabelRequest, {"model_id": "m", "images": "some"}, "images"),
    (request_bodies.AcceptImage, {"label_generation": -1}, "label_generation"),
    (request_bodies.AcceptImage, {"merge": 1}, "merge"),
    (request_bodies.AcceptAll, {"min_confidence": "0.5"}, "min_confidence"),
    (request_bodies.MemberRole, {"role": "admin"}, "role"),
    (request_bodies.NewDataset, {"id": "__x"}, "id"), (request_bodies.NewDataset, {"id": ".."}, "id"),
    (request_bodies.NewApiKey, {"name": "   "}, "name"), (request_bodies.NewApiKey, {"name": "k" * 101}, "name"),
    (request_bodies.NewApiKey, {"name": "k", "expires_at": "soon"}, "expires_at"),
    (request_bodies.ClassNames, {"names": []}, "names"), (request_bodies.ClassNames, {"names": ["a", "a"]}, "names"),
    (request_bodies.ClassNames, {"names": [" a"]}, "names"), (request_bodies.ClassNames, {"names": [1]}, "names"),
    (request_bodies.Remap, {"map": {}}, "map"), (request_bodies.Remap, {"map": {"a": 1}}, "map"),
    (request_bodies.Labels, {"labels": "none"}, "labels"),
    (request_bodies.Labels, {"labels": ["box"]}, "labels"),
    (request_bodies.Labels, {"labels": [{"class_id": True, "cx": 0.5, "cy": 0.5, "w": 0.2, "h": 0.1}]},
     "labels"),
    (request_bodies.Labels, {"labels": [{"class_id": 0, "cx": "0.5", "cy": 0.5, "w": 0.2, "h": 0.1}]},
     "labels"),
    (request_bodies.Labels, {"labels": [{"cx": 0.5, "cy": 0.5, "w": 0.2, "h": 0.1}]}, "labels"),
    (request_bodies.Uploads, {"files": []}, "files"),
    (request_bodies.Uploads, {"files": [{"path": "a.jpg", "size": -1}]}, "files"),
    (request_bodies.Uploads, {"files": [{"path": "a.jpg", "size": 1, "md5": 5}]}, "files"),
    (request_bodies.TrainingBody, {"dataset": "d"}, "model"),
    (request_bodies.TrainingBody, {"model": "gs://b/w.pt"}, "model"),
    (request_bodies.TrainingBody, {"model": "yolov8n.yaml", "request_id": "has spaces"}, "request_id"),
    (request_bodies.TrainingBody, {"model": "yolov8n.yaml", "dataset": 3}, "dataset"),
])
def test_a_bad_body_is_refused_naming_the_field(model, body, param):
    with pytest.raises(BodyRefused) as refused:
        parse(model, body)
    assert refused.value.param == param
    assert refused.value.message.startswith("the body must be a JSON object" if param == "body" else param)


def test_a_refusal_says_what_is_wrong_with_each_field():
    with pytest.raises(BodyRefused) as refused:
        parse(request_bodies.ExportRequest, {"format": "pascal", "versoin": "v1", "request_id": "a b"})
    problems = refused.value.message.split("; ")
    assert problems[0] == "format: Input should be 'yolo', 'coco' or 'voc'"
    assert problems[1].startswith("request_id: String should match pattern")
    assert problems[2] == "versoin is not a field of this body (it takes format, version, background, request_id)"


def test_a_problem_inside_a_field_says_where_and_the_param_names_the_field():
    with pytest.raises(BodyRefused) as refused:
        parse(request_bodies.Uploads, {"files": [{"path": "a.jpg", "size": 1}, {"path": "b.jpg", "size": -1}]})
    assert refused.value.param == "files"
    assert refused.value.message == "files[1].size: Input should be greater than or equal to 0"


def test_a_refusal_names_a_few_problems_and_counts_the_rest():
    files = [{"path": f"{i}.jpg", "size": -1} for i in range(MAX_PROBLEMS + 3)]
    with pytest.raises(BodyRefused) as refused:
        parse(request_bodies.Uploads, {"files": files})
    assert refused.value.message.count("files[") == MAX_PROBLEMS
    assert refused.value.message.endswith("; and 3 more")


def test_a_domain_rule_speaks_for_itself():
    with pytest.raises(BodyRefused) as refused:
        parse(request_bodies.NewDataset, {"id": "__x__"})
    assert refused.value.message.startswith("id must be a dataset name: 1 to 200 letters")
    with pytest.raises(BodyRefused) as refused:
        parse(request_bodies.TrainingBody, {"model": "yolov7x.yaml"})
    assert refused.value.message.startswith("model: unknown model 'yolov7x.yaml'")


def test_a_label_box_gives_its_class_by_name_or_id_and_may_be_a_viewed_box_sent_back():
    viewed = {"class_id": 1, "class_name": "bus", "cx": 0.5, "cy": 0.5, "w": 0.2, "h": 0.1}
    boxes = parse(request_bodies.Labels, {"labels": [viewed, {"class": "bus", "class_id": 0, "cx": 1, "cy": 0,
                                                                "w": 1, "h": 1}]}).labels
    assert [box.sent() for box in boxes] == [(1, 0.5, 0.5, 0.2, 0.1), ("bus", 1.0, 0.0, 1.0, 1.0)]


def test_an_api_keys_name_is_kept_without_its_surrounding_spaces():
    assert parse(request_bodies.NewApiKey, {"name": "  ci runner "}).name == "ci runner"


def test_a_training_body_keeps_the_fields_the_training_function_checks():
    body = parse(request_bodies.TrainingBody, {"dataset": "d", "model": "yolov8n.yaml", "epochs": 100000,
                                                "device": "cuda:7"})
    assert body.request("r-1") == {"dataset": "d", "model": "yolov8n.yaml", "epochs": 100000, "device": "cuda:7",
                                   "request_id": "r-1"}


# ---- the OpenAPI document --------------------------------------------------------------

def _document() -> dict:
    return openapi.document(router.API_ROUTES, predictions.ROUTES)


def test_every_route_with_a_body_documents_its_models_schema():
    document = _document()
    bodies = [route for route in router.API_ROUTES if route.body is not None]
    assert len(bodies) == 16  # 14, and the two reindex routes (common.domain.reindex)
    for route in bodies:
        documented = document["paths"][route.path][route.method.lower()]["requestBody"]
        schema = documented["content"]["application/json"]["schema"]
        assert documented["required"] is not route.body_optional
        assert schema["description"] == inspect.cleandoc(route.body.__doc__), route.path
        assert set(schema["properties"]) == {field.alias or name for name, field in route.body.model_fields.items()}
        assert "$defs" not in json.dumps(schema)


def test_the_models_a_body_holds_are_components_every_reference_finds():
    document = _document()
    text = json.dumps(document["paths"])
    references = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert {"Box", "UploadFile", "Error"} <= references <= set(document["components"]["schemas"])
    assert document["components"]["schemas"]["Box"]["properties"]["class"]["description"] == "the class by name"


def test_two_body_models_of_one_name_are_refused_when_the_document_is_written():
    class Box(Body):
        other: int

    class Holder(Body):
        boxes: list[Box]

    schemas: dict[str, dict] = {}
    openapi._body_schema(request_bodies.Labels, schemas)
    with pytest.raises(ValueError, match="two request body models are named Box"):
        openapi._body_schema(Holder, schemas)


# ---- prediction's JSON body (read by its route once the model is authorized) -----------------------

@pytest.mark.parametrize("body", [{"images": ["gs://b/datasets/d/images/a.jpg"]},
                                  {"images": ["gs://b/x"] * 32, "conf": "0.5", "iou": 0.3, "max_det": 3,
                                   "classes": ["bus", 0]},
                                  {"images": ["gs://b/x"], "classes": "bus,person"}])
def test_a_prediction_body_names_images_and_takes_the_querys_parameters(body):
    parsed = parse(PredictImages, body).model_dump(exclude_unset=True)
    assert parsed == body and [type(value) for value in parsed.values()] == [type(value) for value in body.values()]


@pytest.mark.parametrize("body, param", [
    ({}, "images"), ({"images": []}, "images"), ({"images": ["gs://b/x"] * (MAX_BATCH + 1)}, "images"),
    ({"images": [7]}, "images"), ({"images": "gs://b/x"}, "images"),
    ({"images": ["gs://b/x"], "colour": "red"}, "colour"),
    ({"images": ["gs://b/x"], "conf": True}, "conf"), ({"images": ["gs://b/x"], "max_det": [3]}, "max_det"),
    ({"images": ["gs://b/x"], "classes": []}, "classes"), ({"images": ["gs://b/x"], "classes": [True]}, "classes"),
])
def test_a_bad_prediction_body_is_refused_naming_the_field(body, param):
    with pytest.raises(BodyRefused) as refused:
        parse(PredictImages, body)
    assert refused.value.param == param
