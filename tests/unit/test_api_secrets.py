"""The API's own secrets: page tokens are keyed by PAGE_TOKEN_SECRET alone, and a weak secret is refused."""
import hashlib
import hmac
import secrets

import pytest

from common.api import pagination
from common.platform import config

STRONG = {"API_TOKEN": secrets.token_urlsafe(24), "PAGE_TOKEN_SECRET": secrets.token_urlsafe(32)}


@pytest.fixture
def env(monkeypatch):
    for name, value in STRONG.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def signature_keyed_by(secret: str, payload: bytes) -> bytes:
    key = hashlib.sha256(b"yolodrop page token\0" + secret.encode()).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()[:16]


def test_a_page_token_is_signed_with_the_page_secret_and_says_nothing_of_the_api_token(env):
    token = pagination.encode_token("images", {"source": 0, "at": ["a"], "skip": 0})
    payload = pagination._b64decode(token.split(".")[0])
    signature = pagination._b64decode(token.split(".")[1])
    assert signature == signature_keyed_by(STRONG["PAGE_TOKEN_SECRET"], payload)
    assert signature != signature_keyed_by(STRONG["API_TOKEN"], payload)
    assert pagination.decode_token("images", token) == {"source": 0, "at": ["a"], "skip": 0}


def test_without_a_page_secret_no_token_is_made_from_the_api_token(env):
    env.delenv("PAGE_TOKEN_SECRET")
    with pytest.raises(KeyError, match="PAGE_TOKEN_SECRET"):
        pagination.encode_token("images", {"source": 0})
    assert "PAGE_TOKEN_SECRET" in config.api_secrets_problem()


def test_random_secrets_pass(env):
    assert config.api_secrets_problem() is None
    env.setenv("PAGE_TOKEN_SECRET", "0123456789abcdef" * 2)  # hex of 16 bytes: 32 characters, 16 different
    assert config.api_secrets_problem() is None


@pytest.mark.parametrize("name, value, told", [
    ("API_TOKEN", "short-token", "at least 32 characters"),
    ("API_TOKEN", "changeme" * 8, "12 of them different (it has 64, 7 different)"),
    ("PAGE_TOKEN_SECRET", "", "PAGE_TOKEN_SECRET must be a random secret"),
    ("PAGE_TOKEN_SECRET", STRONG["API_TOKEN"], "must differ from API_TOKEN"),
], ids=["short", "repetitive", "empty", "shared"])  # ids, not the random values: each test worker collects alike
def test_a_weak_or_shared_secret_is_named_with_what_to_set(env, name, value, told):
    env.setenv(name, value)
    problem = config.api_secrets_problem()
    assert told in problem and "openssl rand -base64 32" in problem
