"""The API in process: functions-framework's test client against the stack's
emulators, so parameters, page tokens, error shapes, the request context and
outages are tested without a server. The flows stay end to end elsewhere."""
from __future__ import annotations

import base64
import json
import math
import socket
import time
import uuid
from collections import Counter
from pathlib import Path

import flask
import functions_framework
import hypothesis
import hypothesis.configuration
import pytest
import schemathesis
from google.cloud import firestore, pubsub_v1

from common.api import context, openapi, router
from common.api.resources import predictions
from common.cloud import clients
from common.domain import entries, training_request
from common.platform import config
from infra.local.client import ApiClient
from infra.local.sample import generated_dataset
from tests.integration.helpers import drop, stats_when

BAD_LABEL = b"0 0.5 0.5 0.1\n0 1.4 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n"  # 3 issues, one entry
FILE_ISSUES, ENTRY_ISSUES = 2, 3
# Hypothesis keeps its caches where pytest keeps its own, which git ignores.
hypothesis.configuration.set_hypothesis_home_dir(Path(__file__).parents[2] / ".pytest_cache" / "hypothesis")
# Importing the function reads no setting, so the app (and its OpenAPI document) exists at collection.
APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
# Prediction is documented here but served by the prediction function (tests/integration/test_predict.py).
SCHEMA = schemathesis.openapi.from_wsgi("/openapi.json", APP).exclude(tag=openapi.PREDICTION_TAG)


@pytest.fixture(scope="module")
def app(stack) -> flask.Flask:
    return APP


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def auth(stack) -> dict:
    return {"Authorization": f"Bearer {stack.token}"}


class InProcessApi(ApiClient):
    """The stack's API client, through the test client instead of HTTP."""

    def __init__(self, client, auth: dict):
        self.client, self.auth = client, auth

    def get(self, path: str, expect: int = 200, **params) -> dict:
        response = self.client.get(path, headers=self.auth, query_string=params)
        assert response.status_code == expect, (path, params, response.status_code, response.get_data(as_text=True))
        assert response.mimetype == "application/json"
        return response.get_json()


@pytest.fixture(scope="module")
def local(client, auth) -> InProcessApi:
    return InProcessApi(client, auth)


@pytest.fixture(scope="module")
def indexed(bucket, api) -> str:
    """Seven images, two unrecognized files and one label with three issues."""
    dataset = f"api-{uuid.uuid4().hex[:8]}"
    files = generated_dataset(5, 2, seed=11)
    files.update({"labels/train/g00000.txt": BAD_LABEL, "README.md": b"hello", "notes.md": b"hi"})
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": 7, "issues": FILE_ISSUES + ENTRY_ISSUES})
    return dataset


# ---- health, auth, the request context --------------------------------------

def test_healthz_reads_the_index_and_needs_no_token(client):
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer"}])
def test_every_private_route_answers_401_json(client, headers):
    for route in router.ROUTES:
        if route.public:
            continue
        path = route.path.replace("{", "").replace("}", "")  # {dataset} -> dataset: any value will do
        response = client.open(path, method=route.method, headers=headers)
        error = response.get_json()["error"]
        assert (response.status_code, error["status"]) == (401, 401), route.path
        assert "token" in error["message"] and error["request_id"] == response.headers["X-Request-Id"]
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_request_id_is_the_callers_or_the_traces_or_new(client):
    given = client.get("/datasets/x", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123" == given.get_json()["error"]["request_id"]
    trace = "0123456789abcdef0123456789abcdef"
    traced = client.get("/datasets/x", headers={"X-Cloud-Trace-Context": f"{trace}/1;o=1"})
    assert traced.headers["X-Request-Id"] == trace
    made = [client.get("/datasets/x", headers={"X-Request-Id": "not a plain id!"}).headers["X-Request-Id"]
            for _ in range(2)]
    assert made[0] != made[1] and "not a plain id!" not in made


def test_the_context_names_the_caller(app, stack):
    with app.test_request_context("/datasets", headers={"Authorization": f"Bearer {stack.token}"}):
        built = context.build(flask.request, "r-1", public=False)
    assert built.principal == context.ADMINISTRATOR and built.request_id == "r-1"
    assert (built.method, built.path, built.deadline_seconds) == ("GET", "/datasets", config.api_deadline())
    with app.test_request_context("/healthz"):
        assert context.build(flask.request, "r-2", public=True).principal == context.ANONYMOUS


# ---- parameters and errors -------------------------------------------------

@pytest.mark.parametrize("path, param, value", [
    ("/datasets/{d}/images", "page_size", "0"), ("/datasets/{d}/images", "page_size", "x"),
    ("/datasets/{d}/images", "page_size", "1001"), ("/datasets", "page_size", "101"),
    ("/datasets/{d}/images", "split", "training"), ("/datasets/{d}/images", "labeled", "maybe"),
    ("/datasets/{d}/images", "has_issues", "2"), ("/datasets/{d}/images", "class", "giraffe"),
    ("/datasets/{d}/images", "class", "99999999999"), ("/datasets/{d}/images", "status", "odd"),
    ("/datasets/{d}/issues", "page_size", "-1"), ("/training", "page_size", "1e3"), ("/models", "page_size", ""),
])
def test_a_bad_parameter_is_a_400_naming_it(local, indexed, path, param, value):
    error = local.get(path.format(d=indexed), 400, **{param: value})["error"]
    assert (error["status"], error["param"]) == (400, param) and repr(value) in error["message"]


@pytest.mark.parametrize("path, param", [("/datasets/{d}/images", "splt"), ("/datasets/{d}", "page_size"),
                                         ("/training", "status")])
def test_a_parameter_the_route_does_not_take_is_a_400_naming_it(local, indexed, path, param):
    error = local.get(path.format(d=indexed), 400, **{param: "val"})["error"]
    assert error["param"] == param and f"unknown parameter {param!r}" in error["message"]


def test_a_bad_body_is_a_400(client, auth):
    for body in ("not json", "[1, 2]", json.dumps({"request_id": "has spaces"})):
        response = client.post("/training", headers={**auth, "Content-Type": "application/json"}, data=body)
        assert response.status_code == 400 and response.get_json()["error"]["status"] == 400
    assert response.get_json()["error"]["param"] == "request_id"


@pytest.mark.parametrize("path", ["/nowhere", "/datasets/no-such-dataset", "/datasets/..", "/datasets/__x__",
                                  "/datasets/no-such-dataset/images", "/datasets/no-such-dataset/issues",
                                  "/training/no-such-job", "/training/__x__", "/models/no-such-model",
                                  "/training/no-such-job/cancel"])
def test_unknown_things_are_a_404_json(client, auth, path):
    response = client.open(path, method="POST" if path.endswith("/cancel") else "GET", headers=auth)
    assert response.status_code == 404 and response.get_json()["error"]["status"] == 404


def test_unknown_images_are_a_404_json(local, indexed):
    for image_id in ("labels/train/nope", "x" * 2000, "labels/train/g00001/extra"):
        assert local.get(f"/datasets/{indexed}/images/{image_id}", 404)["error"]["status"] == 404


def test_a_method_a_route_lacks_is_a_405_json_with_allow(client, auth):
    response = client.delete("/datasets", headers=auth)
    assert response.status_code == 405 and response.get_json()["error"]["status"] == 405
    assert response.headers["Allow"] == "GET, HEAD, POST"


# ---- datasets and pages -----------------------------------------------------

def test_the_list_shows_a_summary_and_the_dataset_its_exact_statistics(local, indexed):
    listed = [d for d in local.all_pages("/datasets", "datasets", page_size=2) if d["id"] == indexed]
    assert len(listed) == 1
    summary = listed[0]["stats"]
    assert set(summary) == {"images", "labeled", "background", "unlabeled", "labels_without_image", "boxes",
                            "issues", "duplicates"}
    exact = local.get(f"/datasets/{indexed}")["stats"]
    assert {k: exact[k] for k in summary} == summary
    assert exact["splits"] == {"train": 5, "val": 2, "test": 0}
    assert sum(exact["boxes_per_class"].values()) == exact["boxes"]


def test_the_histograms_count_every_image_and_every_box_of_the_dataset(local, indexed):
    exact = local.get(f"/datasets/{indexed}")["stats"]
    listed = local.all_pages(f"/datasets/{indexed}/images", "images", page_size=1000)
    per_image = Counter(entries.bucket_names(entries.BOXES_PER_IMAGE_EDGES)[
        entries.bucket(len(image["labels"]), entries.BOXES_PER_IMAGE_EDGES)] for image in listed)
    sizes = Counter(entries.bucket_names(entries.BOX_SIZE_EDGES)[
        entries.bucket(math.sqrt(box["w"] * box["h"]), entries.BOX_SIZE_EDGES)] for image in listed
        for box in image["labels"])
    assert exact["boxes_per_image"] == {name: per_image[name] for name in exact["boxes_per_image"]}
    assert exact["box_sizes"] == {name: sizes[name] for name in exact["box_sizes"]}
    assert sum(exact["boxes_per_image"].values()) == exact["images"] and len(set(per_image)) > 1
    assert sum(exact["box_sizes"].values()) == exact["boxes"] > 0


@pytest.mark.parametrize("page_size", [1, 2, 3])
@pytest.mark.parametrize("items, count", [("images", 7), ("issues", FILE_ISSUES + ENTRY_ISSUES)])
def test_pages_cover_everything_once(local, indexed, page_size, items, count):
    paged = local.all_pages(f"/datasets/{indexed}/{items}", items, page_size=page_size)
    assert paged == local.get(f"/datasets/{indexed}/{items}", page_size=1000)[items] and len(paged) == count


SORTED_BY = {"boxes": lambda image: len(image["labels"]), "issues": lambda image: len(image["issues"])}


@pytest.mark.parametrize("sort", sorted(SORTED_BY))
@pytest.mark.parametrize("one_filter", [{}, {"split": "train"}, {"status": "labeled"}, {"has_issues": "true"}])
def test_the_listing_sorts_most_first_across_pages_with_at_most_one_filter(local, indexed, sort, one_filter):
    paged = local.all_pages(f"/datasets/{indexed}/images", "images", page_size=2, sort=sort, **one_filter)
    by_id = local.get(f"/datasets/{indexed}/images", page_size=1000, **one_filter)["images"]
    assert sorted(image["id"] for image in paged) == sorted(image["id"] for image in by_id)  # each once
    expected = sorted(by_id, key=lambda image: (SORTED_BY[sort](image), image["id"]), reverse=True)
    assert [image["id"] for image in paged] == [image["id"] for image in expected]
    if not one_filter:
        assert len({SORTED_BY[sort](image) for image in paged}) > 1  # the order is not the id order by chance


def test_a_sort_with_two_filters_is_refused_naming_them(local, indexed):
    error = local.get(f"/datasets/{indexed}/images", 400, sort="boxes", split="train", has_issues="true")["error"]
    assert error["param"] == "sort" and "split and has_issues" in error["message"]


def test_a_page_can_end_inside_a_documents_issues(local, indexed):
    first = local.get(f"/datasets/{indexed}/issues", page_size=FILE_ISSUES + 1)
    rest = local.get(f"/datasets/{indexed}/issues", page_token=first["next_page_token"])
    assert [i["file"] for i in first["issues"]][-1] == rest["issues"][0]["file"]
    assert len(rest["issues"]) == ENTRY_ISSUES - 1 and rest["next_page_token"] is None


def test_a_page_token_belongs_to_its_list(local, indexed):
    token = local.get(f"/datasets/{indexed}/images", page_size=1)["next_page_token"]
    assert local.get(f"/datasets/{indexed}/images", page_token=token)["images"]
    for path in (f"/datasets/{indexed}/issues", "/datasets", "/training", "/models"):
        error = local.get(path, 400, page_token=token)["error"]
        assert error["param"] == "page_token" and "another list" in error["message"]


def test_a_token_this_api_did_not_make_is_a_400(local, indexed):
    real = local.get(f"/datasets/{indexed}/images", page_size=1)["next_page_token"]
    payload = json.dumps({"list": f"images:{indexed}", "source": 0, "at": ["labels%2Ftrain%2Fg00003"], "skip": 0})
    hand_made = base64.urlsafe_b64encode(payload.encode()).decode()
    forged = hand_made + "." + real.partition(".")[2]
    for token in ("garbage", hand_made, forged, real + "x", "é.é", "...", real.partition(".")[0]):
        error = local.get(f"/datasets/{indexed}/images", 400, page_token=token)["error"]
        assert error["param"] == "page_token" and "not one this API returned" in error["message"]


# ---- training ---------------------------------------------------------------

def test_a_training_request_is_published_then_queued(local, client, auth):
    request_id = f"api-test-{uuid.uuid4().hex}"
    response = client.post("/training", headers=auth, json={"dataset": f"none-{request_id}", "model": "yolov8n.yaml",
                                                            "epochs": 1, "request_id": request_id})
    assert response.status_code == 202
    job = local.get(f"/training/{response.get_json()['job_id']}")
    assert job["request_id"] == request_id and job["status"] in ("queued", "failed")


def test_a_failed_publish_is_a_503_and_leaves_the_job_queued_for_a_retry_or_the_watch(local, client, auth,
                                                                                      pubsub_down):
    """The one request path (docs/jobs.md): recorded first, so the retry with the same request_id, or the watch,
    publishes it; nothing is lost and nothing is deleted."""
    request_id = f"api-test-{uuid.uuid4().hex}"
    started = time.monotonic()
    response = client.post("/training", headers=auth, json={"dataset": "x", "model": "yolov8n.yaml",
                                                            "request_id": request_id})
    assert response.status_code == 503 and response.get_json()["error"]["status"] == 503
    assert time.monotonic() - started < 5
    recorded = local.get(f"/training/{training_request.job_id_for(request_id)}")
    assert (recorded["status"], recorded["request_id"]) == ("queued", request_id)


@pytest.mark.parametrize("body", [{"a": [[1]]}, {"": 1}, {"__x__": 1}, {"n": 2**64}, {"s": "\ud800"}])
def test_a_body_firestore_cannot_store_is_a_400_before_any_publish(client, auth, body):
    request_id = f"api-test-{uuid.uuid4().hex}"
    raw = json.dumps({**body, "model": "yolov8n.yaml", "request_id": request_id})
    response = client.post("/training", headers={**auth, "Content-Type": "application/json"}, data=raw)
    assert response.status_code == 400 and "cannot be recorded" in response.get_json()["error"]["message"]


# ---- outages and the unexpected ---------------------------------------------

def _refused_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"  # closed once the probe is: connections are refused


def _unreachable(monkeypatch, name: str, variable: str, make):
    """Install a client `name` made while its emulator variable names a refused port, with a one-second
    API deadline; return the working client, to put back."""
    working = getattr(clients, name)()
    monkeypatch.setenv("API_DEADLINE_SECONDS", "1")
    with monkeypatch.context() as pointed_away:
        pointed_away.setenv(variable, _refused_address())
        clients.use(name, make())
    return working


@pytest.fixture
def firestore_down(monkeypatch):
    working = _unreachable(monkeypatch, "firestore", "FIRESTORE_EMULATOR_HOST",
                           lambda: firestore.Client(project=config.project()))
    yield
    clients.use("firestore", working)


@pytest.fixture
def pubsub_down(monkeypatch):
    working = _unreachable(monkeypatch, "publisher", "PUBSUB_EMULATOR_HOST", pubsub_v1.PublisherClient)
    yield
    clients.use("publisher", working)


@pytest.mark.parametrize("path", ["/datasets", "/training", "/datasets/x", "/datasets/x/images", "/models"])
def test_firestore_unreachable_is_a_503_json_within_the_deadline(client, auth, firestore_down, capsys, path):
    started = time.monotonic()
    response = client.get(path, headers=auth)
    elapsed = time.monotonic() - started
    error = response.get_json()["error"]
    assert (response.status_code, error["status"]) == (503, 503) and elapsed < 5, elapsed
    assert error["request_id"] == response.headers["X-Request-Id"]
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert any(r["request_id"] == error["request_id"] and "Traceback" in r["stack_trace"] for r in logged)


def test_healthz_says_unavailable_when_the_index_does_not_answer(client, firestore_down):
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json()["status"] == "unavailable"


def test_an_unexpected_failure_is_a_500_json_with_the_request_id(client, auth, indexed, monkeypatch, capsys):
    from common.api.resources import images

    def broken_view(entry, classes):
        raise RuntimeError("a bug")

    monkeypatch.setattr(images, "image_view", broken_view)
    response = client.get(f"/datasets/{indexed}/images", headers={**auth, "X-Request-Id": "bug-1"})
    assert response.status_code == 500 and response.get_json()["error"]["request_id"] == "bug-1"
    assert "a bug" not in response.get_data(as_text=True)
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert any(r["request_id"] == "bug-1" and "RuntimeError: a bug" in r["stack_trace"] for r in logged)


# ---- the OpenAPI document and schemathesis ----------------------------------

def test_the_openapi_document_names_every_route(client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"] == "3.1.0" and document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    declared = {(r.method.lower(), r.path) for r in [*router.ROUTES, *predictions.ROUTES]}
    assert {(m, p) for p, ops in document["paths"].items() for m in ops} == declared
    predicting = document["paths"]["/models/{model_id}/predict"]["post"]
    assert predicting["tags"] == [openapi.PREDICTION_TAG] and predicting["servers"][0]["url"] == config.predict_url()
    assert {"image/*", "multipart/form-data", "application/json"} == set(predicting["requestBody"]["content"])
    assert [p["name"] for p in predicting["parameters"]] == ["model_id", "conf", "iou", "max_det", "classes"]
    listing = document["paths"]["/datasets/{dataset}/images"]["get"]
    assert {"400", "401", "404", "503"} <= set(listing["responses"])
    split = next(p for p in listing["parameters"] if p["name"] == "split")
    assert split["schema"]["enum"] == ["train", "val", "test", "none"]


@pytest.fixture
def quiet_training_topic(monkeypatch):
    """Generated training requests go to a topic of their own, which no trainer reads."""
    publisher = clients.publisher()
    topic = f"api-schema-{uuid.uuid4().hex[:8]}"
    publisher.create_topic(name=publisher.topic_path(config.project(), topic))
    monkeypatch.setenv("TRAINING_TOPIC", topic)


@SCHEMA.parametrize()
@hypothesis.settings(max_examples=8, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_every_answer_matches_the_document(case, app, auth, indexed, quiet_training_topic):
    if "dataset" in (case.path_parameters or {}):
        case.path_parameters["dataset"] = indexed
    # Not checked: that every schema-valid request is accepted. A page token is opaque and a class
    # depends on the dataset, so a well-formed value may still be refused, with the declared 400.
    case.call_and_validate(headers=auth, excluded_checks=[schemathesis.checks.positive_data_acceptance])
