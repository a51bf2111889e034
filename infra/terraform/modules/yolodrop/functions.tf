# Each Cloud Function (2nd gen) from its own folder: functions/<name>/main.py and
# requirements.txt, with common/ beside them (Cloud Functions builds only what the
# source holds), so each installs only what its code imports. A topic-fed function
# is triggered by its push subscription (pubsub.tf), ingest too (the bucket's
# notifications); the API and prediction by HTTP.

locals {
  common_files = fileset("${local.repo}/common", "**/*.py")
}

data "archive_file" "source" {
  for_each    = local.functions
  type        = "zip"
  output_path = "${path.root}/.build/${each.key}.zip"

  source {
    filename = "main.py"
    content  = file("${local.repo}/functions/${each.key}/main.py")
  }
  source {
    filename = "requirements.txt"
    content  = file("${local.repo}/functions/${each.key}/requirements.txt")
  }
  dynamic "source" {
    for_each = local.common_files
    content {
      filename = "common/${source.value}"
      content  = file("${local.repo}/common/${source.value}")
    }
  }
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions
  bucket   = google_storage_bucket.sources.name
  name     = "${each.key}/${data.archive_file.source[each.key].output_md5}.zip"
  source   = data.archive_file.source[each.key].output_path
}

resource "google_cloudfunctions2_function" "function" {
  #checkov:skip=CKV_GCP_124:only the API and prediction allow all ingress (public HTTP, each checks its own token); topic-fed functions are internal-only
  for_each = local.functions
  project  = var.project
  location = var.region
  name     = each.value.name

  build_config {
    runtime     = local.settings.runtime
    entry_point = each.value.entry_point
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    max_instance_request_concurrency = each.value.concurrency
    timeout_seconds                  = each.value.timeout_seconds
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances # what one caller's flood can cost at most
    service_account_email            = google_service_account.function[each.key].email
    # Pub/Sub push from this project is internal traffic; only the HTTP API is public.
    ingress_settings               = each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    environment_variables          = { for name in each.value.env : name => local.env_values[name] }

    dynamic "secret_environment_variables" {
      for_each = each.value.secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project
        secret     = google_secret_manager_secret.secret[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_project_service.api,
    google_secret_manager_secret_iam_member.reads_secret,
  ]
}

# The push subscriptions call their function as the push service account.
resource "google_cloud_run_service_iam_member" "push_invokes" {
  for_each = local.pushed_functions
  project  = var.project
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

# The API and prediction answer anyone at the HTTP level and check the caller's
# bearer token or API key themselves (common/api/access.py).
resource "google_cloud_run_service_iam_member" "public_invokes" {
  #checkov:skip=CKV_GCP_102:the API and prediction are public on purpose and authenticate every request themselves
  for_each = local.public_functions
  project  = var.project
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}
