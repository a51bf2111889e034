"""Download URLs (common/cloud/storage.py download_url): a V4 signed URL where Google Cloud is, the emulator's own
URL on the local stack. The signing runs for real, with a key made here (the platform's credentials, which hold
no key, sign the same URL through IAM's signBlob)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account

from common.cloud import clients, storage


@pytest.fixture(autouse=True)
def anonymous_client(monkeypatch):
    """A storage client that asks nothing of the environment (no request is made: URLs are only made)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs
    made = gcs.Client(project="p", credentials=AnonymousCredentials())
    monkeypatch.setattr(storage, "client", lambda: made)


@pytest.fixture
def key_file_credentials(monkeypatch):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "p", "private_key_id": "k1", "private_key": pem,
            "client_email": "yd-api@p.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token"}
    credentials = service_account.Credentials.from_service_account_info(info)
    monkeypatch.setattr(clients, "signing_credentials", lambda: credentials)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    return credentials


def test_a_signed_url_downloads_the_object_as_its_file_for_the_period(key_file_credentials):
    url = storage.download_url("gs://yolodrop-data/derived/exports/e1.zip", "e1.zip", 900)
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "storage.googleapis.com",
                                                        "/yolodrop-data/derived/exports/e1.zip")
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256" and query["X-Goog-Expires"] == "900"
    assert query["X-Goog-Credential"].startswith("yd-api@p.iam.gserviceaccount.com/")
    assert query["response-content-disposition"] == 'attachment; filename="e1.zip"'
    assert len(query["X-Goog-Signature"]) == 512  # 2048-bit RSA, hex


def test_on_the_local_stack_the_url_is_the_emulators_own(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")
    assert storage.download_url("gs://b/derived/training/job-1/weights/best.onnx", "m-best.onnx", 900) == \
        "http://127.0.0.1:9023/storage/v1/b/b/o/derived%2Ftraining%2Fjob-1%2Fweights%2Fbest.onnx?alt=media"
