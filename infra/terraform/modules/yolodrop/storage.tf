# The data bucket, its object notifications to the gcs-events topic, and the bucket
# of function sources.

resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:usage logs of the bucket are not kept; Cloud Audit Logs (data access) are the place to turn them on
  name                        = var.bucket
  project                     = var.project
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Training manifests pin object generations: with versioning an image overwritten
  # after a request still trains; old generations go after a while.
  versioning {
    enabled = true
  }
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = local.settings.noncurrent_version_days
    }
    action {
      type = "Delete"
    }
  }
  # Export archives are derived data anyone may ask for again (the same version gives the same archive):
  # deleted export_retention_days after they were written (then kept as noncurrent like any object, above).
  # Versions, their content objects and trained models are kept for ever (docs/operations.md, Derived data).
  lifecycle_rule {
    condition {
      age            = var.export_retention_days
      matches_prefix = [local.exports_prefix]
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_project_service.api]
}

locals {
  # Where export archives are written (common/domain/layout.py export_archive; tests/unit/test_operations_terraform.py).
  exports_prefix = "derived/exports/"
}

# Cloud Storage publishes notifications as its project service agent: it must be
# allowed to publish to the topic before a notification can be created.
data "google_storage_project_service_account" "storage_agent" {
  project    = var.project
  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic_iam_member" "storage_agent_publishes_object_events" {
  project = var.project
  topic   = google_pubsub_topic.topic["gcs_events"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.storage_agent.email_address}"
}

# One notification per prefix ingest acts on (a notification takes one prefix);
# derived/ (thumbnails, manifests, weights) has none, so nothing the system writes
# triggers it again.
resource "google_storage_notification" "object_events" {
  for_each           = toset(local.settings.notification_prefixes)
  bucket             = google_storage_bucket.data.name
  topic              = google_pubsub_topic.topic["gcs_events"].id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE", "OBJECT_DELETE"]
  object_name_prefix = each.value
  depends_on         = [google_pubsub_topic_iam_member.storage_agent_publishes_object_events]
}

# Function sources: one zip per function (its folder plus common/), named by content.
resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:usage logs of the bucket are not kept; Cloud Audit Logs (data access) are the place to turn them on
  name                        = "${var.project}${local.settings.source_bucket_suffix}"
  project                     = var.project
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  versioning {
    enabled = true
  }
  depends_on = [google_project_service.api]
}
