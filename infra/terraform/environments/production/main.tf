# yolodrop in one project. See docs/operations.md ("Deploying"):
#
#   terraform init -backend-config="bucket=<a private state bucket>"
#   terraform apply -var-file=production.tfvars
terraform {
  required_version = ">= 1.11"
  backend "gcs" {
    prefix = "yolodrop/production"
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

module "yolodrop" {
  source             = "../../modules/yolodrop"
  project            = var.project
  region             = var.region
  bucket             = var.bucket
  bucket_location    = var.bucket_location
  firestore_location = var.firestore_location
  trainer_region     = var.trainer_region
  trainer_gpu_type   = var.trainer_gpu_type
  trainer_image      = var.trainer_image
  importer_image     = var.importer_image
  api_token          = var.api_token

  api_token_version         = var.api_token_version
  page_token_secret_version = var.page_token_secret_version

  firebase_web_api_key   = var.firebase_web_api_key
  google_oauth_client_id = var.google_oauth_client_id

  join_policy    = var.join_policy
  join_allowlist = var.join_allowlist

  notification_channels           = var.notification_channels
  max_message_age_seconds         = var.max_message_age_seconds
  http_5xx_ratio                  = var.http_5xx_ratio
  firestore_backup_retention_days = var.firestore_backup_retention_days
  export_retention_days           = var.export_retention_days

  trainer_vertex_region = var.trainer_vertex_region
}
