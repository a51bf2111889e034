"""Reading an import's archive from a URL a person gave: by HTTP range requests, or as one stream.

An import of 100 GB cannot download the archive first: the importer reads a zip
where it lies, with one Range request per buffer (zipfile seeks to the central
directory at the end, then to each member), and reads a tar, or a source
without ranges, as a single stream.

The URL is the person's, so every request could be aimed at what the importer
can reach and they cannot: the metadata server (169.254.169.254), the VPC, the
machine itself. Hence, for every request and every redirect hop (followed here,
one by one, at most MAX_REDIRECTS): only http and https; the host's resolved
addresses checked before connecting (so that the refusal names the host); and
the address each connection actually reached checked after connecting, so
that a name resolving differently the second time (DNS rebinding) still
cannot get through. Proxies from the environment are ignored: the peer checked
must be the source itself. gs:// URLs are not read here: the caller reads them
from the bucket.

A source that misbehaves (an error status, a length it does not keep, ranges
other than asked, too many bytes, too slow) ends the read with SourceError,
never with a silently shorter archive or a hang.
"""
from __future__ import annotations

import io
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import tenacity
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from common.domain import source_urls
from common.platform import config

CONNECT_SECONDS = 10
READ_SECONDS = 60
MAX_REDIRECTS = 5
RETRIES = 2                 # a range request is tried at most 1 + RETRIES times
BACKOFF_SECONDS = 0.25      # doubled at each retry
HEAD_BYTES = 512
RANGE_BUFFER_BYTES = 8 * 1024 * 1024
STREAM_BUFFER_BYTES = 1024 * 1024
NETWORK_SCHEMES = ("http", "https")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_TRANSIENT_STATUSES = frozenset({408, 429})

T = TypeVar("T")


class SourceRefused(Exception):
    """The URL, a redirect or an address it reaches is not one an import may read."""


class SourceError(Exception):
    """The source misbehaved or failed; the message says what happened and what to do."""


class _Transient(Exception):
    """A failure worth another try (a connection reset, a 5xx)."""


@dataclass(frozen=True)
class Probe:
    url: str            # the final URL, after redirects
    size: int | None    # the total bytes the server announced; None when it did not say
    ranges: bool        # the server answered a Range request with 206 and a Content-Range total
    head: bytes         # the first bytes (at most HEAD_BYTES), for source_urls.sniff


# ---- the three ways to read ------------------------------------------------------------

def probe(url: str) -> Probe:
    """What the source is: its final URL, its size, whether it serves ranges, its first bytes."""
    with checked_session() as session:
        found = _with_retries(lambda: _probe_once(session, url), f"reading the start of {url}")
    _check_size(found.url, found.size)
    return found


def open_ranges(url: str, size: int, buffer_bytes: int = RANGE_BUFFER_BYTES) -> io.BufferedReader:
    """A seekable file over the source (zipfile.ZipFile can open it): each read past the
    buffer is one Range request of at most `buffer_bytes`. `size` is Probe.size. Reads
    raise SourceError or SourceRefused; close it to release its connection."""
    _check_size(url, size)
    return io.BufferedReader(HttpRangeFile(url, size, max_request_bytes=buffer_bytes), buffer_size=buffer_bytes)


def open_stream(url: str, max_seconds: float) -> io.BufferedReader:
    """The source's bytes as one stream (read, close, a context manager), for sources
    without ranges and for copying. Reads raise SourceError when more than
    config.import_max_bytes() arrive, when the total differs from the Content-Length
    the server announced, or once max_seconds have passed (checked between reads;
    one read waits at most READ_SECONDS)."""
    deadline = time.monotonic() + max_seconds
    session = checked_session()
    try:
        response = _with_retries(lambda: _checked_response(session, url, {}, "the archive"), f"opening {url}")
        announced = _content_length(response)
        try:
            _check_size(url, announced)
        except SourceError:
            response.close()
            raise
    except BaseException:
        session.close()
        raise
    body = _StreamBody(session, response, announced, deadline, max_seconds)
    return io.BufferedReader(body, buffer_size=STREAM_BUFFER_BYTES)


# ---- range reading ---------------------------------------------------------------------

class HttpRangeFile(io.RawIOBase):
    """The source as a raw seekable file: every readinto is one `Range: bytes=a-b` GET."""

    def __init__(self, url: str, size: int, max_request_bytes: int = RANGE_BUFFER_BYTES):
        super().__init__()
        self.url = url
        self.size = size
        self._max_request_bytes = max_request_bytes
        self._position = 0
        self._session = checked_session()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"cannot seek to {base + offset}, before the start of {self.url}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer) -> int:
        if self.closed:
            raise ValueError("I/O operation on a closed HttpRangeFile")
        wanted = min(len(buffer), self.size - self._position, self._max_request_bytes)
        if wanted <= 0:
            return 0
        first = self._position
        data = _fetch_range(self._session, self.url, first, first + wanted - 1, self.size)
        memoryview(buffer).cast("B")[:wanted] = data
        self._position += wanted
        return wanted

    def readall(self) -> bytes:
        """To the end, in requests of the largest size (RawIOBase's would ask 8 KiB at a time)."""
        pieces = []
        while piece := self.read(self._max_request_bytes):
            pieces.append(piece)
        return b"".join(pieces)

    def close(self) -> None:
        if not self.closed:
            self._session.close()
        super().close()


def _fetch_range(session: requests.Session, url: str, first: int, last: int, size: int) -> bytes:
    asked = f"bytes {first}-{last} of {size}"

    def once() -> bytes:
        with _checked_response(session, url, {"Range": f"bytes={first}-{last}"}, asked) as response:
            if response.status_code != 206:
                raise SourceError(f"{url} answered {response.status_code} instead of 206 to a request for {asked}: "
                                  "the server does not serve ranges as it announced; import it as a stream")
            answered = _content_range(response)
            if answered != (first, last, size):
                raise SourceError(f"{url} answered {_shown_range(answered)} to a request for {asked}: "
                                  "the server's announced length or range answers are wrong")
            return _read_exactly(response, last - first + 1, f"{url} ({asked})")

    return _with_retries(once, f"reading {asked} of {url}")


def _read_exactly(response: requests.Response, count: int, what: str) -> bytes:
    announced = _content_length(response)
    if announced is not None and announced != count:
        raise SourceError(f"{what}: the server announced a body of {announced} bytes for {count}: "
                          "its announced length or range answers are wrong")
    body = bytearray()
    try:
        while len(body) < count:
            piece = response.raw.read(count - len(body), decode_content=False)
            if not piece:
                break
            body += piece
        extra = response.raw.read(1, decode_content=False) if len(body) == count else b""
    except urllib3.exceptions.HTTPError as failure:
        if not _cut_short(failure):
            raise _Transient(f"reading {what} failed: {failure}") from failure
        extra = b""
    if len(body) != count or extra:
        sent = f"{len(body)}" if not extra else f"more than {count}"
        raise SourceError(f"{what}: the server announced {count} bytes and sent {sent}: "
                          "its announced length or range answers are wrong")
    response.raw.release_conn()  # the body is read whole: keep the connection for the next range
    return bytes(body)


# ---- stream reading --------------------------------------------------------------------

class _StreamBody(io.RawIOBase):
    """The response's bytes, counted against what was announced, the limit and the deadline."""

    def __init__(self, session: requests.Session, response: requests.Response, announced: int | None,
                 deadline: float, max_seconds: float):
        super().__init__()
        self._session = session
        self._response = response
        self._url = response.url
        self._announced = announced
        self._deadline = deadline
        self._max_seconds = max_seconds
        self._max_bytes = config.import_max_bytes()
        self._received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.closed:
            raise ValueError("I/O operation on a closed stream")
        self._check_deadline()
        piece = self._next_piece(len(buffer))
        self._received += len(piece)
        self._check_count(finished=not piece)
        memoryview(buffer).cast("B")[:len(piece)] = piece
        return len(piece)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._session.close()
        super().close()

    def _next_piece(self, most: int) -> bytes:
        try:
            return self._response.raw.read1(most, decode_content=False)
        except urllib3.exceptions.HTTPError as failure:
            if _cut_short(failure):
                raise SourceError(self._length_differs()) from failure
            raise SourceError(f"reading {self._url} failed after {self._received} bytes ({failure}): "
                              "the server dropped the connection or stopped sending; try again later") from failure

    def _check_deadline(self) -> None:
        if time.monotonic() >= self._deadline:
            raise SourceError(f"reading {self._url} took more than {self._max_seconds:g} s "
                              f"({self._received} bytes arrived): the server is too slow; copy the archive "
                              "somewhere faster (a bucket) and import it from there")

    def _check_count(self, finished: bool) -> None:
        if self._received > self._max_bytes:
            raise SourceError(f"{self._url} sent more than {self._max_bytes} bytes, the most an import reads: "
                              "split the dataset into smaller archives")
        announced = self._announced
        if announced is not None and (self._received > announced or (finished and self._received != announced)):
            raise SourceError(self._length_differs())

    def _length_differs(self) -> str:
        return (f"{self._url}: the server announced {self._announced} bytes and sent {self._received}: "
                "its announced length is wrong, or the connection broke; try again, or serve the archive "
                "with a correct Content-Length")


# ---- one request -----------------------------------------------------------------------

def _probe_once(session: requests.Session, url: str) -> Probe:
    with _checked_response(session, url, {"Range": f"bytes=0-{HEAD_BYTES - 1}"}, "its first bytes") as response:
        if response.status_code == 206:
            answered = _content_range(response)
            if answered is None or answered[0] != 0 or answered[1] >= HEAD_BYTES:
                raise SourceError(f"{url} answered {_shown_range(answered)} to a request for bytes 0-{HEAD_BYTES - 1}: "
                                  "the server's range answers are wrong")
            total = answered[2]
            head = _read_exactly(response, answered[1] + 1, f"{url} (its first bytes)")
            return Probe(response.url, total, total is not None, head)
        size = _content_length(response)
        return Probe(response.url, size, False, _read_head(response, size))


def _read_head(response: requests.Response, size: int | None) -> bytes:
    """The first bytes of a whole-file answer; the rest is left unread (closing drops it)."""
    wanted = HEAD_BYTES if size is None else min(HEAD_BYTES, size)
    try:
        head = response.raw.read(wanted, decode_content=False)
    except urllib3.exceptions.HTTPError as failure:
        if _cut_short(failure):
            raise SourceError(f"{response.url}: the server announced {size} bytes and sent fewer than "
                              f"{wanted}: its announced length is wrong") from failure
        raise _Transient(f"reading the start of {response.url} failed: {failure}") from failure
    if len(head) < wanted:
        raise SourceError(f"{response.url}: the server announced {size} bytes and sent {len(head)}: "
                          "its announced length is wrong")
    return head


def _checked_response(session: requests.Session, url: str, headers: dict[str, str], asked: str) -> requests.Response:
    """The answer to a GET, redirects followed; an error status raised (5xx as worth a retry)."""
    response = _open(session, url, headers)
    code = response.status_code
    if code in (200, 206):
        return response
    response.close()
    if code >= 500 or code in _TRANSIENT_STATUSES:
        raise _Transient(f"{response.url} answered {code} {response.reason}")
    if code == 416:
        raise SourceError(f"{response.url} answered 416 (range not satisfiable) to a request for {asked}: "
                          "the server's announced length or range answers are wrong")
    raise SourceError(f"{response.url} answered {code} {response.reason}: check that the URL is right "
                      "and that anyone may read it without signing in")


def _open(session: requests.Session, url: str, headers: dict[str, str]) -> requests.Response:
    """GET, following redirects one hop at a time, each hop checked before it is requested."""
    current, previous = url, None
    for _ in range(MAX_REDIRECTS + 1):
        _check_destination(current, previous)
        response = _send(session, current, headers)
        if not response.is_redirect:
            return response
        location = response.headers["location"]
        response.close()
        current, previous = urljoin(current, location), current
    raise SourceError(f"{url} redirects more than {MAX_REDIRECTS} times: give the archive's final URL")


def _send(session: requests.Session, url: str, headers: dict[str, str]) -> requests.Response:
    try:
        # identity: ranges and lengths are then those of the archive's own bytes
        return session.get(url, headers={"Accept-Encoding": "identity", **headers}, stream=True,
                           allow_redirects=False, timeout=(CONNECT_SECONDS, READ_SECONDS))
    except requests.exceptions.SSLError as failure:
        raise SourceError(f"{url}: the TLS connection failed ({failure}); "
                          "the server needs a valid certificate") from failure
    except (requests.ConnectionError, requests.Timeout) as failure:
        raise _Transient(f"requesting {url} failed: {failure}") from failure


def _with_retries(attempt: Callable[[], T], what: str) -> T:
    """attempt(), tried again after a _Transient failure at most RETRIES times, BACKOFF_SECONDS apart, doubled."""
    retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(_Transient),
                                 stop=tenacity.stop_after_attempt(RETRIES + 1),
                                 wait=tenacity.wait_exponential(multiplier=BACKOFF_SECONDS), reraise=True)
    try:
        return retrying(attempt)
    except _Transient as failure:
        raise SourceError(f"{what} failed {RETRIES + 1} times, last: {failure}; the server is failing "
                          "or unreachable: try again later") from failure


# ---- where a request may go ------------------------------------------------------------

def _check_destination(url: str, redirected_from: str | None) -> None:
    """Refuses what is not http(s), and a host resolving to any address imports may not read."""
    said = f"{redirected_from} redirects to {url}" if redirected_from else url
    try:
        source = source_urls.parse(url)
    except source_urls.InvalidSource as invalid:
        raise SourceRefused(f"{said}: {invalid}" if redirected_from else str(invalid)) from None
    if source.scheme not in NETWORK_SCHEMES:
        raise SourceRefused(f"{said}: only http:// and https:// URLs are read over the network "
                            "(gs:// archives are read from the bucket)")
    parts = urlsplit(url)
    if not parts.hostname:
        raise SourceRefused(f"{said}: the URL names no host")
    for address in _addresses(parts.hostname, parts.port or (443 if source.scheme == "https" else 80), url):
        reason = source_urls.refusal(address, config.import_allow_loopback())
        if reason:
            subject = f"{said}, which" if redirected_from else url
            raise SourceRefused(f"{subject} resolves to {address}, {reason}: imports read only public addresses")


def _addresses(host: str, port: int, url: str) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as failure:
        if failure.errno == socket.EAI_AGAIN:
            raise _Transient(f"resolving {host} failed for now: {failure.strerror}") from failure
        raise SourceError(f"{url}: the host {host} cannot be resolved ({failure.strerror}); check the URL") from failure
    return list(dict.fromkeys(str(info[4][0]) for info in found))  # the address of each (address, port, ...)


class _PeerChecked(HTTPConnection):
    """Checks the address a new connection actually reached (a name resolved again since _check_destination
    may point elsewhere now) before the request is sent on it: over http:// before any byte, over https://
    after the TLS handshake only, which carries nothing of the request but the host's name. Through
    http.client's public `connect`, not urllib3's private `_new_conn`."""

    def connect(self) -> None:
        super().connect()  # the HTTPS connection's, with its handshake, where it is mixed into one
        address = self.sock.getpeername()[0]
        reason = source_urls.refusal(address, config.import_allow_loopback())
        if reason:
            self.close()
            raise SourceRefused(f"{self.host}:{self.port} connected to {address}, {reason}: "
                                "imports read only public addresses")


class _PeerCheckedHTTPConnection(_PeerChecked, HTTPConnection):
    pass


class _PeerCheckedHTTPSConnection(_PeerChecked, HTTPSConnection):
    pass


class _PeerCheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PeerCheckedHTTPConnection


class _PeerCheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PeerCheckedHTTPSConnection


class _PeerCheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PeerCheckedHTTPPool, "https": _PeerCheckedHTTPSPool}

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise SourceRefused(f"imports connect to the source itself, not through a proxy ({proxy})")


def checked_session() -> requests.Session:
    """A requests Session whose every connection is refused unless its peer is an
    address imports may read (source_urls.is_allowed_address)."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the peer checked must be the source
    adapter = _PeerCheckedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# ---- headers ---------------------------------------------------------------------------

def _content_range(response: requests.Response) -> tuple[int, int, int | None] | None:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if not match:
        return None
    first, last, total = match.groups()
    return int(first), int(last), None if total == "*" else int(total)


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _shown_range(answered: tuple[int, int, int | None] | None) -> str:
    if answered is None:
        return "without a Content-Range"
    first, last, total = answered
    return f"bytes {first}-{last}/{'*' if total is None else total}"


def _check_size(url: str, size: int | None) -> None:
    limit = config.import_max_bytes()
    if size is not None and size > limit:
        raise SourceError(f"{url} is {size} bytes; an import reads at most {limit} bytes: "
                          "split the dataset into smaller archives")


def _cut_short(failure: Exception) -> bool:
    """Whether a read failed because the connection ended before the announced length."""
    causes = (failure, *failure.args)
    return any(isinstance(cause, urllib3.exceptions.IncompleteRead) for cause in causes)
