# One service account per function, one for the trainer, one that push subscriptions
# call the functions as; each granted what its code does and nothing more, on the one
# resource it does it to wherever IAM allows (tests/unit/test_terraform.py holds the
# list; no basic role, no admin role).

resource "google_service_account" "function" {
  for_each     = local.functions
  project      = var.project
  account_id   = each.value.service_account
  display_name = "yolodrop ${each.key} function"
}

resource "google_service_account" "trainer" {
  project      = var.project
  account_id   = local.trainer.service_account
  display_name = "yolodrop trainer job"
}

resource "google_service_account" "push" {
  project      = var.project
  account_id   = local.settings.push_service_account
  display_name = "yolodrop Pub/Sub push to the functions"
}

locals {
  # Firestore IAM is per project (the index, jobs and models live in one database).
  firestore_users = keys(local.functions)

  bucket_roles = {
    ingest       = "roles/storage.objectUser"   # reads dropped files, writes thumbnails, unpacks archives
    api          = "roles/storage.objectUser"   # writes cancel markers and upload sessions, reads objects
    predict      = "roles/storage.objectViewer" # reads model weights
    train        = "roles/storage.objectUser"   # reads the dataset, writes the manifest, checks base weights
    progress     = "roles/storage.objectViewer" # reads the exported model it registers
    dataset_jobs = "roles/storage.objectUser"   # rewrites label files and data.yaml, reads images and model weights
    export       = "roles/storage.objectUser"   # copies into the content store, writes snapshots and export zips
  }

  # Who publishes to which topic beyond the training request (below): function -> topic keys.
  topic_publishers = {
    "api/dataset_jobs"          = { function = "api", topic = "dataset_jobs" }          # remaps, auto-labelling
    "api/export_requests"       = { function = "api", topic = "export_requests" }       # versions, exports
    "ingest/dataset_jobs"       = { function = "ingest", topic = "dataset_jobs" }       # revalidation after data.yaml
    "dataset_jobs/dataset_jobs" = { function = "dataset_jobs", topic = "dataset_jobs" } # a plan fans out its chunks
  }

  secret_readers = merge([
    for key, function in local.functions : {
      for env, secret in function.secret_env : "${key}/${env}" => { function = key, secret = secret }
    }
  ]...)
}

resource "google_project_iam_member" "firestore_user" {
  for_each = toset(local.firestore_users)
  project  = var.project
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.function[each.value].email}"
}

resource "google_storage_bucket_iam_member" "function_objects" {
  for_each = local.bucket_roles
  bucket   = google_storage_bucket.data.name
  role     = each.value
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_storage_bucket_iam_member" "trainer_objects" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectUser" # run markers, checkpoints, weights; reads the manifest's images
  member = "serviceAccount:${google_service_account.trainer.email}"
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
  member   = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

resource "google_pubsub_topic_iam_member" "trainer_publishes_progress" {
  project = var.project
  topic   = google_pubsub_topic.topic["training_progress"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.trainer.email}"
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
