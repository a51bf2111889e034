"""Attacks on the API's edge: bodies too large or nested too deep, ids Firestore reserves, framing the page,
and an API started with a weak secret. Each runs against the local stack, through HTTP or the API in process
(the same router), and checks the refusal, that nothing was made, and that someone else's request went on."""
from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import functions_framework
import pytest
import requests

from common.api import router
from common.domain import bounded_json, layout
from common.platform import config
from infra.local.client import sign_up

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
HOSTILE_IDS = ["__x__", "__.*__", ".", "..", "a" * 1600, "%2E%2E", "a/../b"]


@pytest.fixture(scope="module")
def client(stack):
    return APP.test_client()


def person(stack, name: str) -> tuple[str, str]:
    return sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], f"{name}-{uuid.uuid4().hex[:8]}@example.com",
                   "secret-123")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def datasets_of(stack, token: str) -> set[str]:
    answer = requests.get(f"{stack.env()['API_URL']}/datasets", params={"page_size": 100}, headers=bearer(token),
                          timeout=30)
    return {d["id"] for d in answer.json()["datasets"]}


# ---- bodies ----------------------------------------------------------------------------------------------------

def test_a_body_past_the_cap_is_refused_from_its_length_and_nothing_is_made(stack):
    _, token = person(stack, "big-body")
    name = f"edge-{uuid.uuid4().hex[:8]}"
    padding = "x" * (config.api_max_body_bytes() + 1)
    answer = requests.post(f"{stack.env()['API_URL']}/datasets", headers=bearer(token), timeout=60,
                           json={"id": name, "padding": padding})
    assert answer.status_code == 413, answer.text
    error = answer.json()["error"]
    assert error["param"] == "body" and f"({config.api_max_body_bytes()} bytes)" in error["message"]
    assert name not in datasets_of(stack, token)


def test_a_chunked_body_without_a_length_is_read_no_further_than_the_cap(stack):
    _, token = person(stack, "chunked")
    name = f"edge-{uuid.uuid4().hex[:8]}"
    sent = []

    def chunks():  # a body that would go on for 64 MiB; the API stops reading one byte past its cap
        yield f'{{"id": "{name}", "padding": "'.encode()
        for _ in range(64):
            sent.append(1)
            yield b"x" * 1024 ** 2
        yield b'"}'

    try:
        answer = requests.post(f"{stack.env()['API_URL']}/datasets", data=chunks(), timeout=60,
                               headers={**bearer(token), "Content-Type": "application/json"})
    except requests.ConnectionError:
        answer = None  # the server answered and closed before the client finished sending: refused as well
    if answer is not None:
        assert answer.status_code == 413 and "bytes)" in answer.json()["error"]["message"], answer.text
    assert name not in datasets_of(stack, token)


@pytest.mark.parametrize("levels", [bounded_json.MAX_DEPTH + 1, 200_000])
def test_a_body_nested_past_the_limit_is_a_400_while_another_persons_request_succeeds(stack, levels):
    _, attacker = person(stack, "nested")
    _, other = person(stack, "other")
    name, others = f"edge-{uuid.uuid4().hex[:8]}", f"edge-{uuid.uuid4().hex[:8]}"
    body = f'{{"id": "{name}", "x": ' + "[" * levels + "]" * levels + "}"
    url = f"{stack.env()['API_URL']}/datasets"
    with ThreadPoolExecutor(max_workers=2) as pool:
        attack = pool.submit(requests.post, url, data=body, timeout=60,
                             headers={**bearer(attacker), "Content-Type": "application/json"})
        honest = pool.submit(requests.post, url, json={"id": others}, headers=bearer(other), timeout=60)
        attacked, made = attack.result(), honest.result()
    assert attacked.status_code == 400, attacked.text
    assert f"more than {bounded_json.MAX_DEPTH} levels deep" in attacked.json()["error"]["message"]
    assert made.status_code == 201 and others in datasets_of(stack, other)
    assert name not in datasets_of(stack, attacker)


# ---- ids Firestore reserves or cannot hold -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["__x__", "__proto__", "__", "." * 3 + "__", "a" * 201])
def test_a_dataset_named_as_firestore_reserves_is_refused_with_the_rule(client, stack, name):
    _, token = person(stack, "reserved")
    answer = client.post("/datasets", json={"id": name}, headers=bearer(token))
    if not layout.is_valid_dataset_name(name):
        assert answer.status_code == 400 and answer.get_json()["error"]["message"] == \
            f"id must be a dataset name: {layout.DATASET_NAME_RULE}"
    else:  # "...__" is an ordinary name: not every __ is refused
        assert answer.status_code == 201


def test_no_route_answers_a_hostile_id_with_a_failure(client, stack):
    """Every path parameter of every route, given each hostile id, as the administrator (who passes every access
    check): a refusal or a 404, never a 500 (Firestore's InvalidArgument on a reserved or oversized id)."""
    dataset = f"edge-{uuid.uuid4().hex[:8]}"
    assert client.post("/datasets", json={"id": dataset}, headers=bearer(stack.token)).status_code == 201
    failures = []
    for route in router.ROUTES:
        names = re.findall(r"\{(\w+)\}", route.path)
        for hostile in HOSTILE_IDS:
            for target in names:
                values = {n: hostile if n == target else dataset if n == "dataset" else "x" for n in names}
                path = route.path.format(**{n: quote(v, safe="") for n, v in values.items()})
                answer = client.open(path, method=route.method, headers=bearer(stack.token),
                                     json={} if route.method in ("POST", "PUT") else None)
                if answer.status_code >= 500:
                    failures.append(f"{route.method} {path[:120]}: {answer.status_code} {answer.get_data()[:200]}")
    assert not failures, "\n".join(failures)


# ---- framing, sniffing, referrers --------------------------------------------------------------------------------

def test_the_page_may_not_be_framed_and_loads_only_what_it_needs(stack):
    answer = requests.get(f"{stack.env()['API_URL']}/", timeout=30)
    policy = dict(part.strip().split(" ", 1) for part in answer.headers["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == "'none'" and policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    auth, predict = stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], stack.env()["PREDICT_URL"]
    assert policy["connect-src"].split() == ["'self'", *sorted({f"http://{auth}", predict})]
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in answer.headers  # plain http: a browser would ignore it anyway


@pytest.mark.parametrize("path", ["/healthz", "/datasets", "/no/such/route", "/page/app.js"])
def test_every_answer_forbids_framing_and_sniffing_and_hsts_follows_https(client, path):
    plain = client.get(path)
    behind_tls = client.get(path, headers={"X-Forwarded-Proto": "https"})
    for answer in (plain, behind_tls):
        assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in plain.headers
    assert behind_tls.headers["Strict-Transport-Security"].startswith("max-age=31536000")


# ---- the API's own secrets -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [("PAGE_TOKEN_SECRET", "short"), ("PAGE_TOKEN_SECRET", None),
                                         ("API_TOKEN", "changeme" * 5)])
def test_an_api_with_a_weak_secret_serves_nothing_and_logs_what_to_set(client, stack, monkeypatch, capsys,
                                                                      name, value):
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(router, "_SECRETS_CHECKED", False)
    for path in ("/healthz", "/datasets", "/datasets/x/images?page_token=x"):
        answer = client.get(path, headers=bearer(stack.token))
        assert answer.status_code == 503 and "not configured safely" in answer.get_json()["error"]["message"]
        assert stack.token not in answer.get_data(as_text=True)
    assert client.get("/openapi.json").status_code == client.get("/").status_code == 200  # fixed documents
    assert f"the API refuses to serve: {name} must" in capsys.readouterr().err
    monkeypatch.undo()
    assert client.get("/healthz").status_code == 200
