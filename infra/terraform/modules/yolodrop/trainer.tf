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

locals {
  trainer_data_mount = "/mnt/data"
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
      execution_environment         = "EXECUTION_ENVIRONMENT_GEN2" # a Cloud Storage volume needs it
      node_selector {
        accelerator = var.trainer_gpu_type
      }
      # The data bucket, read-only: a version's images are read through it, not copied onto the
      # in-memory disk (jobs/trainer/materialize.py; docs/training.md, How the images reach the trainer).
      volumes {
        name = "data"
        gcs {
          bucket    = google_storage_bucket.data.name
          read_only = true
        }
      }
      containers {
        image = var.trainer_image
        volume_mounts {
          name       = "data"
          mount_path = local.trainer_data_mount
        }
        env {
          name  = "TRAINER_DATA_MOUNT"
          value = local.trainer_data_mount
        }
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
