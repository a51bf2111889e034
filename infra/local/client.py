"""What the demo, the tests and the benchmarks share: an API client, a poll with
a deadline, and parallel uploads through the storage client."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from collections.abc import Callable

import requests

from yolodrop_cli.api import Timeout as PollTimeout
from yolodrop_cli.api import poll

T = TypeVar("T")


class ApiClient:
    def __init__(self, url: str, token: str):
        self.url, self.session = url.rstrip("/"), requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, expect: int = 200, **params) -> dict:
        response = self.session.get(f"{self.url}{path}", params=params, timeout=30)
        if response.status_code != expect:
            raise AssertionError(f"GET {path} {params}: {response.status_code} {response.text[:500]}")
        return response.json()

    def get_or_none(self, path: str, **params) -> dict | None:
        """GET path; None while it is 404 (a dataset not indexed yet)."""
        response = self.session.get(f"{self.url}{path}", params=params, timeout=30)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AssertionError(f"GET {path} {params}: {response.status_code} {response.text[:500]}")
        return response.json()

    def all_pages(self, path: str, items: str, **params) -> list[dict]:
        """Follow next_page_token to the end."""
        collected, token = [], None
        while True:
            page = self.get(path, **params, **({"page_token": token} if token else {}))
            collected.extend(page[items])
            token = page["next_page_token"]
            if not token:
                return collected


class Timeout(AssertionError):
    pass


def wait_for(probe: Callable[[], T], done: Callable[[T], object], timeout: float,
             what: str, interval: float = 0.2) -> T:
    """Call `probe` until `done(result)` (the command line's poll), or raise
    Timeout, an assertion failure for tests, with the last result."""
    try:
        return poll(probe, done, timeout, what, interval)
    except PollTimeout as exc:
        raise Timeout(f"{what}: not reached within {timeout}s; last seen: {exc.last}") from None


def wait_for_found(probe: Callable[[], T | None], done: Callable[[T], object], timeout: float,
                   what: str, interval: float = 0.2) -> T:
    """wait_for a probe that answers None while there is nothing yet (get_or_none): the first value `done`
    accepts, never None."""
    found = wait_for(probe, lambda value: value is not None and done(value), timeout, what, interval)
    if found is None:
        raise AssertionError("wait_for returns only a result done() accepted")
    return found


def upload_all(bucket, files: dict[str, bytes], workers: int = 16) -> None:
    """Upload {object name: bytes} concurrently."""
    def upload(item):
        name, data = item
        bucket.blob(name).upload_from_string(data)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(upload, files.items()))


def sign_up(auth_emulator_host: str, email: str, password: str, verified: bool = True) -> tuple[str, str]:
    """A new account in the local Firebase Auth emulator: (uid, ID token). `verified`: its e-mail is marked
    verified (as opening the verification link would) and the token is one signed in after, which says so;
    the API refuses a person whose e-mail is not. The emulator accepts any API key and, as the Admin API's
    credential, the bearer "owner"; production sign-in happens in the page."""
    base = f"http://{auth_emulator_host}/identitytoolkit.googleapis.com/v1"
    response = requests.post(f"{base}/accounts:signUp", params={"key": "local"}, timeout=30,
                             json={"email": email, "password": password, "returnSecureToken": True})
    response.raise_for_status()
    uid, token = response.json()["localId"], response.json()["idToken"]
    if not verified:
        return uid, token
    requests.post(f"{base}/accounts:update", headers={"Authorization": "Bearer owner"}, timeout=30,
                  json={"localId": uid, "emailVerified": True}).raise_for_status()
    return uid, sign_in(auth_emulator_host, email, password)


def sign_in(auth_emulator_host: str, email: str, password: str) -> str:
    """A fresh ID token of an account of the local Auth emulator (it carries the account's state now)."""
    response = requests.post(f"http://{auth_emulator_host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
                             params={"key": "local"}, timeout=30,
                             json={"email": email, "password": password, "returnSecureToken": True})
    response.raise_for_status()
    return response.json()["idToken"]
