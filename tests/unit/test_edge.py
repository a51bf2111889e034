"""The one HTTP edge (common.api.edge) without a cloud: a refusal of a layer below becomes its status in one
place, a deployment that any origin may call answers a browser's preflight and carries CORS on every answer,
a handler's own headers reach the caller, a raw body over its cap is refused before the caller is asked for,
the parameters prediction declares read as it always read them, and a JSON body reaches its handler as its
route's model or is one 400 naming what is wrong."""
from __future__ import annotations

import json

import pytest
from flask import Request
from werkzeug.test import EnvironBuilder

from common.api import params
from common.api.edge import SECURITY_HEADERS, Router
from common.api.errors import ApiError
from common.api.resources import predictions
from common.api.routes import RawBody, Route
from common.domain import refusals, request_bodies

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST"}
KINDS = [(refusals.Invalid, 400), (refusals.Forbidden, 403), (refusals.NotFound, 404), (refusals.Conflict, 409),
         (refusals.TooLarge, 413)]


def request(path: str, method: str = "GET", **options) -> Request:
    return Request(EnvironBuilder(path=path, method=method, **options).get_environ())


def answer_of(router: Router, *args, **options) -> tuple[int, dict, dict]:
    response = router.handle(request(*args, **options))
    body = response.get_data()
    return response.status_code, json.loads(body) if body else {}, dict(response.headers)


def refusing(kind: type[refusals.Refused]):
    def refuse(ctx, args):
        raise kind(f"refused as {kind.__name__}", "thing")
    return refuse


def timed(ctx, args):
    return 200, {"ok": True}, {"Server-Timing": "work;dur=1.00"}


PUBLIC = [Route("GET", f"/{kind.__name__}", refusing(kind), "refuses", {}, public=True) for kind, _ in KINDS]
PUBLIC.append(Route("POST", "/timed", timed, "answers with a header", {}, public=True))


@pytest.mark.parametrize("kind, status", KINDS)
def test_a_refusal_of_a_layer_below_answers_its_status_with_the_one_error_shape(kind, status):
    code, body, headers = answer_of(Router(PUBLIC, "test"), f"/{kind.__name__}", headers={"X-Request-Id": "r-1"})
    assert code == status
    assert body == {"error": {"status": status, "message": f"refused as {kind.__name__}", "request_id": "r-1",
                              "param": "thing"}}
    assert headers["X-Request-Id"] == "r-1" and headers["Content-Type"] == "application/json"


def test_every_refusal_kind_has_its_status():
    assert {kind: ApiError.of(kind("x")).status for kind, _ in KINDS} == dict(KINDS)


def test_a_deployment_any_origin_may_call_answers_the_preflight_and_carries_cors_everywhere():
    router = Router(PUBLIC, "test", cors=CORS)
    preflight = router.handle(request("/timed", "OPTIONS", headers={"Access-Control-Request-Method": "POST",
                                                                     "Origin": "https://elsewhere.example"}))
    assert preflight.status_code == 204 and preflight.headers["X-Request-Id"]
    assert {name: preflight.headers[name] for name in CORS} == CORS
    for args in (("/timed", "POST"), ("/nowhere",), ("/timed", "GET"), ("/Conflict",)):
        code, _, headers = answer_of(router, *args)
        assert {name: headers[name] for name in CORS} == CORS, (args, code)
        assert {name: headers[name] for name in SECURITY_HEADERS} == SECURITY_HEADERS


def test_a_deployment_without_cors_answers_no_preflight():
    code, _, headers = answer_of(Router(PUBLIC, "test"), "/timed", "OPTIONS",
                                 headers={"Access-Control-Request-Method": "POST"})
    assert (code, headers["Allow"]) == (405, "POST") and "Access-Control-Allow-Origin" not in headers


def test_a_handlers_own_headers_reach_the_caller():
    code, body, headers = answer_of(Router(PUBLIC, "test"), "/timed", "POST")
    assert (code, body, headers["Server-Timing"]) == (200, {"ok": True}, "work;dur=1.00")


def test_a_raw_body_over_its_cap_is_refused_before_the_caller_is_asked_for():
    """A private route: without Authorization it would be a 401 (which needs the cloud to tell a key); the
    declared size is refused first."""
    raw = RawBody({"image/*": {}}, cap=lambda: 10, refusal=lambda size: ApiError(413, f"{size} bytes", "body"))
    router = Router([Route("POST", "/raw", timed, "takes bytes", {}, raw_body=raw)], "test")
    code, body, _ = answer_of(router, "/raw", "POST", data=b"x" * 11)
    assert (code, body["error"]["message"], body["error"]["param"]) == (413, "11 bytes", "body")


@pytest.mark.parametrize("query, expected", [
    ({}, {"conf": 0.25, "iou": 0.7, "max_det": 300, "classes": None}),
    ({"conf": "0.5", "max_det": "3", "classes": ["a,b", "c"]}, {"conf": 0.5, "iou": 0.7, "max_det": 3,
                                                                "classes": ["a", "b", "c"]}),
])
def test_predictions_parameters_read_from_the_query(query, expected):
    given = request("/", query_string=query).args
    read = params.read_all(predictions.PARAMETERS, {}, given, {})
    assert read == expected


@pytest.mark.parametrize("query, param", [({"conf": "2"}, "conf"), ({"conf": "nan"}, "conf"),
                                          ({"iou": "abc"}, "iou"), ({"max_det": "0"}, "max_det"),
                                          ({"max_det": "1.5"}, "max_det"), ({"classes": ""}, "classes"),
                                          ({"colour": "red"}, "colour")])
def test_a_prediction_parameter_out_of_range_is_a_400_naming_it(query, param):
    with pytest.raises(ApiError) as refused:
        params.read_all(predictions.PARAMETERS, {}, request("/", query_string=query).args, {})
    assert (refused.value.status, refused.value.param) == (400, param)


@pytest.mark.parametrize("value, expected", [(0.5, 0.5), ("0.5", 0.5), (None, 0.25)])
def test_a_parameter_in_the_body_reads_as_in_the_query(value, expected):
    assert predictions._field(predictions.CONF, value) == expected


@pytest.mark.parametrize("param, value", [(predictions.CONF, True), (predictions.CONF, [0.5]),
                                          (predictions.MAX_DET, 3.5), (predictions.CLASSES, [True]),
                                          (predictions.CLASSES, [])])
def test_a_bad_parameter_in_the_body_is_a_400_naming_it(param, value):
    with pytest.raises(ApiError) as refused:
        predictions._field(param, value)
    assert (refused.value.status, refused.value.param) == (400, param.name)


# ---- JSON bodies: the route's model validates them -----------------------------------------

def echo(ctx, args):
    return {"type": type(args["body"]).__name__, **args["body"].model_dump()}


BODIES = Router([Route("POST", "/export", echo, "takes an export", {}, public=True,
                       body=request_bodies.ExportRequest),
                 Route("POST", "/version", echo, "takes an optional version", {}, public=True,
                       body=request_bodies.NewVersion, body_optional=True)], "test")


def test_the_handler_gets_the_bodys_model():
    code, body, _ = answer_of(BODIES, "/export", "POST", json={"format": "coco"})
    assert (code, body) == (200, {"type": "ExportRequest", "format": "coco", "version": None, "background": True,
                                  "request_id": None})


def test_a_body_that_breaks_its_model_is_one_400_naming_the_field():
    code, body, _ = answer_of(BODIES, "/export", "POST", json={"format": "yolo", "background": "no"},
                              headers={"X-Request-Id": "r-2"})
    assert (code, body) == (400, {"error": {"status": 400, "message": "background: Input should be a valid boolean",
                                            "param": "background", "request_id": "r-2"}})


@pytest.mark.parametrize("data, said", [(b"", "the body must be a JSON object"), (b"[1]", "the body must be a JSON "
                                        "object"), (b"{not json", "the body is not JSON"),
                                        (b"[" * 40 + b"]" * 40, "the body is refused: the JSON nests")])
def test_a_body_that_is_no_json_object_is_a_400_naming_the_body(data, said):
    code, body, _ = answer_of(BODIES, "/export", "POST", data=data, content_type="application/json")
    assert (code, body["error"]["param"]) == (400, "body") and body["error"]["message"].startswith(said)


def test_a_body_that_may_be_left_out_reads_as_its_defaults_but_not_as_another_type():
    code, body, _ = answer_of(BODIES, "/version", "POST")
    assert (code, body["name"], body["request_id"]) == (200, None, None)
    code, body, _ = answer_of(BODIES, "/version", "POST", data=b"[]", content_type="application/json")
    assert (code, body["error"]["message"]) == (400, "the body must be a JSON object")
