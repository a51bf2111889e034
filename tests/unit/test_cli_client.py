"""The command line's HTTP client against a real server on loopback that answers a script of statuses:
which answers are tried again, how many times, and what the person reads when it gives up."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from yolodrop_cli.api import RETRIES, Api, ApiFailure


class ScriptedApi:
    """Answers each request with the next (status, headers) of `script`, the last one for ever after;
    a 200 carries {"ok": true, "seen": <the request's JSON body>}, any other status the API's error body."""

    def __init__(self, script: list[tuple[int, dict]], error: object = None):
        self.script, self.bodies, self.error = script, [], error  # error: another error body than the API's
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    def __enter__(self) -> ScriptedApi:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        self.bodies.append(handler.rfile.read(length))
        status, headers = self.script[min(len(self.bodies), len(self.script)) - 1]
        seen = json.loads(self.bodies[-1] or b"null")
        error = {"message": f"scripted {status}"} if self.error is None else self.error
        body = {"ok": True, "seen": seen} if status == 200 else {"error": error}
        data = json.dumps(body).encode()
        handler.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json", "Content-Length": str(len(data))}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                scripted._answer(self)

            do_POST = do_GET

            def log_message(self, *args) -> None:
                pass

        return Handler


NOW = {"Retry-After": "0"}


@pytest.mark.parametrize("status", [429, 503])
def test_a_429_or_503_is_tried_again_after_retry_after_with_the_same_body(status):
    with ScriptedApi([(status, NOW), (status, NOW), (200, {})]) as api:
        answer = Api(api.url, "key").post("/things", {"name": "a"})
    assert answer == {"ok": True, "seen": {"name": "a"}}
    assert [json.loads(body) for body in api.bodies] == [{"name": "a"}] * 3


def test_one_that_lasts_is_tried_retries_times_more_then_says_the_apis_message():
    with ScriptedApi([(503, NOW)]) as api, pytest.raises(ApiFailure) as failure:
        Api(api.url, "key").get("/datasets")
    assert len(api.bodies) == RETRIES + 1
    assert failure.value.line() == "GET /datasets: 503 scripted 503 (a cloud service did not answer: try again)"


def test_an_error_body_without_a_message_says_what_the_server_answered():
    with ScriptedApi([(400, NOW)], error={"code": "no_message"}) as api, pytest.raises(ApiFailure) as failure:
        Api(api.url, "key").get("/datasets")
    assert failure.value.line() == 'GET /datasets: 400 {"error": {"code": "no_message"}} (fix the request)'


@pytest.mark.parametrize("status", [500, 502, 404, 409])
def test_other_failures_are_not_tried_again(status):
    with ScriptedApi([(status, NOW), (200, {})]) as api, pytest.raises(ApiFailure) as failure:
        Api(api.url, "key").get("/datasets")
    assert (len(api.bodies), failure.value.status) == (1, status)


def test_an_unreachable_api_fails_at_once_saying_where_it_looked():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, not listening: refused
        with pytest.raises(ApiFailure) as failure:
            Api(url, "key").get("/datasets")
    assert failure.value.status == 0 and failure.value.line().startswith(f"GET /datasets: 0 cannot reach {url}:")
