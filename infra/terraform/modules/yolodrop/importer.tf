# The importer: a Cloud Run Job without a GPU (jobs/importer/Dockerfile, its image in the
# trainer's repository) that unpacks large archives and URLs into the data bucket. The
# imports function runs it with overrides (IMPORT_ID, IMPORT_PHASE and the task count of
# each import); its tasks split the archive by CLOUD_RUN_TASK_INDEX/COUNT, and a retried
# task skips the members it already wrote. It runs in the functions' region, beside the
# bucket it reads and writes.

resource "google_cloud_run_v2_job" "importer" {
  project             = var.project
  location            = var.region
  name                = local.importer.job
  deletion_protection = false

  template {
    # One task unless the imports function says how many (IMPORT_TASKS, per import).
    task_count = 1
    template {
      service_account = google_service_account.importer.email
      max_retries     = local.importer.max_retries
      timeout         = "${local.importer.task_timeout_seconds}s"
      containers {
        image = var.importer_image
        resources {
          limits = {
            cpu    = local.importer.cpu
            memory = local.importer.memory
          }
        }
        dynamic "env" {
          for_each = toset(local.importer.env)
          content {
            name  = env.value
            value = local.env_values[env.value]
          }
        }
      }
    }
  }
  depends_on = [google_project_service.api]
}
