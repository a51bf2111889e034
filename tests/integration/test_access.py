"""Who may do what: every route against every kind of caller, with real ID
tokens from the Auth emulator and real API keys, in process against the stack.

The matrix below is the README's access table."""
from __future__ import annotations

import hashlib
import json
import time
import uuid

import functions_framework
import pytest
import requests

from common.api import router
from common.cloud import dataset_job_store, import_store, job_store, training_store, version_store
from common.domain import dataset_jobs, exports, imports, request_bodies, training_job, versions
from infra.local.client import sign_up, wait_for
from infra.local.sample import data_yaml, synthetic_image
from tests.integration.helpers import drop, stats_when

APP = functions_framework.create_app(target="api_handler", source="functions/api/main.py", signature_type="http")
CALLERS = ("none", "bad", "revoked", "stranger", "viewer", "editor", "owner", "admin")
PEOPLE = ("stranger", "viewer", "editor", "owner", "outsider")
SIGNED_OUT = (401, 401, 401)  # none, bad token, revoked key
NOT_JSON = {"GET /", "GET /page/{file}", "GET /datasets/{d}/thumbnails/{sha256}", "GET /datasets/{d}/files/{image_id}",
            "GET /models/{model_id}/weights/{kind}", "GET /exports/{export_id}/zip"}

# route -> the status for each of CALLERS. {d}: the dataset; {job}, {model}: its job and model.
MATRIX = {
    "GET /healthz": (200,) * 8,
    "GET /openapi.json": (200,) * 8,
    "GET /datasets": (*SIGNED_OUT, 200, 200, 200, 200, 200),
    "POST /datasets": (*SIGNED_OUT, 201, 201, 201, 201, 201),
    "GET /datasets/{d}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /datasets/{d}/members": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "PUT /datasets/{d}/members/{user}": (*SIGNED_OUT, 404, 403, 403, 200, 200),
    "DELETE /datasets/{d}/members/{user}": (*SIGNED_OUT, 404, 403, 403, 200, 200),
    "POST /datasets/{d}/uploads": (*SIGNED_OUT, 404, 403, 200, 200, 200),
    "GET /datasets/{d}/images": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /datasets/{d}/images/{image_id}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /datasets/{d}/issues": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /datasets/{d}/files": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /datasets/{d}/classes": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "PUT /datasets/{d}/classes": (*SIGNED_OUT, 404, 403, 400, 400, 400),  # allowed: no names (400)
    "POST /datasets/{d}/classes/remap": (*SIGNED_OUT, 404, 403, 400, 400, 400),  # allowed: an unknown class
    "GET /datasets/{d}/jobs": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /datasets/{d}/jobs/{dataset_job_id}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    # allowed callers reach the handler: a revalidation is never cancelled (409)
    "POST /datasets/{d}/jobs/{dataset_job_id}/cancel": (*SIGNED_OUT, 404, 403, 409, 409, 409),
    # allowed callers reach the handler: a body that is not boxes (400), no If-Match (428)
    "PUT /datasets/{d}/images/{image_id}/labels": (*SIGNED_OUT, 404, 403, 400, 400, 400),
    "DELETE /datasets/{d}/images/{image_id}/labels": (*SIGNED_OUT, 404, 403, 428, 428, 428),
    "POST /training": (*SIGNED_OUT, 404, 403, 202, 202, 202),
    "GET /training": (*SIGNED_OUT, 200, 200, 200, 200, 200),
    "GET /training/{job_id}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "POST /datasets/{d}/versions": (*SIGNED_OUT, 404, 403, 202, 202, 202),
    "GET /datasets/{d}/versions": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /datasets/{d}/versions/{version}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "POST /datasets/{d}/exports": (*SIGNED_OUT, 404, 403, 202, 202, 202),
    "GET /exports": (*SIGNED_OUT, 200, 200, 200, 200, 200),
    "GET /exports/{export_id}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "POST /exports/{export_id}/cancel": (*SIGNED_OUT, 404, 403, 202, 202, 202),  # cancelled again: as it is
    "POST /training/{job_id}/cancel": (*SIGNED_OUT, 404, 403, 202, 202, 202),
    "GET /models": (*SIGNED_OUT, 200, 200, 200, 200, 200),
    "GET /models/{model_id}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "POST /api-keys": (*SIGNED_OUT, 201, 201, 201, 201, 403),
    "GET /api-keys": (*SIGNED_OUT, 200, 200, 200, 200, 403),
    "DELETE /api-keys/{key_id}": (*SIGNED_OUT, 404, 404, 404, 404, 403),
    # the page: its files and configuration are public; images as bytes follow their dataset
    "GET /": (200,) * 8,
    "GET /page/config": (200,) * 8,
    "GET /page/{file}": (200,) * 8,
    "GET /datasets/{d}/thumbnails/{sha256}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /datasets/{d}/files/{image_id}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /models/{model_id}/weights/{kind}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /exports/{export_id}/zip": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /models/{model_id}/weights/{kind}/url": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "GET /exports/{export_id}/url": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "POST /datasets/{d}/autolabel": (*SIGNED_OUT, 404, 403, 202, 202, 202),
    "GET /autolabel": (*SIGNED_OUT, 200, 200, 200, 200, 200),
    "GET /autolabel/{autolabel_job_id}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "POST /datasets/{d}/images/{image_id}/proposals/accept": (*SIGNED_OUT, 404, 403, 409, 409, 409),  # none yet
    "POST /datasets/{d}/images/{image_id}/proposals/reject": (*SIGNED_OUT, 404, 403, 200, 200, 200),
    "POST /datasets/{d}/proposals/accept": (*SIGNED_OUT, 404, 403, 202, 202, 202),
    "POST /datasets/{d}/imports": (*SIGNED_OUT, 404, 403, 202, 202, 202),
    "GET /imports": (*SIGNED_OUT, 200, 200, 200, 200, 200),
    "GET /imports/{import_id}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "POST /imports/{import_id}/cancel": (*SIGNED_OUT, 404, 403, 200, 200, 200),
    "GET /jobs": (*SIGNED_OUT, 200, 200, 200, 200, 200),
    "GET /jobs/{kind}/{job_id}": (*SIGNED_OUT, 404, 200, 200, 200, 200),
    "POST /jobs/{kind}/{job_id}/cancel": (*SIGNED_OUT, 404, 403, 202, 202, 202),  # cancelled again: as it is
    "POST /datasets/{d}/reindex": (*SIGNED_OUT, 404, 403, 403, 202, 202),  # owners, and the administrator
    "POST /reindex": (*SIGNED_OUT, 403, 403, 403, 403, 200),  # the administrator: after every folder, none started
}
PATHS = {"GET /jobs/{kind}/{job_id}": "/jobs/training/{job_id}",  # {kind} is a model's weights' elsewhere
         "POST /jobs/{kind}/{job_id}/cancel": "/jobs/training/{job_id}/cancel"}


@pytest.fixture(scope="module")
def client(stack):
    return APP.test_client()


@pytest.fixture(scope="module")
def people(stack) -> dict[str, tuple[str, str]]:
    """name -> (uid, ID token), new accounts in the Auth emulator."""
    run = uuid.uuid4().hex[:8]
    return {name: sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], f"{name}-{run}@example.com", "secret-123")
            for name in PEOPLE}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def call(client, method: str, path: str, token: str | None = None, body=None):
    return client.open(path, method=method, headers=bearer(token) if token else {}, json=body)


@pytest.fixture(scope="module")
def world(stack, client, bucket, api, people) -> dict:
    """A dataset owned by `owner` with `editor` and `viewer`, an image, a job and a model of it."""
    owner = people["owner"][1]
    dataset = f"acl-{uuid.uuid4().hex[:8]}"
    assert call(client, "POST", "/datasets", owner, {"id": dataset}).status_code == 201
    for name in ("editor", "viewer"):
        assert call(client, "PUT", f"/datasets/{dataset}/members/{people[name][0]}", owner,
                    {"role": name}).status_code == 200
    image = synthetic_image(5)[0]
    drop(bucket, dataset, {"images/a.jpg": image, "data.yaml": data_yaml()})
    stats_when(api, dataset, {"images": 1})
    job_id, model_id = f"job-acl-{uuid.uuid4().hex[:8]}", f"model-acl-{uuid.uuid4().hex[:8]}"
    job = training_job.queued_job(job_id, "r", dataset, 1, {}, now=1.0)
    training_store.jobs().document(job_id).set({**job, "status": training_job.RUNNING})
    download = f"derived/training/{job_id}/weights/results.csv"  # one small object, the model's and the export's file
    bucket.blob(download).upload_from_string(b"epoch\n1\n")
    download_uri = f"gs://{bucket.name}/{download}"
    training_store.models().document(model_id).set({"id": model_id, "dataset": dataset, "job_id": job_id,
                                                    "created_at": 1.0, "weights": {"results": download_uri}})
    key = call(client, "POST", "/api-keys", owner, {"name": "to revoke"}).get_json()
    assert call(client, "DELETE", f"/api-keys/{key['id']}", owner).status_code == 200
    yaml_generation = bucket.get_blob(f"datasets/{dataset}/data.yaml").generation
    version_store.versions_of(dataset).document("v1").set(versions.new_document(dataset, 1, {}, None, time.time()))
    export_id = f"export-acl-{uuid.uuid4().hex[:8]}"
    version_store.exports().document(export_id).set(
        {**exports.new_document(export_id, dataset, request_bodies.ExportRequest(format="yolo", version="v1"), None,
                                 time.time()),
         "uri": download_uri})
    autolabel_job_id = f"autolabel-acl-{uuid.uuid4().hex[:8]}"
    # recorded now, never asked for: the watch leaves them alone for JOB_STALL_SECONDS, longer than this module
    job_store.create(dataset_job_store.jobs(), dataset_jobs.new_job(autolabel_job_id, dataset, dataset_jobs.AUTOLABEL,
                                                                    time.time(), None, model_id=model_id))
    import_id = f"import-acl-{uuid.uuid4().hex[:8]}"
    import_store.create({**imports.new_import(import_id, dataset, "https://example.com/a.zip", "zip", None, None,
                                              time.time()), "status": imports.RUNNING, "tasks": 1})  # no job runs it
    return {"d": dataset, "job_id": job_id, "import_id": import_id, "model_id": model_id, "image_id": "labels/a",
            "autolabel_job_id": autolabel_job_id,
            "dataset_job_id": dataset_jobs.revalidation_job_id(dataset, yaml_generation),
            "version": "v1", "export_id": export_id,
            "file": "app.js", "sha256": hashlib.sha256(image).hexdigest(), "kind": "results",
            "user": people["outsider"][0], "key_id": "key-0000000000000000", "revoked_key": key["key"]}


def token_of(caller: str, stack, people, world) -> str | None:
    return {"none": None, "bad": "not-a-token", "revoked": world["revoked_key"], "admin": stack.token}.get(
        caller, people.get(caller, (None, None))[1])


def body_for(route: str, world: dict):
    return {"POST /datasets": {"id": f"acl-new-{uuid.uuid4().hex[:8]}"},
            "PUT /datasets/{d}/members/{user}": {"role": "viewer"},
            "POST /datasets/{d}/uploads": {"files": [{"path": "images/up.jpg", "size": 10}]},
            # the dataset's own model, which has no best.pt: the job fails at once, no trainer starts
            "POST /training": {"dataset": world["d"], "model": world["model_id"]},
            "POST /api-keys": {"name": "matrix"},
            "POST /datasets/{d}/autolabel": {"model_id": world["model_id"]},  # no ONNX: the job fails
            "POST /datasets/{d}/exports": {"format": "yolo"},
            # the metadata server: refused when the import begins, nothing is read
            "POST /datasets/{d}/imports": {"url": "http://169.254.169.254/computeMetadata/v1/a.zip"},
            "PUT /datasets/{d}/images/{image_id}/labels": {"labels": "not a list"},
            "PUT /datasets/{d}/classes": {"names": []},
            "POST /datasets/{d}/classes/remap": {"map": {"no such class": "x"}},
            "POST /reindex": {"after": "~"}}.get(route)  # after every dataset name: the test starts no job


def test_the_matrix_covers_every_route():
    declared = {f"{route.method} {route.path}".replace("{dataset}", "{d}") for route in router.ROUTES}
    assert declared == set(MATRIX)


@pytest.mark.parametrize("route", MATRIX)
def test_every_route_answers_each_caller_as_the_matrix_says(client, stack, people, world, route):
    method, template = route.split(" ", 1)
    path = PATHS.get(route, template).format(**world)
    got = {caller: call(client, method, path, token_of(caller, stack, people, world), body_for(route, world))
           for caller in CALLERS}
    assert {c: r.status_code for c, r in got.items()} == dict(zip(CALLERS, MATRIX[route]))
    assert all(r.mimetype == "application/json" for r in got.values()
               if not (route in NOT_JSON and r.status_code == 200))


def test_lists_show_only_what_the_caller_may_see(client, people, world):
    def names(caller: str) -> set[str]:
        listed = call(client, "GET", "/datasets?page_size=100", people[caller][1]).get_json()["datasets"]
        return {d["id"] for d in listed}
    assert world["d"] in names("viewer") and world["d"] not in names("stranger")
    for path, key in (("/training", "jobs"), ("/models", "models")):
        listed = call(client, "GET", path, people["viewer"][1]).get_json()[key]
        assert world["d"] in {item["dataset"] for item in listed}
        assert world["d"] not in {item["dataset"] for item in call(client, "GET", path, people["stranger"][1])
                                  .get_json()[key]}
    assert call(client, "GET", f"/training?dataset={world['d']}", people["stranger"][1]).status_code == 404


def test_every_kind_of_job_is_one_list_and_one_view_for_whoever_may_see_its_dataset(client, people, world):
    editor, viewer, stranger = (people[name][1] for name in ("editor", "viewer", "stranger"))
    dataset = world["d"]
    version = call(client, "POST", f"/datasets/{dataset}/versions", editor, {}).get_json()["version"]
    export_id = call(client, "POST", f"/datasets/{dataset}/exports", editor, {"format": "yolo"}).get_json()["export_id"]
    listed = call(client, "GET", f"/jobs?dataset={dataset}&limit=100", viewer).get_json()["items"]
    assert {f"version/{dataset}:{version}", f"export/{export_id}", f"training/{world['job_id']}",
            f"import/{world['import_id']}", f"autolabel/{world['autolabel_job_id']}"} <= {j["ref"] for j in listed}
    assert [j["created_at"] for j in listed] == sorted((j["created_at"] for j in listed), reverse=True)
    one = call(client, "GET", f"/jobs/export/{export_id}", viewer).get_json()
    assert (one["ref"], one["dataset"], one["progress"]["unit"], one["links"]["self"]) == \
        (f"export/{export_id}", dataset, "files", f"/exports/{export_id}")
    going = f"import-acl-going-{uuid.uuid4().hex[:8]}"  # the matrix may have cancelled the world's import
    import_store.create({**imports.new_import(going, dataset, "https://example.com/a.zip", "zip", None, None,
                                              time.time()), "status": imports.RUNNING, "tasks": 1})  # no job runs it
    imports_going = call(client, "GET", f"/jobs?dataset={dataset}&kind=import&active=true", viewer).get_json()["items"]
    assert f"import/{going}" in {j["ref"] for j in imports_going}
    assert {(j["kind"], j["status"] in ("queued", "running")) for j in imports_going} == {("import", True)}

    assert dataset not in {j["dataset"] for j in call(client, "GET", "/jobs?limit=100", stranger).get_json()["items"]}
    for path in (f"/jobs?dataset={dataset}", f"/jobs/export/{export_id}", f"/jobs/version/{dataset}:{version}"):
        assert call(client, "GET", path, stranger).status_code == 404, path


def test_refusals_say_which_and_need_no_stack_trace(client, people, world):
    viewer = people["viewer"][1]
    answer = call(client, "POST", f"/datasets/{world['d']}/uploads", viewer, body_for("POST /datasets/{d}/uploads",
                                                                                    world)).get_json()
    assert answer["error"]["message"] == f"this needs the editor role on dataset {world['d']!r}; you are viewer"
    assert "revoked" in call(client, "GET", "/datasets", world["revoked_key"]).get_json()["error"]["message"]
    assert "malformed" in client.get("/datasets", headers={"Authorization": "Token x"}).get_json()["error"]["message"]


def test_a_failed_sign_in_is_logged_without_the_token(client, capfd):
    capfd.readouterr()
    client.get("/datasets", headers=bearer("yd_secret-looking-key"))
    logged = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    refused = [record for record in logged if record["message"] == "sign-in refused"]
    assert refused and refused[-1]["path"] == "/datasets" and refused[-1]["key_prefix"] == "yd_secret-l"
    assert "yd_secret-looking-key" not in json.dumps(logged)


def test_a_removed_member_loses_access_at_once(client, people, world):
    owner, outsider = people["owner"][1], people["outsider"]
    members = f"/datasets/{world['d']}/members/{outsider[0]}"
    assert call(client, "PUT", members, owner, {"role": "viewer"}).status_code == 200
    assert call(client, "GET", f"/datasets/{world['d']}", outsider[1]).status_code == 200
    assert call(client, "DELETE", members, owner).status_code == 200
    assert call(client, "GET", f"/datasets/{world['d']}", outsider[1]).status_code == 404


def test_the_last_owner_cannot_leave(client, people, world):
    owner_uid, owner = people["owner"]
    answer = call(client, "DELETE", f"/datasets/{world['d']}/members/{owner_uid}", owner)
    assert answer.status_code == 409 and "at least one owner" in answer.get_json()["error"]["message"]
    nobody = f"nobody-{uuid.uuid4().hex}@example.com"  # no account: an invitation, pending until one verifies it
    by_email = call(client, "PUT", f"/datasets/{world['d']}/members/{nobody}", owner, {"role": "viewer"})
    assert by_email.status_code == 200 and nobody in {i["email"] for i in by_email.get_json()["invitations"]}
    assert call(client, "DELETE", f"/datasets/{world['d']}/members/{nobody}", owner).get_json()["invitations"] == []


def test_an_api_key_acts_as_its_maker_until_revoked(client, people, world):
    editor = people["editor"][1]
    made = call(client, "POST", "/api-keys", editor, {"name": "ci"}).get_json()
    assert made["key"].startswith("yd_") and made["prefix"] == made["key"][:11]
    assert call(client, "GET", f"/datasets/{world['d']}", made["key"]).status_code == 200
    listed = call(client, "GET", "/api-keys", editor).get_json()["keys"]
    assert made["id"] in {k["id"] for k in listed} and all("key" not in k for k in listed)
    assert call(client, "DELETE", f"/api-keys/{made['id']}", editor).status_code == 200
    assert call(client, "GET", f"/datasets/{world['d']}", made["key"]).status_code == 401


def test_a_training_request_records_who_asked(client, people, world):
    request_id = f"acl-{uuid.uuid4().hex[:8]}"
    body = {"dataset": world["d"], "model": world["model_id"], "request_id": request_id}
    job_id = call(client, "POST", "/training", people["editor"][1], body).get_json()["job_id"]
    job = call(client, "GET", f"/training/{job_id}", people["viewer"][1]).get_json()
    assert job["requested_by"] == people["editor"][0]


def test_training_from_a_model_of_another_dataset_needs_a_view_of_that_dataset(client, people, world):
    """The editor of world's dataset names a model of a dataset only `outsider` may see: 404, as
    GET /models/{id} answers them; once outsider makes them a viewer there, the request is accepted."""
    outsider_uid, outsider = people["outsider"]
    other = f"acl-other-{uuid.uuid4().hex[:8]}"
    assert call(client, "POST", "/datasets", outsider, {"id": other}).status_code == 201
    model_id = f"model-other-{uuid.uuid4().hex[:8]}"
    training_store.models().document(model_id).set({"id": model_id, "dataset": other, "job_id": "job-other",
                                                    "created_at": 1.0, "weights": {}})
    editor_uid, editor = people["editor"]
    body = {"dataset": world["d"], "model": model_id}
    assert call(client, "GET", f"/models/{model_id}", editor).status_code == 404
    refused = call(client, "POST", "/training", editor, body)
    assert refused.status_code == 404 and refused.get_json()["error"]["message"] == f"no model {model_id!r}"
    made = call(client, "PUT", f"/datasets/{other}/members/{editor_uid}", outsider, {"role": "viewer"})
    assert made.status_code == 200
    assert call(client, "POST", "/training", editor, body).status_code == 202


def test_an_upload_through_the_handed_out_url_is_indexed(client, api, people, world):
    image = synthetic_image(9)[0]
    answer = call(client, "POST", f"/datasets/{world['d']}/uploads", people["editor"][1],
                  {"files": [{"path": "images/uploaded.jpg", "size": len(image), "content_type": "image/jpeg"}]})
    (upload,) = answer.get_json()["uploads"]
    assert requests.put(upload["upload_url"], data=image, timeout=30).status_code in (200, 201)
    found = wait_for(lambda: api.get_or_none(f"/datasets/{world['d']}/images/labels/uploaded"),
                     lambda image_view: image_view is not None, 60, "the uploaded image in the index")
    assert found["path"] == f"datasets/{world['d']}/images/uploaded.jpg"


@pytest.mark.parametrize("path", ["../other/images/a.jpg", "images/../../other/images/a.jpg", "/images/a.jpg",
                                  "images/a.exe"])
def test_no_upload_url_for_a_path_outside_the_dataset(client, people, world, path):
    answer = call(client, "POST", f"/datasets/{world['d']}/uploads", people["editor"][1],
                  {"files": [{"path": "images/fine.jpg", "size": 3}, {"path": path, "size": 3}]})
    assert answer.status_code == 400 and "files[1]" in answer.get_json()["error"]["message"]


def test_expensive_requests_are_limited_per_person(client, stack, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_REQUESTS", "2")
    monkeypatch.setenv("RATE_LIMIT_SECONDS", "3600")
    run, host = uuid.uuid4().hex[:8], stack.env()["FIREBASE_AUTH_EMULATOR_HOST"]
    busy, other = (sign_up(host, f"{name}-{run}@example.com", "secret-123")[1] for name in ("busy", "other"))
    uploads = {"files": [{"path": "images/limited.jpg", "size": 3}]}

    def ask(token: str):
        dataset = f"rate-{run}-{token[-6:]}".replace("_", "-")
        call(client, "POST", "/datasets", token, {"id": dataset})
        return call(client, "POST", f"/datasets/{dataset}/uploads", token, uploads)

    answers = [ask(busy) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) > 0 and "try again" in answers[-1].get_json()["error"]["message"]
    assert ask(other).status_code == 200  # one person's requests do not count against another's
