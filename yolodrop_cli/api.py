"""A thin client of the HTTP API: JSON in and out, one exception with one line
saying what to do, and a wait for the 429s and 503s the API asks to retry
(urllib3's Retry, under the session: it waits what Retry-After says)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

T = TypeVar("T")
TIMEOUT_SECONDS = 60
RETRIES = 5  # of 429 (rate limited) and 503 (a cloud service did not answer), after Retry-After
RETRIED_STATUSES = (429, 503)

ADVICE = {
    401: "the API key is missing, wrong or revoked: run `yolodrop login` or set YOLODROP_API_KEY",
    403: "your role on this dataset is too low: ask an owner",
    404: "check the name (`yolodrop datasets`, `yolodrop jobs`, `yolodrop models`)",
    409: "the request conflicts with the current state",
    413: "the request is too large",
    429: "too many requests: wait and try again",
    503: "a cloud service did not answer: try again",
}


class ApiFailure(Exception):
    """An answer that is not what was asked for, as one line."""

    def __init__(self, status: int, message: str, method: str = "", path: str = ""):
        super().__init__(message)
        self.status, self.method, self.path = status, method, path

    def line(self) -> str:
        advice = ADVICE.get(self.status) or ("fix the request" if 400 <= self.status < 500 else "try again")
        where = f"{self.method} {self.path}: " if self.method else ""
        return f"{where}{self.status} {self} ({advice})"


class Api:
    def __init__(self, url: str, key: str, predict_url: str | None = None):
        self.url, self.predict_url = url.rstrip("/"), (predict_url or url).rstrip("/")
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry_policy()))
        self.session.mount("https://", HTTPAdapter(max_retries=retry_policy()))
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.session.headers["User-Agent"] = "yolodrop-cli"

    def get(self, path: str, **params) -> dict:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict | None = None, **kwargs) -> dict:
        return self.call("POST", path, json=body if body is not None else {}, **kwargs)

    def call(self, method: str, path: str, base: str | None = None, **kwargs) -> dict:
        try:
            response = self.session.request(method, f"{base or self.url}{path}", timeout=TIMEOUT_SECONDS, **kwargs)
        except requests.ConnectionError:
            raise ApiFailure(0, f"cannot reach {base or self.url}: is the API running (`make up`) and the URL "
                                f"right (--api-url, YOLODROP_API_URL)?", method, path) from None
        return _json_or_failure(response, method, path)

    def pages(self, path: str, items: str, limit: int | None = None, **params) -> Iterator[dict]:
        """Every item of a paginated list, following next_page_token (at most `limit`)."""
        token, count = None, 0
        while True:
            page = self.get(path, page_token=token, **params)
            for item in page[items]:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield item
            token = page.get("next_page_token")
            if not token:
                return


def retry_policy() -> Retry:
    """429 and 503, of any method, tried again at most RETRIES times, after Retry-After (the API always sends
    it; without it 0, then 1 s); the last answer is returned, not raised. Nothing else is retried: an
    unreachable API fails at once, a read timeout is raised as requests' own."""
    return Retry(total=RETRIES, connect=0, read=False, other=0, status=RETRIES,
                 status_forcelist=RETRIED_STATUSES, allowed_methods=None, respect_retry_after_header=True,
                 backoff_factor=0.5, backoff_max=1, raise_on_status=False)


def _json_or_failure(response: requests.Response, method: str, path: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if 200 <= response.status_code < 300 and isinstance(body, dict):
        return body
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str):  # not the API's error body: what the server said
        message = response.text[:300] or response.reason
    raise ApiFailure(response.status_code, message, method, path)


class Timeout(Exception):
    def __init__(self, message: str, last=None):
        super().__init__(message)
        self.last = last  # what the probe saw last


def poll(probe: Callable[[], T], done: Callable[[T], object], timeout: float, what: str,
         interval: float = 0.5) -> T:
    """Call `probe` until `done(result)`; Timeout saying what was awaited after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise Timeout(f"{what}: not done after {timeout:.0f} s", last=result)
        time.sleep(interval)  # the polling interval, not a wait for an outcome
