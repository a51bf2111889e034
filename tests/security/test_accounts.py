"""Attacks on who may join, API keys, quotas and upload sessions: each through the real API (run in process, so
that a test may change the deployment's configuration) against the local stack's emulators.

The people are real accounts of the Auth emulator; the dataset files go through real upload sessions of the
storage emulator and are indexed (or not) by the stack's ingest function."""
from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import datetime

import firebase_admin
import functions_framework
import pytest
import requests
from google.cloud.firestore_v1.base_query import FieldFilter

from common.cloud import clients, db, training_store
from common.domain import quotas, rate_limits, training_job, training_request
from infra.local.browser import chromium, screenshot
from infra.local.client import sign_in, sign_up, wait_for
from infra.local.sample import synthetic_image

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
PASSWORD = "secret-123"


@pytest.fixture(scope="module")
def client(stack):
    return APP.test_client()


@pytest.fixture(scope="module")
def auth_host(stack) -> str:
    return stack.env()["FIREBASE_AUTH_EMULATOR_HOST"]


@pytest.fixture(autouse=True)
def quick_account_checks(monkeypatch):
    """What an instance read of an account is trusted one second here (30 by default), so a test of a change
    of account does not wait half a minute."""
    monkeypatch.setenv("ACCOUNT_CHECK_SECONDS", "1")


def new_email(name: str, domain: str = "example.com") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@{domain}"


def person(auth_host: str, name: str, domain: str = "example.com") -> tuple[str, str, str]:
    """(uid, ID token, e-mail) of a new account whose e-mail is verified."""
    email = new_email(name, domain)
    return (*sign_up(auth_host, email, PASSWORD), email)


def call(client, method: str, path: str, token: str | None, body=None):
    return client.open(path, method=method, headers={"Authorization": f"Bearer {token}"} if token else {}, json=body)


def refusal(answer) -> str:
    return answer.get_json()["error"]["message"]


def admin_update(auth_host: str, uid: str, **fields) -> None:
    """What the Firebase console (an administrator) does to an account: accounts:update as the emulator's owner."""
    requests.post(f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:update",
                  headers={"Authorization": "Bearer owner"}, json={"localId": uid, **fields},
                  timeout=30).raise_for_status()


def new_dataset(client, token: str) -> str:
    dataset = f"acct-{uuid.uuid4().hex[:8]}"
    answer = call(client, "POST", "/datasets", token, {"id": dataset})
    assert answer.status_code == 201, answer.get_json()
    return dataset


# ---- who may join ----

def test_an_unverified_email_is_refused_and_creates_nothing(client, api, auth_host):
    email = new_email("unverified")
    _, token = sign_up(auth_host, email, PASSWORD, verified=False)
    dataset = f"acct-unverified-{uuid.uuid4().hex[:8]}"
    for method, path, body in (("GET", "/datasets", None), ("POST", "/datasets", {"id": dataset}),
                               ("POST", "/api-keys", {"name": "mine"})):
        answer = call(client, method, path, token, body)
        assert answer.status_code == 403, (path, answer.get_json())
        assert f"your e-mail address {email} is not verified" in refusal(answer)
        assert "verification link" in refusal(answer)
    assert api.get_or_none(f"/datasets/{dataset}") is None


def test_the_allowlist_admits_its_domain_only(client, auth_host, monkeypatch):
    domain = f"allowed-{uuid.uuid4().hex[:6]}.example"
    monkeypatch.setenv("JOIN_POLICY", "allowlist")
    monkeypatch.setenv("JOIN_ALLOWLIST", f"{domain}, someone@else.example")
    _, listed, _ = person(auth_host, "listed", domain=domain)
    _, outsider, email = person(auth_host, "outsider", domain=f"evil-{domain}")
    assert call(client, "GET", "/datasets", listed).status_code == 200
    answer = call(client, "GET", "/datasets", outsider)
    assert answer.status_code == 403
    assert f"sign-up policy 'allowlist': {email} is not on" in refusal(answer) and "invite you" in refusal(answer)


def test_invitation_only_admits_the_invited_even_before_they_have_an_account(client, auth_host, monkeypatch):
    _, owner, _ = person(auth_host, "owner")
    dataset = new_dataset(client, owner)  # under the open policy
    monkeypatch.setenv("JOIN_POLICY", "invitation")
    _, stranger, stranger_email = person(auth_host, "stranger")
    answer = call(client, "GET", "/datasets", stranger)
    assert answer.status_code == 403
    assert f"sign-up policy 'invitation': {stranger_email} has no invitation" in refusal(answer)
    assert call(client, "GET", f"/datasets/{dataset}", owner).status_code == 200  # a member is admitted
    invited_email = new_email("invited")
    invited = call(client, "PUT", f"/datasets/{dataset}/members/{invited_email}", owner, {"role": "viewer"})
    assert invited.status_code == 200
    assert [(i["email"], i["role"]) for i in invited.get_json()["invitations"]] == [(invited_email, "viewer")]
    uid, token = sign_up(auth_host, invited_email, PASSWORD)  # signs up after the invitation
    assert call(client, "GET", f"/datasets/{dataset}", token).status_code == 200
    members = call(client, "GET", f"/datasets/{dataset}/members", owner).get_json()
    assert {m["uid"]: m["role"] for m in members["members"]}[uid] == "viewer" and members["invitations"] == []


def test_registering_someone_elses_address_first_earns_no_role(client, auth_host):
    _, owner, _ = person(auth_host, "owner")
    dataset = new_dataset(client, owner)
    victim_email = new_email("victim")
    squatter_uid, squatter = sign_up(auth_host, victim_email, PASSWORD, verified=False)  # cannot verify it
    given = call(client, "PUT", f"/datasets/{dataset}/members/{victim_email}", owner, {"role": "editor"})
    assert given.status_code == 200
    assert squatter_uid not in {m["uid"] for m in given.get_json()["members"]}
    assert [i["email"] for i in given.get_json()["invitations"]] == [victim_email]
    assert call(client, "GET", f"/datasets/{dataset}", squatter).status_code == 403
    listed = call(client, "GET", f"/datasets/{dataset}/members", owner).get_json()
    assert squatter_uid not in {m["uid"] for m in listed["members"]}
    # the address's owner proves it (the verification link) and signs in: the role is theirs only now
    admin_update(auth_host, squatter_uid, emailVerified=True)
    assert call(client, "GET", f"/datasets/{dataset}", sign_in(auth_host, victim_email, PASSWORD)).status_code == 200


# ---- API keys ----

def test_an_api_key_cannot_make_list_or_revoke_keys(client, auth_host):
    _, token, _ = person(auth_host, "keys")
    key = call(client, "POST", "/api-keys", token, {"name": "ci"}).get_json()
    for method, path, body in (("POST", "/api-keys", {"name": "child"}), ("GET", "/api-keys", None),
                               ("DELETE", f"/api-keys/{key['id']}", None)):
        answer = call(client, method, path, key["key"], body)
        assert answer.status_code == 403 and "an API key cannot make, list or revoke keys" in refusal(answer)
    listed = call(client, "GET", "/api-keys", token).get_json()["keys"]
    assert [k["id"] for k in listed] == [key["id"]]  # no child was made, and the key is not revoked
    assert call(client, "GET", "/datasets", key["key"]).status_code == 200


def test_a_disabled_or_deleted_accounts_keys_stop_working(client, auth_host):
    uid, token, _ = person(auth_host, "leaver")
    key = call(client, "POST", "/api-keys", token, {"name": "ci"}).get_json()["key"]
    assert call(client, "GET", "/datasets", key).status_code == 200
    admin_update(auth_host, uid, disableUser=True)
    assert call(client, "GET", "/datasets", token).status_code == 401
    refused = wait_for(lambda: call(client, "GET", "/datasets", key), lambda a: a.status_code == 401, 15,
                       "the disabled account's key refused")
    assert refused.get_json()["error"]["message"] == "the account that made this API key is disabled"
    requests.post(f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:delete",
                  headers={"Authorization": "Bearer owner"}, json={"localId": uid}, timeout=30).raise_for_status()
    deleted = wait_for(lambda: call(client, "GET", "/datasets", key),
                       lambda a: "deleted" in a.get_json()["error"]["message"], 15, "the deleted account's key refused")
    assert deleted.status_code == 401


def test_the_id_token_of_a_deleted_account_is_a_401_not_a_500(client, auth_host):
    uid, token, _ = person(auth_host, "deleted")
    requests.post(f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:delete",
                  headers={"Authorization": "Bearer owner"}, json={"localId": uid}, timeout=30).raise_for_status()
    answer = call(client, "GET", "/datasets", token)
    assert answer.status_code == 401 and "no longer exists" in refusal(answer)


def test_a_key_expires_when_its_maker_said(client, auth_host):
    _, token, _ = person(auth_host, "expiring")
    too_long = call(client, "POST", "/api-keys", token, {"name": "forever", "expires_at": time.time() + 10 ** 9})
    assert too_long.status_code == 400 and "at most 365 days ahead" in refusal(too_long)
    made = call(client, "POST", "/api-keys", token, {"name": "short", "expires_at": time.time() + 2}).get_json()
    assert call(client, "GET", "/datasets", made["key"]).status_code == 200
    expired = wait_for(lambda: call(client, "GET", "/datasets", made["key"]), lambda a: a.status_code == 401, 15,
                       "the key refused once expired")
    assert "expired at" in refusal(expired) and "make a new one" in refusal(expired)
    default = call(client, "POST", "/api-keys", token, {"name": "default"}).get_json()
    assert default["expires_at"] == pytest.approx(default["created_at"] + 90 * 86400, abs=5)


# ---- quotas and limits ----

def test_the_datasets_quota_names_itself(client, api, auth_host, monkeypatch):
    monkeypatch.setenv("QUOTA_DATASETS", "1")
    _, token, _ = person(auth_host, "collector")
    new_dataset(client, token)
    second = f"acct-{uuid.uuid4().hex[:8]}"
    answer = call(client, "POST", "/datasets", token, {"id": second})
    assert answer.status_code == 403
    assert refusal(answer).startswith("quota datasets exceeded: you use 1 of 1")
    assert answer.get_json()["quota"] == {"name": "datasets", "usage": 1, "limit": 1}
    assert api.get_or_none(f"/datasets/{second}") is None


def test_the_stored_bytes_quota_hands_out_no_session_beyond_it(client, bucket, auth_host, monkeypatch):
    monkeypatch.setenv("QUOTA_STORED_BYTES", "100")
    _, token, _ = person(auth_host, "hoarder")
    dataset = new_dataset(client, token)
    first = call(client, "POST", f"/datasets/{dataset}/uploads", token,
                 {"files": [{"path": "images/a.jpg", "size": 60}]})
    assert first.status_code == 200
    over = call(client, "POST", f"/datasets/{dataset}/uploads", token,
                {"files": [{"path": "images/b.jpg", "size": 30}, {"path": "images/c.jpg", "size": 30}]})
    assert over.status_code == 403
    assert refusal(over).startswith("quota stored_bytes exceeded: you use 60 of 100 and this would add 60")
    assert "uploads" not in over.get_json()


def test_per_request_upload_limits(client, auth_host, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_FILES", "2")
    _, token, _ = person(auth_host, "bulk")
    dataset = new_dataset(client, token)
    files = [{"path": f"images/{i}.jpg", "size": 1} for i in range(3)]
    answer = call(client, "POST", f"/datasets/{dataset}/uploads", token, {"files": files})
    assert answer.status_code == 400 and "at most 2 per request (MAX_UPLOAD_FILES), not 3" in refusal(answer)


def _running_job(uid: str, dataset: str, started_at: float, finished_at: float | None = None,
                 request_id: str | None = None) -> str:
    """A job of `uid` as the training function records it (no trainer is started for it)."""
    request_id = request_id or uuid.uuid4().hex
    job_id = training_request.job_id_for(request_id, uid)
    job = training_job.received_job(job_id, request_id, {"dataset": dataset}, started_at, uid)
    status = training_job.COMPLETED if finished_at else training_job.RUNNING
    training_store.jobs().document(job_id).set({**job, "status": status, "started_at": started_at,
                                                "finished_at": finished_at})
    return job_id


def test_one_person_may_run_only_so_many_trainings_at_once(client, auth_host, monkeypatch):
    monkeypatch.setenv("QUOTA_CONCURRENT_TRAINING", "1")
    uid, token, _ = person(auth_host, "trainer")
    dataset = new_dataset(client, token)
    running = _running_job(uid, dataset, time.time(), request_id="first")
    answer = call(client, "POST", "/training", token, {"dataset": dataset, "model": "yolov8n.pt"})
    assert answer.status_code == 403
    assert refusal(answer).startswith("quota concurrent_training exceeded: you use 1 of 1")
    retried = call(client, "POST", "/training", token,
                   {"dataset": dataset, "model": "yolov8n.pt", "request_id": "first"})
    assert retried.status_code == 202 and retried.get_json()["job_id"] == running  # a retry is its own job, no quota
    queued = training_store.jobs().where(filter=FieldFilter("requested_by", "==", uid)).where(
        filter=FieldFilter("status", "==", training_job.QUEUED))
    assert not list(queued.stream())


def test_trainer_hours_per_day_and_the_training_caps(client, auth_host, monkeypatch):
    monkeypatch.setenv("QUOTA_GPU_HOURS_PER_DAY", "0.01")
    uid, token, _ = person(auth_host, "gpu")
    dataset = new_dataset(client, token)
    now = time.time()
    _running_job(uid, dataset, max(quotas.day_start(now), now - 600), finished_at=now)
    answer = call(client, "POST", "/training", token, {"dataset": dataset, "model": "yolov8n.pt"})
    assert answer.status_code == 403 and refusal(answer).startswith("quota gpu_hours_per_day exceeded")
    for field, value in (("epochs", 1000), ("imgsz", 2048)):
        capped = call(client, "POST", "/training", token, {"dataset": dataset, "model": "yolov8n.pt", field: value})
        assert capped.status_code == 400 and f"{field} is at most" in refusal(capped)


def test_dataset_creation_is_rate_limited(client, auth_host, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_DATASETS", "2/3600")
    uid, token, _ = person(auth_host, "creator")
    answers = [call(client, "POST", "/datasets", token, {"id": f"acct-{uuid.uuid4().hex[:8]}"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert "datasets requests" in refusal(answers[-1]) and int(answers[-1].headers["Retry-After"]) > 0
    counter = db.client().collection("rate_limits").document(rate_limits.counter_id(uid, "datasets", time.time(), 3600))
    assert isinstance(counter.get().get("expires_at"), datetime)  # a timestamp: the TTL policy deletes it


def test_new_accounts_do_not_multiply_the_limit_without_end(client, auth_host, monkeypatch):
    """Everyone together may make RATE_LIMIT_GLOBAL_FACTOR times one person's limit of a kind: with a factor of 1
    and 20 keys an hour each, 20 in all (2 on each of 10 counters picked at random), so a fresh person, far below
    their own 20, is refused once others have used the ceiling up."""
    monkeypatch.setenv("RATE_LIMIT_API_KEYS", "20/3600")
    monkeypatch.setenv("RATE_LIMIT_GLOBAL_FACTOR", "1")
    made = 0
    for name in ("first", "second", "third"):
        _, token, _ = person(auth_host, name)
        answers = [call(client, "POST", "/api-keys", token, {"name": "n"}) for _ in range(20)]
        made += sum(a.status_code == 201 for a in answers)
        assert {a.status_code for a in answers} <= {201, 429}
        # nobody reached their own 20: every refusal names everyone's ceiling, not the person's limit
        assert all("all people together" in refusal(a) for a in answers if a.status_code == 429)
    assert made <= 20  # three people asked for 60: at most the ceiling was made, whoever asked


# ---- upload sessions of people who lost the right ----

def _session(client, token: str, dataset: str, path: str, data: bytes) -> str:
    answer = call(client, "POST", f"/datasets/{dataset}/uploads", token,
                  {"files": [{"path": path, "size": len(data), "content_type": "image/jpeg"}]})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["uploads"][0]["upload_url"]


def _refused_issue(api, dataset: str, path: str) -> dict:
    def issues():
        return [i for i in api.all_pages(f"/datasets/{dataset}/issues", "issues")
                if i["file"] == f"datasets/{dataset}/{path}"]
    return wait_for(issues, lambda found: any(i["code"] == "uploader_not_allowed" for i in found), 60,
                    f"{path} refused")[0]


def test_a_removed_members_and_a_revoked_keys_sessions_land_nothing(client, api, bucket, auth_host):
    _, owner, _ = person(auth_host, "owner")
    leaving_uid, leaving, _ = person(auth_host, "leaving")  # removed from the dataset
    keyed_uid, keyed, _ = person(auth_host, "keyed")        # stays an editor, but their key is revoked
    dataset = new_dataset(client, owner)
    for uid in (leaving_uid, keyed_uid):
        assert call(client, "PUT", f"/datasets/{dataset}/members/{uid}", owner, {"role": "editor"}).status_code == 200
    images = [synthetic_image(seed)[0] for seed in (3, 4, 5)]
    removed_url = _session(client, leaving, dataset, "images/removed.jpg", images[0])
    key = call(client, "POST", "/api-keys", keyed, {"name": "uploader"}).get_json()
    revoked_url = _session(client, key["key"], dataset, "images/revoked.jpg", images[1])
    owners_url = _session(client, owner, dataset, "images/owners.jpg", images[2])
    assert call(client, "DELETE", f"/api-keys/{key['id']}", keyed).status_code == 200
    assert call(client, "DELETE", f"/datasets/{dataset}/members/{leaving_uid}", owner).status_code == 200
    for url, data in ((removed_url, images[0]), (revoked_url, images[1]), (owners_url, images[2])):
        assert requests.put(url, data=data, timeout=30).status_code in (200, 201)  # a session cannot be revoked
    removed = _refused_issue(api, dataset, "images/removed.jpg")
    assert f"{leaving_uid}, who is no longer an editor" in removed["message"]
    assert f"({key['id']}) asked for, and that key is revoked" in _refused_issue(api, dataset,
                                                                               "images/revoked.jpg")["message"]
    owners = wait_for(lambda: api.get_or_none(f"/datasets/{dataset}/images/labels/owners"), lambda v: v is not None,
                      60, "the owner's concurrent upload indexed")
    assert owners["path"] == f"datasets/{dataset}/images/owners.jpg"
    for name in ("removed", "revoked"):
        assert api.get_or_none(f"/datasets/{dataset}/images/labels/{name}") is None
        assert bucket.get_blob(f"datasets/{dataset}/images/{name}.jpg") is None


def test_the_page_tells_an_unverified_person_why_on_the_sign_in_screen(stack, auth_host):
    email = new_email("page-unverified")
    sign_up(auth_host, email, PASSWORD, verified=False)
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{stack.env()['API_URL']}/#/signin")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        told = page.get_by_role("alert").filter(has_text=f"your e-mail address {email} is not verified")
        told.wait_for(timeout=20_000)
        screenshot(page, "page-signin-unverified")
        assert page.evaluate("location.hash") == "#/signin"
        assert page.evaluate("sessionStorage.getItem('yolodrop.session')") is None  # signed out again


def test_an_identity_service_out_of_reach_is_a_503_to_retry_not_a_500(client, auth_host, monkeypatch):
    _, token, _ = person(auth_host, "patient")
    with socket.socket() as closed:  # a port nothing listens on: Firebase Authentication unreachable
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", f"127.0.0.1:{closed.getsockname()[1]}")
        unreachable = firebase_admin.initialize_app(options={"projectId": os.environ["GOOGLE_CLOUD_PROJECT"]},
                                                    name=f"unreachable-{uuid.uuid4().hex[:6]}")
        working = clients.firebase_app()
        clients.use("firebase_app", unreachable)
        try:
            answer = call(client, "GET", "/datasets", token)
        finally:
            clients.use("firebase_app", working)
            firebase_admin.delete_app(unreachable)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "the identity service could not check this sign-in" in refusal(answer)
    assert call(client, "GET", "/datasets", token).status_code == 200
