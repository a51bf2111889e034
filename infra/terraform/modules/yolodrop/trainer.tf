# The trainer: an image repository and the Cloud Run Job with a GPU. The training
# function runs it with overrides (JOB_ID, MANIFEST_URI); each retry resumes from the
# bucket checkpoint (CLOUD_RUN_TASK_ATTEMPT).

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption; customer keys are an organisation's choice this module does not impose
  project       = var.project
  location      = var.trainer_region
  repository_id = local.trainer.image_repository
  format        = "DOCKER"
  depends_on    = [google_project_service.api]
}

resource "google_cloud_run_v2_job" "trainer" {
  project             = var.project
  location            = var.trainer_region
  name                = local.trainer.job
  deletion_protection = false

  template {
    task_count = 1
    template {
      service_account = google_service_account.trainer.email
      max_retries     = local.trainer.max_retries
      timeout         = "${local.trainer.task_timeout_seconds}s"
      # No zonal redundancy: a GPU job then needs far less GPU quota.
      gpu_zonal_redundancy_disabled = true
      node_selector {
        accelerator = var.trainer_gpu_type
      }
      containers {
        image = var.trainer_image
        resources {
          limits = {
            cpu              = local.trainer.cpu
            memory           = local.trainer.memory
            "nvidia.com/gpu" = tostring(local.trainer.gpus)
          }
        }
        dynamic "env" {
          for_each = toset(local.trainer.env)
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
