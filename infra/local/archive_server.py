"""A loopback HTTP server that serves archives from a folder, for import tests and the benchmark.

Imports read a person's archive URL by HTTP range requests, or as one stream
when the server does not serve ranges. This server plays both kinds of server,
and the misbehaving ones an import must survive: one that lies about a file's
length, one that redirects, one that fails a few times before answering.
Files are streamed in 1 MiB pieces, so it serves archives of gigabytes.

    with ArchiveServer(folder) as server:
        url = server.url("dataset.zip")
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

PIECE_BYTES = 1024 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

AnnouncedSize = Callable[[str], "int | None"] | Mapping[str, int] | None


class ArchiveServer:
    """Serves `directory` on 127.0.0.1 on a free port, in a daemon thread.

    ranges: answer `Range: bytes=a-b` with 206 (else ignore it and send the whole file with 200).
    announced_size: {name: bytes} or name -> bytes (None: the truth): the length the server
        claims, in Content-Length and in Content-Range totals, whatever the file holds.
    redirects: {path: Location}: answered 302 (paths with or without the leading "/").
    transient_failures: the first this many file requests are answered 503.
    """

    def __init__(self, directory: Path, ranges: bool = True, announced_size: AnnouncedSize = None,
                 redirects: Mapping[str, str] | None = None, transient_failures: int = 0):
        self.directory = Path(directory).resolve()
        self.ranges = ranges
        self.redirects = {path.lstrip("/"): location for path, location in (redirects or {}).items()}
        self._announced_size = announced_size
        self._failures_left = transient_failures
        self._count = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None

    # ---- lifetime -----------------------------------------------------------------------

    def start(self) -> ArchiveServer:
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="archive-server", daemon=True)  # the poll paces stop()
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server and thread:
            server.shutdown()
            server.server_close()
            thread.join()
            self._server = self._thread = None

    def __enter__(self) -> ArchiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- what tests read ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens (or listened) on: URLs stay printable after it stopped."""
        if self._port is None:
            raise RuntimeError("the archive server has no port before start()")
        return self._port

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{quote(name)}"

    @property
    def requests(self) -> int:
        """Requests answered so far (every method and status)."""
        with self._lock:
            return self._count

    # ---- what the handler asks ----------------------------------------------------------

    def _counted(self) -> None:
        with self._lock:
            self._count += 1

    def _should_fail(self) -> bool:
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                return True
            return False

    def _file(self, name: str) -> Path | None:
        path = (self.directory / name).resolve()
        return path if path.is_relative_to(self.directory) and path.is_file() else None

    def _announced(self, name: str, actual: int) -> int:
        announced = self._announced_size
        if callable(announced):
            claimed = announced(name)
        elif announced is not None:
            claimed = announced.get(name)
        else:
            claimed = None
        return actual if claimed is None else claimed


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up mid-file (a probe, a refused read) is expected


def _handler_for(server: ArchiveServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_ArchiveHandler):
        archive_server = server
    return Handler


class _ArchiveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a range reader makes many requests
    disable_nagle_algorithm = True  # else headers then body wait on the client's delayed ACK (40 ms a request)
    archive_server: ArchiveServer

    def log_message(self, format, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        server = self.archive_server
        server._counted()
        name = unquote(urlsplit(self.path).path).lstrip("/")
        if name in server.redirects:
            return self._empty(HTTPStatus.FOUND, Location=server.redirects[name])
        path = server._file(name)
        if path is None:
            return self._empty(HTTPStatus.NOT_FOUND)
        if server._should_fail():
            return self._empty(HTTPStatus.SERVICE_UNAVAILABLE)
        actual = path.stat().st_size
        announced = server._announced(name, actual)
        wanted = _wanted_range(self.headers.get("Range"), announced) if server.ranges else None
        if wanted == "unsatisfiable":
            return self._empty(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, **{"Content-Range": f"bytes */{announced}"})
        first, last = wanted or (0, announced - 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted else HTTPStatus.OK)
        if wanted:
            self.send_header("Content-Range", f"bytes {first}-{last}/{announced}")
        if server.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(last - first + 1))
        self.end_headers()
        if send_body:
            self._send_file(path, first, last)

    def _send_file(self, path: Path, first: int, last: int) -> None:
        remaining = last - first + 1
        with path.open("rb") as file:
            file.seek(first)
            try:
                while remaining > 0:
                    piece = file.read(min(PIECE_BYTES, remaining))
                    if not piece:
                        break
                    self.wfile.write(piece)
                    remaining -= len(piece)
            except (BrokenPipeError, ConnectionResetError):
                remaining = 0
                self.close_connection = True
        if remaining:
            # Fewer bytes than announced: hang up, as a lying server's connection ends.
            self.close_connection = True

    def _empty(self, status: HTTPStatus, **headers: str) -> None:
        self.send_response(status)
        for header, value in headers.items():
            self.send_header(header, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _wanted_range(header: str | None, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """(first, last) of a `Range: bytes=…` header, "unsatisfiable", or None (no usable range: the whole file)."""
    match = _RANGE.fullmatch((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    start, end = match.groups()
    if not start:  # bytes=-n: the last n bytes
        first, last = max(size - int(end), 0), size - 1
    else:
        first, last = int(start), min(int(end), size - 1) if end else size - 1
    if first >= size or first > last:
        return "unsatisfiable"
    return first, last

