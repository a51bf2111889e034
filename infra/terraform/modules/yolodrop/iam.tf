# One service account per function, one for the trainer, one for the importer,
# one that push subscriptions call the functions as; each granted what its code does and nothing more, on the one
# resource it does it to wherever IAM allows (tests/unit/test_terraform.py holds the
# list; no basic role, no admin role).

resource "google_service_account" "function" {
  for_each     = local.functions
  project      = var.project
  account_id   = each.value.service_account
  display_name = "yolodrop ${each.key} function"
}

# The ingest function takes back the account the ingest worker had (and the grants keyed "ingest" below).
moved {
  from = google_service_account.ingest
  to   = google_service_account.function["ingest"]
}

resource "google_service_account" "trainer" {
  project      = var.project
  account_id   = local.trainer.service_account
  display_name = "yolodrop trainer job"
}

resource "google_service_account" "importer" {
  project      = var.project
  account_id   = local.importer.service_account
  display_name = "yolodrop importer job"
}

resource "google_service_account" "push" {
  project      = var.project
  account_id   = local.settings.push_service_account
  display_name = "yolodrop Pub/Sub push to the functions"
}

locals {
  # What our event and request code runs as: each function's account, by key.
  runs_as = { for key in keys(local.functions) : key => google_service_account.function[key].email }

  # Firestore IAM is per project (the index, jobs, models and imports live in one database):
  # every function and the importer (its progress documents), by key -> account email.
  firestore_users = merge(local.runs_as, { importer = google_service_account.importer.email })

  # Every account that touches the data bucket, by key: each reads all of it (a dataset's files, model weights,
  # manifests, archives), and writes only under the prefixes settings' object_writes give it (below).
  bucket_users = {
    for key, email in merge(local.runs_as, {
      trainer  = google_service_account.trainer.email
      importer = google_service_account.importer.email
    }) : key => email # the watch too: its reconciliation lists the bucket and reads what it repairs
  }
  # Writes by object-name prefix, one IAM Condition per account (common/domain/layout.py names every path):
  # ingest: files unpacked from a dropped archive, thumbnails; api: label files, data.yaml, upload sessions,
  # cancel markers; train: manifests; dataset_jobs: label files and data.yaml, thumbnails (a reindex); export:
  # the content store, snapshots, export zips; trainer: its job's runs, checkpoints and weights, the base-model
  # cache; importer: an archive's members, a URL's archive staged; watch: thumbnails (the reconciliation).
  # predict, progress and imports only read.
  objects_of = "projects/_/buckets/${google_storage_bucket.data.name}/objects/"
  object_writes = {
    for key, prefixes in local.settings.object_writes : key => join(" || ", [
      for prefix in prefixes : "resource.name.startsWith(\"${local.objects_of}${prefix}\")"
    ])
  }

  # Who publishes to which topic beyond the training request (below): key of local.runs_as -> topic keys.
  topic_publishers = {
    "api/dataset_jobs"           = { function = "api", topic = "dataset_jobs" }           # remaps, auto-labelling
    "api/export_requests"        = { function = "api", topic = "export_requests" }        # versions, exports
    "ingest/dataset_jobs"        = { function = "ingest", topic = "dataset_jobs" }        # revalidation after data.yaml
    "api/import_requests"        = { function = "api", topic = "import_requests" }        # imports from a URL
    "ingest/import_requests"     = { function = "ingest", topic = "import_requests" }     # a dropped archive too large to unpack inline
    "dataset_jobs/dataset_jobs"  = { function = "dataset_jobs", topic = "dataset_jobs" }  # a plan fans out its chunks
    "export/export_requests"     = { function = "export", topic = "export_requests" }     # an export continues in a new call
    "progress/training_requests" = { function = "progress", topic = "training_requests" } # a training's next execution
    "watch/training_requests"    = { function = "watch", topic = "training_requests" }    # ... asked again when lost
    "watch/dataset_jobs"         = { function = "watch", topic = "dataset_jobs" }         # a stalled job's messages again
    "watch/import_requests"      = { function = "watch", topic = "import_requests" }      # a lost import request again
    "watch/export_requests"      = { function = "watch", topic = "export_requests" }      # a lost export request again
  }

  secret_readers = merge([
    for key, function in local.functions : {
      for env, secret in function.secret_env : "${key}/${env}" => { function = key, secret = secret }
    }
  ]...)
}

resource "google_project_iam_member" "firestore_user" {
  for_each = local.firestore_users
  project  = var.project
  role     = "roles/datastore.user"
  member   = "serviceAccount:${each.value}"
}

resource "google_storage_bucket_iam_member" "reads_objects" {
  for_each = local.bucket_users
  bucket   = google_storage_bucket.data.name
  role     = "roles/storage.objectViewer"
  member   = "serviceAccount:${each.value}"
}

resource "google_storage_bucket_iam_member" "writes_objects" {
  for_each = local.object_writes
  bucket   = google_storage_bucket.data.name
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${local.bucket_users[each.key]}"
  condition {
    title       = "${each.key} writes its prefixes"
    description = "infra/settings.json object_writes.${each.key}"
    expression  = each.value
  }
}

resource "google_pubsub_topic_iam_member" "api_publishes_training_requests" {
  project = var.project
  topic   = google_pubsub_topic.topic["training_requests"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.function["api"].email}"
}

resource "google_pubsub_topic_iam_member" "function_publishes" {
  for_each = local.topic_publishers
  project  = var.project
  topic    = google_pubsub_topic.topic[each.value.topic].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${local.runs_as[each.value.function]}"
}

resource "google_pubsub_topic_iam_member" "trainer_publishes_progress" {
  project = var.project
  topic   = google_pubsub_topic.topic["training_progress"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.trainer.email}"
}

# The stage phase (a URL copied into the bucket first) asks for the unpacking phase.
resource "google_pubsub_topic_iam_member" "importer_publishes_import_requests" {
  project = var.project
  topic   = google_pubsub_topic.topic["import_requests"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.importer.email}"
}

resource "google_secret_manager_secret_iam_member" "reads_secret" {
  for_each  = local.secret_readers
  project   = var.project
  secret_id = google_secret_manager_secret.secret[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

# The training function runs the trainer job with overrides (JOB_ID, MANIFEST_URI),
# which then runs as the trainer's service account.
resource "google_cloud_run_v2_job_iam_member" "train_runs_trainer" {
  project  = var.project
  location = var.trainer_region
  name     = google_cloud_run_v2_job.trainer.name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = "serviceAccount:${google_service_account.function["train"].email}"
}

resource "google_service_account_iam_member" "train_acts_as_trainer" {
  service_account_id = google_service_account.trainer.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.function["train"].email}"
}

# The watch reads the trainer job's executions.
resource "google_cloud_run_v2_job_iam_member" "watch_reads_executions" {
  project  = var.project
  location = var.trainer_region
  name     = google_cloud_run_v2_job.trainer.name
  role     = "roles/run.viewer"
  member   = "serviceAccount:${google_service_account.function["watch"].email}"
}

# The imports function runs the importer job with overrides (IMPORT_ID, IMPORT_PHASE, the
# task count), which then runs as the importer's service account, and reads its executions.
resource "google_cloud_run_v2_job_iam_member" "imports_runs_importer" {
  project  = var.project
  location = google_cloud_run_v2_job.importer.location
  name     = google_cloud_run_v2_job.importer.name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = "serviceAccount:${google_service_account.function["imports"].email}"
}

resource "google_cloud_run_v2_job_iam_member" "imports_reads_importer_executions" {
  project  = var.project
  location = google_cloud_run_v2_job.importer.location
  name     = google_cloud_run_v2_job.importer.name
  role     = "roles/run.viewer"
  member   = "serviceAccount:${google_service_account.function["imports"].email}"
}

# The API hands out download URLs (an export's zip, a model's weights) signed as itself through IAM's signBlob:
# it holds no key (common/cloud/storage.py download_url).
resource "google_service_account_iam_member" "api_signs_download_urls" {
  service_account_id = google_service_account.function["api"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.function["api"].email}"
}

resource "google_service_account_iam_member" "imports_acts_as_importer" {
  service_account_id = google_service_account.importer.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.function["imports"].email}"
}

# Trainings on several GPUs (settings trainer.vertex, only where it allows a GPU type): the training
# function creates and finds Vertex AI custom jobs, which run as the trainer's account
# (train_acts_as_trainer above), and the watch reads them. Vertex AI has no IAM finer than the project.
resource "google_project_iam_member" "train_runs_vertex_jobs" {
  count   = local.vertex_enabled ? 1 : 0
  project = var.project
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.function["train"].email}"
}

resource "google_project_iam_member" "watch_reads_vertex_jobs" {
  count   = local.vertex_enabled ? 1 : 0
  project = var.project
  role    = "roles/aiplatform.viewer"
  member  = "serviceAccount:${google_service_account.function["watch"].email}"
}
