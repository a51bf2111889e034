"""Pretrained starting points through the base-model cache (nothing here can download weights)."""
from __future__ import annotations

from common.cloud import storage
from common.domain import layout
from tests.integration.trained import train, trained_model  # noqa: F401 - a fixture


def test_official_weights_come_from_the_base_model_cache(api, trained_model):
    cache = storage.bucket().blob(layout.base_model("yolov8n.pt"))
    cache.rewrite(storage.blob_at(trained_model["weights"]["pt"]))  # any detector's .pt stands in for Ultralytics'
    job = train(api, trained_model["dataset"], model="yolov8n.pt", epochs=1)
    assert job["status"] == "completed", job
    assert api.get(f"/models/{job['model_id']}")["base_model"] == "yolov8n.pt"


def test_weights_missing_from_the_cache_fail_the_job_saying_where_to_put_them(api, trained_model):
    job = train(api, trained_model["dataset"], model="yolo11n.pt", epochs=1)
    assert job["status"] == "failed"
    where = f"gs://{storage.bucket().name}/{layout.base_model('yolo11n.pt')}"
    assert "not in the base-model cache" in job["error"] and where in job["error"], job["error"]


def test_names_that_are_not_ultralytics_weights_are_refused(api, trained_model):
    job = train(api, trained_model["dataset"], model="mymodel.pt")
    assert job["status"] == "failed" and "not an Ultralytics detector's weights" in job["error"], job
