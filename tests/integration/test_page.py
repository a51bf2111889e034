"""The page in a real browser: Debian's Chromium driven by Playwright, against the local stack. Each test signs in
through the page's own form (the Auth emulator), acts as a person does, and saves a screenshot under
.local/screenshots/. Waits are Playwright's auto-waiting, `expect` with timeouts, or polls with deadlines."""
from __future__ import annotations

import base64
import json
import uuid
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from playwright.sync_api import expect

from infra.local.archive_server import ArchiveServer
from infra.local.browser import PHONE, chromium, screenshot, sign_in
from infra.local.client import sign_up, wait_for
from infra.local.sample import generated_dataset, sample_dataset
from tests.integration.helpers import drop, stats_when
from tests.integration.trained import TINY, trained_model  # noqa: F401 - a fixture

PASSWORD = "secret-123"
SHOWN = 20_000  # ms: how long the page may take to show what the API already holds


@pytest.fixture(scope="module")
def person(stack) -> dict:
    email = f"page-{uuid.uuid4().hex[:8]}@example.com"
    uid, _ = sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], email, PASSWORD)
    return {"uid": uid, "email": email}


def give_role(api, dataset: str, person: dict, role: str = "editor") -> None:
    api.session.put(f"{api.url}/datasets/{dataset}/members/{person['uid']}", json={"role": role},
                    timeout=30).raise_for_status()


@pytest.fixture(scope="module")
def sample(bucket, api, person) -> str:
    dataset = f"page-{uuid.uuid4().hex[:8]}"
    files = sample_dataset()
    drop(bucket, dataset, files.files)
    stats_when(api, dataset, {"images": files.expected["images"], "boxes": files.expected["boxes"]})
    give_role(api, dataset, person)
    return dataset


@pytest.fixture(scope="module")
def browser(stack):
    with chromium() as context:
        yield context


@pytest.fixture
def page(browser, stack, person):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    # What the page's Content-Security-Policy blocked: Chromium says so on the console.
    page.on("console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text
            else None)
    sign_in(page, stack.env()["API_URL"], person["email"], PASSWORD)
    yield page
    page.close()
    assert not errors, errors


def open_hash(page, stack, route: str) -> None:
    page.goto(f"{stack.env()['API_URL']}/{route}")


def classes_drawn(item) -> Counter:
    return Counter(item.locator("[data-testid=box]").evaluate_all("els => els.map(e => e.dataset.class)"))


def classes_listed(image: dict) -> Counter:
    return Counter(box["class_name"] or str(box["class_id"]) for box in image["labels"])


def assert_gallery_matches(page, images: list[dict]) -> None:
    items = page.get_by_test_id("gallery-item")
    expect(items).to_have_count(len(images), timeout=SHOWN)
    for image in images:
        item = page.locator(f'[data-testid=gallery-item][data-image-id="{image["id"]}"]')
        assert classes_drawn(item) == classes_listed(image), image["id"]


# ---- sign in, the gallery, filters ---------------------------------------------------------------------------

def test_the_gallery_shows_every_image_with_exactly_the_boxes_the_api_lists(page, stack, api, sample):
    expect(page.get_by_role("link", name=sample)).to_be_visible()
    open_hash(page, stack, f"#/d/{sample}")
    expect(page.get_by_role("heading", name="Boxes per class")).to_be_visible()
    screenshot(page, "page-dataset-health")
    open_hash(page, stack, f"#/d/{sample}/gallery")
    assert_gallery_matches(page, api.all_pages(f"/datasets/{sample}/images", "images"))
    expect(page.locator("[data-testid=gallery-item][data-painted=true]")).to_have_count(
        sum(1 for i in api.all_pages(f"/datasets/{sample}/images", "images") if _has_thumbnail(api, sample, i)),
        timeout=SHOWN)
    screenshot(page, "page-gallery")
    page.set_viewport_size(PHONE)
    screenshot(page, "page-gallery-phone")


def test_the_health_histograms_are_the_api_exact_ones(page, stack, api, sample):
    stats = api.get(f"/datasets/{sample}")["stats"]
    open_hash(page, stack, f"#/d/{sample}")
    for title, key in (("Boxes per image", "boxes_per_image"), ("Box sizes", "box_sizes")):
        panel = page.locator("section.panel", has=page.get_by_role("heading", name=title))
        expect(panel.locator(".bar-name")).to_have_text(list(stats[key]), timeout=SHOWN)
        assert panel.locator(".bar-value").all_inner_texts() == [str(n) for n in stats[key].values()]
    assert sum(stats["boxes_per_image"].values()) == stats["images"]


def _has_thumbnail(api, dataset: str, image: dict) -> bool:
    if not image["sha256"]:
        return False
    return api.session.get(f"{api.url}/datasets/{dataset}/thumbnails/{image['sha256']}", timeout=30).status_code == 200


# What a browser or a cache in between may send: a list, weak tags (a proxy that gzips weakens them), *.
HELD = [('"{etag}"', 304), ('W/"{etag}"', 304), ('W/"old", "other", "{etag}"', 304), ('"other",W/"{etag}"', 304),
        ("*", 304), ('"old", W/"other"', 200), ('"{etag}x", W/"x{etag}"', 200)]


@pytest.mark.parametrize("held, status", HELD)
def test_a_page_file_is_not_sent_again_to_a_holder_of_its_etag_among_others_weak_or_strong(api, held, status):
    first = requests.get(f"{api.url}/page/app.js", timeout=30)
    etag = first.headers["ETag"]
    again = requests.get(f"{api.url}/page/app.js", headers={"If-None-Match": held.format(etag=etag.strip('"'))},
                         timeout=30)
    assert (again.status_code, again.headers["ETag"]) == (status, etag)
    assert again.content == (b"" if status == 304 else first.content)


def test_an_images_thumbnail_and_file_are_not_sent_again_to_a_holder_of_their_etag(api, sample):
    image = next(i for i in api.all_pages(f"/datasets/{sample}/images", "images") if i["sha256"])
    thumbnail = f"{api.url}/datasets/{sample}/thumbnails/{image['sha256']}"
    wait_for(lambda: api.session.get(thumbnail, timeout=30).status_code, lambda status: status == 200, 60,
             "the thumbnail written by ingest")
    for url in (thumbnail, f"{api.url}/datasets/{sample}/files/{image['id']}"):
        for held, status in HELD:
            again = api.session.get(url, headers={"If-None-Match": held.format(etag=image["sha256"])}, timeout=30)
            assert (again.status_code, again.headers["ETag"]) == (status, f'"{image["sha256"]}"'), (url, held)
            assert (again.content == b"") == (status == 304), (url, held)


@pytest.mark.parametrize("label, value, param", [("Split", "val", {"split": "val"}), ("Class", "bus", {"class": "bus"}),
                                                 ("Status", "background", {"status": "background"})])
def test_a_filter_shows_what_the_api_lists_for_it(page, stack, api, sample, label, value, param):
    open_hash(page, stack, f"#/d/{sample}/gallery")
    page.get_by_label(label, exact=True).select_option(value)
    query = "&".join(f"{k}={v}" for k, v in param.items())
    expect(page).to_have_url(f"{stack.env()['API_URL']}/#/d/{sample}/gallery?{query}")
    assert_gallery_matches(page, api.all_pages(f"/datasets/{sample}/images", "images", **param))


@pytest.mark.parametrize("filters", [{}, {"split": "train"}])
def test_sorting_a_gallery_with_at_most_one_filter_orders_every_page_as_the_api_does(page, stack, api, sample,
                                                                                     filters):
    open_hash(page, stack, f"#/d/{sample}/gallery" + "".join(f"?{k}={v}" for k, v in filters.items()))
    page.get_by_label("Sort", exact=True).select_option("boxes")
    query = "&".join(f"{k}={v}" for k, v in {**filters, "sort": "boxes"}.items())
    expect(page).to_have_url(f"{stack.env()['API_URL']}/#/d/{sample}/gallery?{query}")
    expected = [image["id"] for image in api.all_pages(f"/datasets/{sample}/images", "images", sort="boxes",
                                                          **filters)]
    items = page.get_by_test_id("gallery-item")
    expect(items).to_have_count(len(expected), timeout=SHOWN)
    assert items.evaluate_all("els => els.map(e => e.dataset.imageId)") == expected


def test_with_two_filters_the_gallery_sorts_the_page_it_shows_and_says_so(page, stack, api, sample):
    open_hash(page, stack, f"#/d/{sample}/gallery?split=train&has_issues=false")
    page.get_by_label("Sort this page", exact=True).select_option("boxes")
    shown = api.all_pages(f"/datasets/{sample}/images", "images", split="train", has_issues="false")
    items = page.get_by_test_id("gallery-item")
    expect(items).to_have_count(len(shown), timeout=SHOWN)
    drawn = items.evaluate_all("els => els.map(e => e.querySelectorAll('[data-testid=box]').length)")
    assert drawn == sorted(drawn, reverse=True) and len(set(drawn)) > 1


# ---- the box editor ------------------------------------------------------------------------------------------

def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag between two points given as fractions of the image on the editor's stage."""
    box = page.locator(".stage").bounding_box()
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=5)
    page.mouse.up()


def test_drawing_a_box_and_saving_writes_the_label_file_and_the_gallery_follows(page, stack, api, bucket, sample):
    image = api.get(f"/datasets/{sample}/images/labels/train/shapes_0")
    open_hash(page, stack, f"#/d/{sample}/image/labels/train/shapes_0")
    boxes = page.locator(".stage [data-testid=box]")
    expect(boxes).to_have_count(2)
    drag(page, (0.05, 0.6), (0.3, 0.9))
    page.keyboard.press("3")  # the third class: tie
    expect(page.locator('.stage [data-testid=box][data-class="tie"]')).to_have_count(1 + _count(image, "tie"))
    expect(page.get_by_label("Class", exact=True)).to_have_value("2")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    expect(page.locator(".stage[data-loaded=true]")).to_be_visible()
    saved = wait_for(lambda: api.get(f"/datasets/{sample}/images/labels/train/shapes_0"),
                     lambda i: i["label_generation"] != image["label_generation"], 30, "the edit indexed")
    rows = bucket.blob(saved["label_path"]).download_as_text().strip().split("\n")
    assert len(rows) == 3 and rows[-1].startswith("2 ")
    cx, cy, w, h = map(float, rows[-1].split()[1:])
    assert abs(cx - 0.175) < 0.02 and abs(cy - 0.75) < 0.02 and abs(w - 0.25) < 0.02 and abs(h - 0.3) < 0.02
    screenshot(page, "page-editor-saved")
    open_hash(page, stack, f"#/d/{sample}/gallery")
    item = page.locator('[data-testid=gallery-item][data-image-id="labels/train/shapes_0"]')
    expect(item.locator("[data-testid=box]")).to_have_count(3)
    assert classes_drawn(item) == classes_listed(saved)


def _count(image: dict, name: str) -> int:
    return sum(1 for box in image["labels"] if box["class_name"] == name)


def test_a_conflict_shows_the_other_version_instead_of_overwriting_it(page, stack, api, bucket, sample):
    image_id = "labels/train/shapes_1"
    open_hash(page, stack, f"#/d/{sample}/image/{image_id}")
    expect(page.locator(".stage [data-testid=box]")).to_have_count(2)
    page.locator(".stage [data-testid=box]").first.click()
    page.keyboard.press("Delete")
    expect(page.locator(".stage [data-testid=box]")).to_have_count(1)
    page.keyboard.press("n")  # the keyboard alone: a new box, made wider
    added = page.locator(".stage [data-testid=box]").nth(1)
    width = added.get_attribute("width")
    page.keyboard.press("Shift+Alt+ArrowRight")
    expect(added).not_to_have_attribute("width", width)
    assert float(added.get_attribute("width")) == float(width) + 10
    seen = api.get(f"/datasets/{sample}/images/{image_id}")
    theirs = [{"class_id": 1, "cx": 0.5, "cy": 0.5, "w": 0.2, "h": 0.2},
              {"class_id": 0, "cx": 0.2, "cy": 0.2, "w": 0.1, "h": 0.1},
              {"class_id": 2, "cx": 0.8, "cy": 0.8, "w": 0.1, "h": 0.1}]
    response = api.session.put(f"{api.url}/datasets/{sample}/images/{image_id}/labels", json={"labels": theirs},
                               headers={"If-Match": str(seen["label_generation"])}, timeout=30)
    assert response.status_code == 200, response.text
    written = bucket.blob(response.json()["label_path"]).download_as_text()
    page.get_by_role("button", name="Save").click()
    conflict = page.get_by_test_id("conflict")
    expect(conflict).to_be_visible()
    expect(conflict.get_by_test_id("their-box")).to_have_count(3)
    expect(conflict).to_contain_text("The saved version has 3 boxes (1 bus, 1 person, 1 tie); yours has 2 boxes (")
    expect(page.locator(".stage[data-loaded=true]")).to_be_visible()
    screenshot(page, "page-editor-conflict")
    assert bucket.blob(response.json()["label_path"]).download_as_text() == written  # not overwritten
    conflict.get_by_role("button", name="Use the saved version").click()
    expect(page.locator(".stage [data-testid=box]")).to_have_count(3)
    expect(page.locator('.stage [data-testid=box][data-class="bus"]')).to_have_count(1)


def test_a_viewer_sees_no_editing_controls(browser, stack, api, sample):
    email = f"viewer-{uuid.uuid4().hex[:8]}@example.com"
    uid, _ = sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], email, PASSWORD)
    give_role(api, sample, {"uid": uid}, "viewer")
    page = browser.new_page()
    sign_in(page, stack.env()["API_URL"], email, PASSWORD)
    open_hash(page, stack, f"#/d/{sample}/image/labels/val/zidane")
    expect(page.locator(".stage [data-testid=box]")).to_have_count(4)
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    open_hash(page, stack, f"#/d/{sample}/train")
    expect(page.get_by_role("button", name="Start training")).to_have_count(0)
    page.close()


def test_an_import_from_a_url_is_followed_to_its_end_with_its_issues(page, stack, api, person, tmp_path):
    dataset = f"page-import-{uuid.uuid4().hex[:6]}"
    assert api.session.post(f"{api.url}/datasets", json={"id": dataset}, timeout=30).status_code == 201
    give_role(api, dataset, person)
    files = generated_dataset(6, 2, seed=7)
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:
        for name, data in files.items():
            archive.writestr(f"export/{name}", data)
        archive.writestr("export/../../escape.txt", b"x")
    open_hash(page, stack, f"#/d/{dataset}/imports")
    expect(page.get_by_text("No import yet")).to_be_visible(timeout=SHOWN)
    with ArchiveServer(tmp_path) as server:
        page.get_by_label("Archive URL").fill(server.url("export.zip"))
        page.get_by_role("button", name="Import").click()
        row = page.locator("tbody tr").first
        expect(row).to_contain_text("completed", timeout=SHOWN * 3)
    expect(row.get_by_test_id("import-progress")).to_have_text(f"{len(files)} / {len(files)}")
    expect(row).to_contain_text("Ultralytics YOLO")  # the layout recognised
    row.get_by_text("1 issue").click()
    expect(row).to_contain_text("import_unsafe_path")
    screenshot(page, "imports")
    assert [i["status"] for i in api.get("/imports", dataset=dataset)["imports"]] == ["completed"]


def test_an_owner_adds_changes_and_removes_a_member(page, stack, api, person):
    dataset = f"page-members-{uuid.uuid4().hex[:6]}"
    assert api.session.post(f"{api.url}/datasets", json={"id": dataset}, timeout=30).status_code == 201
    give_role(api, dataset, person, "owner")
    friend = f"friend-{uuid.uuid4().hex[:8]}@example.com"
    friend_uid, _ = sign_up(stack.env()["FIREBASE_AUTH_EMULATOR_HOST"], friend, PASSWORD)
    open_hash(page, stack, f"#/d/{dataset}/members")
    page.get_by_label("E-mail").fill(friend)
    page.locator("form select[name=role]").select_option("viewer")
    page.get_by_role("button", name="Add").click()
    expect(page.locator("p[role=status]")).to_have_text(f"{friend} added as viewer.", timeout=SHOWN)
    roles = lambda: {m["email"]: m["role"] for m in api.get(f"/datasets/{dataset}/members")["members"]}  # noqa: E731
    assert roles() == {person["email"]: "owner", friend: "viewer"}
    page.get_by_label(f"Role of {friend}").select_option("editor")
    expect(page.locator("p[role=status]")).to_have_text(f"{friend} is now editor.", timeout=SHOWN)
    assert roles()[friend] == "editor"
    screenshot(page, "members")
    page.get_by_role("button", name=f"Remove {friend}").click()
    expect(page.locator("p[role=status]")).to_have_text(f"{friend} removed.", timeout=SHOWN)
    assert roles() == {person["email"]: "owner"}
    assert friend_uid not in {m["uid"] for m in api.get(f"/datasets/{dataset}/members")["members"]}


def test_a_key_is_shown_once_works_as_the_person_and_stops_when_revoked(page, stack, api, person):
    open_hash(page, stack, "#/keys")
    name = f"laptop-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Make a key").click()
    key = page.get_by_test_id("new-key").inner_text(timeout=SHOWN)
    assert key.startswith("yd_")
    as_key = lambda: requests.get(f"{stack.env()['API_URL']}/datasets",  # noqa: E731
                                  headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code
    assert as_key() == 200
    expect(page.locator("tbody tr", has_text=name)).to_have_count(1)
    screenshot(page, "api-keys")
    page.get_by_role("button", name=f"Revoke {name}").click()
    expect(page.locator("p[role=status]")).to_have_text(f"{name} revoked: it stops working now.", timeout=SHOWN)
    expect(page.get_by_test_id("new-key")).to_have_count(0)
    assert as_key() == 401


# ---- training: the curves grow while the job runs --------------------------------------------------------------

def test_a_training_jobs_curves_gain_a_point_per_epoch_while_it_runs(page, stack, api, bucket, person):
    dataset = f"page-train-{uuid.uuid4().hex[:8]}"
    drop(bucket, dataset, generated_dataset(8, 4, size=(96, 72)))
    stats_when(api, dataset, {"labeled": 12})
    give_role(api, dataset, person)
    epochs = 4
    open_hash(page, stack, f"#/d/{dataset}/train")
    page.get_by_label("Model").fill(TINY["model"])
    for label, value in (("Epochs", epochs), ("Image size", TINY["imgsz"]), ("Batch", TINY["batch"])):
        page.get_by_label(label, exact=False).first.fill(str(value))
    page.get_by_label("More arguments").fill(json.dumps({"workers": TINY["workers"]}))
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_test_id("job-status")).to_be_visible()
    points = page.locator('[data-testid=curve-point][data-series="mAP50"]')
    seen = []

    def observe() -> tuple[str, int]:
        seen.append((page.get_by_test_id("job-status").inner_text(), points.count()))
        return seen[-1]
    wait_for(observe, lambda s: s[0] in ("completed", "failed", "cancelled"), 240, "the job to end", interval=0.1)
    assert seen[-1][0] == "completed", seen
    expect(points).to_have_count(epochs, timeout=SHOWN)
    growing = [count for status, count in seen if status == "running"]
    assert growing == sorted(growing) and any(0 < n < epochs for n in growing), seen
    expect(page.get_by_test_id("job-executions")).to_have_text("1")  # one task held every epoch: no continuation
    screenshot(page, "page-training-job")


# ---- try a model ---------------------------------------------------------------------------------------------

def test_try_it_draws_the_prediction_functions_boxes_with_a_confidence_slider(page, stack, api, person, trained_model,
                                                                              tmp_path):
    give_role(api, trained_model["dataset"], person, "viewer")
    photo = tmp_path / "try.jpg"
    photo.write_bytes(next(data for name, data in generated_dataset(1, 0, size=(96, 72), seed=3).items()
                           if name.startswith("images/")))
    direct = requests.post(f"{stack.env()['PREDICT_URL']}/models/{trained_model['id']}/predict", params={"conf": 0.001},
                           data=photo.read_bytes(), headers={"Authorization": f"Bearer {stack.token}",
                                                             "Content-Type": "image/jpeg"}, timeout=60).json()
    open_hash(page, stack, f"#/model/{trained_model['id']}")
    page.get_by_label("An image").set_input_files(str(photo))
    count = page.get_by_test_id("prediction-count")
    expect(count).to_be_visible(timeout=SHOWN)
    assert direct["predictions"][0]["boxes"], "the tiny model proposes boxes at 0.001 (see test_autolabel)"
    for threshold in (0.25, 0.5, 0.001):
        page.get_by_label("Confidence threshold").fill(str(threshold))
        expected = [b["class_name"] for b in direct["predictions"][0]["boxes"] if b["confidence"] >= threshold]
        expect(page.locator(".try-result [data-testid=box]")).to_have_count(len(expected))
        drawn = page.locator(".try-result [data-testid=box]").evaluate_all("els => els.map(e => e.dataset.class)")
        assert Counter(drawn) == Counter(expected)
    screenshot(page, "page-try-it")


def test_a_models_weights_download_as_the_bucket_holds_them(page, stack, api, bucket, person, trained_model):
    give_role(api, trained_model["dataset"], person, "viewer")
    open_hash(page, stack, f"#/model/{trained_model['id']}")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download best.onnx").click()
    name = trained_model["weights"]["onnx"].split("/", 3)[3]
    assert download.value.suggested_filename == f"{trained_model['id']}-best.onnx"
    assert Path(download.value.path()).read_bytes() == bucket.blob(name).download_as_bytes()


# ---- proposals from auto-labelling ----------------------------------------------------------------------------

def test_accepting_proposals_writes_them_as_the_label(page, stack, api, bucket, person, trained_model):
    dataset = f"page-al-{uuid.uuid4().hex[:8]}"
    files = {name: data for name, data in generated_dataset(3, 0, size=(96, 72), seed=21).items()
             if not name.startswith("labels/")}
    drop(bucket, dataset, files)
    stats_when(api, dataset, {"images": 3, "unlabeled": 3})
    give_role(api, dataset, person)
    job_id = api.session.post(f"{api.url}/datasets/{dataset}/autolabel", timeout=30,
                              json={"model_id": trained_model["id"], "conf": 0.001}).json()["job_id"]
    wait_for(lambda: api.get(f"/autolabel/{job_id}"), lambda j: j["status"] in ("completed", "failed"), 120,
             "auto-labelling")
    chosen = api.get(f"/datasets/{dataset}/images", has_proposals="true")["images"][0]
    open_hash(page, stack, f"#/d/{dataset}/image/{chosen['id']}")
    expect(page.locator(".stage [data-testid=proposal]")).to_have_count(len(chosen["proposals"]))
    expect(page.locator(".stage[data-loaded=true]")).to_be_visible()
    screenshot(page, "page-proposals")
    page.get_by_role("button", name="Accept").click()
    expect(page.get_by_role("status").filter(has_text="Accepted")).to_be_visible()
    shown = wait_for(lambda: api.get(f"/datasets/{dataset}/images/{chosen['id']}"), lambda i: i["label_generation"] > 0,
                     60, "the accepted label indexed")
    assert shown["labels"] and not shown["proposals"]
    page.reload()
    expect(page.locator(".stage [data-testid=box]")).to_have_count(len(shown["labels"]))
    expect(page.locator(".stage [data-testid=proposal]")).to_have_count(0)


# ---- Google sign-in --------------------------------------------------------------------------------------------

GOOGLE_CLIENT = "test-client.apps.googleusercontent.com"


def unsigned_token(claims: dict) -> str:
    """An ID token as the Auth emulator accepts a Google one: unsigned (it verifies nothing)."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def providers_of(stack, page) -> list[str]:
    """The sign-in providers of the account the page is signed in as, from the Auth emulator."""
    token = page.evaluate("JSON.parse(sessionStorage.getItem('yolodrop.session')).token")
    answer = requests.post(f"http://{stack.env()['FIREBASE_AUTH_EMULATOR_HOST']}/identitytoolkit.googleapis.com/v1/"
                           "accounts:lookup", params={"key": "local"}, json={"idToken": token}, timeout=30)
    return [provider["providerId"] for provider in answer.json()["users"][0]["providerUserInfo"]]


def test_signing_in_with_google_through_the_auth_emulator_shows_what_is_shared_with_that_address(
        browser, stack, api, sample):
    email = f"google-{uuid.uuid4().hex[:8]}@example.com"
    page = browser.new_page()
    page.goto(f"{stack.env()['API_URL']}/#/signin")
    page.get_by_role("button", name="Sign in with Google").click()
    page.get_by_label("Google account").fill(email)
    screenshot(page, "page-signin-google-emulated")
    page.get_by_role("button", name="Continue with Google").click()
    expect(page.locator("#who .email")).to_have_text(email, timeout=SHOWN)
    assert "id_token" not in page.url and providers_of(stack, page) == ["google.com"]
    expect(page.get_by_role("link", name=sample)).to_have_count(0)
    api.session.put(f"{api.url}/datasets/{sample}/members/{email}", json={"role": "viewer"},
                    timeout=30).raise_for_status()
    page.reload()
    expect(page.get_by_role("link", name=sample)).to_be_visible(timeout=SHOWN)
    screenshot(page, "page-signed-in-with-google")
    page.close()


def google_stand_in(page, stack, email: str, answer: str = "token") -> dict:
    """Production's configuration for the page, and a stand-in for Google's page (which nothing here can reach)
    that answers as Google does: back to redirect_uri with #state=…&id_token=… (or an error). What it was
    asked is returned."""
    asked = {}

    def production_config(route):
        response = route.fetch()
        config = response.json()
        config["google"] = {"emulator": False, "client_id": GOOGLE_CLIENT,
                            "authorize": "https://accounts.google.com/o/oauth2/v2/auth"}
        route.fulfill(response=response, json=config)

    def google(route):
        query = {name: values[0] for name, values in parse_qs(urlparse(route.request.url).query).items()}
        asked.update(query)
        nonce = query["nonce"] if answer != "other nonce" else "another-sign-in"
        claims = {"iss": "https://accounts.google.com", "aud": GOOGLE_CLIENT, "sub": f"g-{email}", "email": email,
                  "email_verified": True, "nonce": nonce}
        fragment = (urlencode({"state": query["state"], "error": "access_denied"}) if answer == "access_denied"
                    else urlencode({"state": query["state"], "id_token": unsigned_token(claims), "authuser": 0}))
        route.fulfill(status=302, headers={"Location": f"{query['redirect_uri']}#{fragment}"})

    page.route("**/page/config", production_config)
    page.route("https://accounts.google.com/**", google)
    return asked


def test_another_site_cannot_frame_the_page(browser, stack):
    """Clickjacking "make key" or "members" needs the page in a frame: its policy (frame-ancestors 'none')
    makes the browser refuse it."""
    page = browser.new_page()
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "frame-ancestors" in message.text else None)
    page.set_content(f'<iframe src="{stack.env()["API_URL"]}/#/signin"></iframe>')
    wait_for(lambda: refused, bool, 20, "the browser refusing to frame the page")
    framed = page.frames[1]
    assert framed.locator(".brand").count() == 0 and framed.locator("form").count() == 0
    page.close()


def test_signing_in_with_google_goes_to_google_and_back(browser, stack):
    email = f"google-{uuid.uuid4().hex[:8]}@example.com"
    page = browser.new_page()
    asked = google_stand_in(page, stack, email)
    page.goto(f"{stack.env()['API_URL']}/#/signin")
    page.get_by_role("button", name="Sign in with Google").click()
    expect(page.locator("#who .email")).to_have_text(email, timeout=SHOWN)
    assert {name: asked.get(name) for name in ("client_id", "redirect_uri", "response_type", "scope", "prompt")} == {
        "client_id": GOOGLE_CLIENT, "redirect_uri": f"{stack.env()['API_URL']}/", "response_type": "id_token",
        "scope": "openid email profile", "prompt": "select_account"}
    assert len(asked["state"]) == len(asked["nonce"]) == 32 and asked["state"] != asked["nonce"]
    assert "id_token" not in page.url and providers_of(stack, page) == ["google.com"]
    page.close()


@pytest.mark.parametrize("answer, told", [("access_denied", "Google did not sign you in (access_denied)"),
                                          ("other nonce", "That Google token belongs to another sign-in")])
def test_a_google_answer_that_does_not_sign_in_says_why(browser, stack, answer, told):
    page = browser.new_page()
    google_stand_in(page, stack, f"google-{uuid.uuid4().hex[:8]}@example.com", answer)
    page.goto(f"{stack.env()['API_URL']}/#/signin")
    page.get_by_role("button", name="Sign in with Google").click()
    expect(page.get_by_role("alert")).to_contain_text(told, timeout=SHOWN)
    assert page.evaluate("sessionStorage.getItem('yolodrop.session')") is None and "id_token" not in page.url
    page.close()


def test_a_google_token_this_page_did_not_ask_for_is_refused(browser, stack):
    page = browser.new_page()
    token = unsigned_token({"sub": "g-forged", "email": "forged@example.com", "nonce": "n"})
    page.goto(f"{stack.env()['API_URL']}/#state=forged&id_token={token}")
    expect(page.get_by_role("alert")).to_contain_text("was not asked for by this page", timeout=SHOWN)
    assert page.evaluate("sessionStorage.getItem('yolodrop.session')") is None
    screenshot(page, "page-signin-google-refused")
    page.close()


# ---- a phone's photo ---------------------------------------------------------------------------------------------

def test_a_heic_photo_shows_its_file_facts_and_its_thumbnail_where_the_browser_cannot_draw_heic(
        page, stack, bucket, api, person):
    from tests.integration.test_photos import heic_photo
    dataset = f"page-{uuid.uuid4().hex[:8]}"
    drop(bucket, dataset, {"data.yaml": b"names: [x]\n", "images/train/phone.heic": heic_photo(),
                           "labels/train/phone.txt": b"0 0.5 0.5 0.4 0.4\n"})
    stats_when(api, dataset, {"images": 1, "labeled": 1})
    give_role(api, dataset, person, "viewer")
    open_hash(page, stack, f"#/d/{dataset}/image/labels/train/phone")
    facts = page.locator("section.panel", has=page.get_by_role("heading", name="File"))
    expect(facts).to_contain_text("HEIF")
    expect(facts).to_contain_text("2025-07-14 18:30:59")
    expect(facts).to_contain_text("Apple iPhone 15 Pro")
    expect(facts).to_contain_text("present (not kept)")
    expect(page.locator(".stage[data-loaded=true]")).to_be_visible(timeout=SHOWN)
    expect(page.get_by_role("status")).to_contain_text("shown from its 256 px thumbnail")
    expect(page.get_by_test_id("box")).to_have_count(1)
    screenshot(page, "page-image-heic")


# ---- versions and exports --------------------------------------------------------------------------------------

def test_an_editor_exports_a_version_and_the_list_shows_it_done_with_its_zip(page, stack, api, sample):
    open_hash(page, stack, f"#/d/{sample}/versions")
    page.get_by_label("Format").select_option("voc")
    page.get_by_role("button", name="Export").click()
    said = page.get_by_role("status").filter(has_text="Export export-")
    expect(said).to_be_visible(timeout=SHOWN)
    export_id = said.inner_text().split()[1]
    row = page.get_by_role("row", name=export_id)
    expect(row).to_contain_text("completed", timeout=60_000)
    expect(row.get_by_role("button", name="zip")).to_be_visible()
    listed = api.get("/exports", dataset=sample)["exports"]
    assert listed[0]["id"] == export_id and listed[0]["format"] == "voc" and listed[0]["status"] == "completed"
    holds = "; ".join(", ".join([f"{split}: {images:,} image{'' if images == 1 else 's'}",
                                 *(f"{name} {boxes:,}" for name, boxes in listed[0]["boxes_per_class"][split].items()
                                   if boxes)])
                      for split, images in listed[0]["splits"].items())
    assert any(listed[0]["boxes_per_class"][split].values() for split in listed[0]["splits"])
    expect(row.get_by_role("cell").nth(5)).to_have_text(holds)
    screenshot(page, "page-versions-exports")


# ---- every job in one list ---------------------------------------------------------------------------------------

def test_the_jobs_tab_lists_every_kind_of_job_with_the_status_and_progress_the_api_gives(page, stack, api, sample):
    export = api.session.post(f"{api.url}/datasets/{sample}/exports", json={"format": "yolo"}, timeout=30).json()
    wait_for(lambda: api.get(f"/jobs/export/{export['export_id']}"), lambda job: job["status"] == "completed",
             timeout=60, what="the export to complete")
    listed = api.get("/jobs", dataset=sample, limit=50)["items"]
    assert {"export", "version", "revalidate"} <= {job["kind"] for job in listed}
    open_hash(page, stack, f"#/d/{sample}/jobs")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(len(listed), timeout=SHOWN)
    for row, job in zip(rows.all(), listed):
        expect(row).to_contain_text(f"{job['kind']} {job['id']}")
        expect(row.get_by_test_id("job-status")).to_contain_text(job["status"])
    shown = page.get_by_role("row", name=f"export {export['export_id']}").get_by_test_id("job-progress")
    done = listed[[job["id"] for job in listed].index(export["export_id"])]["progress"]
    expect(shown).to_have_text(f"{done['done']:,} / {done['total']:,} {done['unit']}")
    screenshot(page, "page-jobs")
