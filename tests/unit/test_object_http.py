"""Ingest's plain HTTP path to the bucket, against a real local HTTP server: the
errors it raises (so that ingest tells a gone file from a transient failure) and
its one retry, on a kept-alive connection the server closed meanwhile."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import pytest
from google.api_core.exceptions import NotFound, ServiceUnavailable

from common.cloud import object_http
from common.platform.failures import is_transient


class Bucket(BaseHTTPRequestHandler):
    """A JSON API stand-in: an object's content is its own name; 'gone' is 404, 'busy' 503."""
    protocol_version = "HTTP/1.1"  # keep-alive, as Cloud Storage
    connections: ClassVar[list] = []
    uploads: ClassVar[list] = []
    close_after_each = False

    def setup(self):
        super().setup()
        Bucket.connections.append(self.client_address)

    def do_GET(self):
        name = unquote(urlsplit(self.path).path.rsplit("/o/", 1)[1])
        status = {"gone": 404, "busy": 503}.get(name, 200)
        self.answer(status, name.encode() if status == 200 else b'{"error": "no"}')

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Bucket.uploads.append((self.path, self.headers["Content-Type"], body))
        self.answer(200, json.dumps({"generation": "17"}).encode())

    def answer(self, status: int, body: bytes):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = Bucket.close_after_each  # closed without saying so, as an idle timeout does

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    Bucket.connections, Bucket.uploads, Bucket.close_after_each = [], [], False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Bucket)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{httpd.server_port}")
    monkeypatch.setenv("DATA_BUCKET", "bkt")
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_download_names_the_generation_and_reads_the_bytes(server):
    assert object_http.download("datasets/d/images/a b#?.jpg", 5) == b"datasets/d/images/a b#?.jpg"


def test_an_upload_sends_the_bytes_and_returns_the_generation(server):
    assert object_http.upload("derived/thumbnails/x.jpg", b"\xff\xd8jpeg", "image/jpeg") == 17
    [(path, content_type, body)] = Bucket.uploads
    assert "uploadType=media" in path and "name=derived%2Fthumbnails%2Fx.jpg" in path
    assert (content_type, body) == ("image/jpeg", b"\xff\xd8jpeg")


def test_a_gone_generation_is_not_found_and_a_busy_server_transient(server):
    with pytest.raises(NotFound):
        object_http.download("gone", 1)
    with pytest.raises(ServiceUnavailable) as busy:
        object_http.download("busy", 1)
    assert is_transient(busy.value)


def test_a_connection_the_server_closed_is_replaced_once_without_failing(server):
    Bucket.close_after_each = True
    assert [object_http.download(f"f{i}", 1) for i in range(3)] == [b"f0", b"f1", b"f2"]
    assert len(Bucket.connections) == 3  # each request after the first found its connection closed


def test_a_server_that_refuses_is_a_transient_connection_error(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: refused
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("DATA_BUCKET", "bkt")
    with pytest.raises(ConnectionError) as refused:
        object_http.download("a.jpg", 1)
    assert is_transient(refused.value)
