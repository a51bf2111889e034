variable "project" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the scheduler and the function sources."
  type        = string
}

variable "bucket" {
  description = "The data bucket people drop files into (created here)."
  type        = string
}

variable "bucket_location" {
  description = "Location of the data bucket; null: the region. Notifications are per bucket, so any location works; the region keeps reads local to the functions."
  type        = string
  default     = null
}

variable "firestore_location" {
  description = "Location of the (default) Firestore database; null: the region."
  type        = string
  default     = null
}

variable "trainer_region" {
  description = "A region with Cloud Run GPUs for the trainer job (and its image repository)."
  type        = string
}

variable "trainer_gpu_type" {
  description = "The trainer's GPU (Cloud Run accelerator), e.g. nvidia-l4."
  type        = string
  default     = "nvidia-l4"
}

variable "trainer_vertex_region" {
  description = "Where trainings on several GPUs run as Vertex AI custom jobs (a region with the GPU types settings allow); unset: trainer_region."
  type        = string
  default     = null
}

variable "trainer_image" {
  description = "The trainer image (jobs/trainer/Dockerfile, built by infra/cloudbuild.trainer.yaml) in the trainer region's Artifact Registry repository."
  type        = string
}

variable "importer_image" {
  description = "The importer image (jobs/importer/Dockerfile, built from the repository root) in the same Artifact Registry repository as the trainer's."
  type        = string
}

variable "api_token" {
  description = "The bearer token the API accepts (e.g. `openssl rand -base64 32`), written to its Secret Manager secret as a write-only value: it is in neither the plan nor the state. Ephemeral: given on every plan and apply (TF_VAR_api_token), sent only when api_token_version changes."
  type        = string
  sensitive   = true
  ephemeral   = true
  validation {
    condition     = length(var.api_token) >= 32 && length(distinct(split("", var.api_token))) >= 12
    error_message = "api_token must be a random secret of at least 32 characters, 12 of them different (the API refuses a weaker one): use `openssl rand -base64 32`."
  }
}

variable "api_token_version" {
  description = "Raise it (1, 2, ...) together with a new api_token to write that token as the secret's new version; unchanged, Terraform sends no token."
  type        = number
  default     = 1
}

variable "page_token_secret_version" {
  description = "Raise it to have Terraform write a new random page-token secret (page tokens of the old one then answer 400: lists start again from their first page)."
  type        = number
  default     = 1
}

variable "firebase_web_api_key" {
  description = "The Firebase web API key the page signs people in with (public by design; the project's Web app config)."
  type        = string
  default     = ""
}

variable "google_oauth_client_id" {
  description = "The OAuth web client the page signs people in to Google with (its authorized redirect URIs list the API's URL with a trailing slash; the Firebase Google provider accepts it). Empty: e-mail sign-in only."
  type        = string
  default     = ""
}

variable "join_policy" {
  description = "Who may use the API besides the administrator, a verified e-mail always required: open, allowlist or invitation (docs/security.md)."
  type        = string
  default     = "open"
  validation {
    condition     = contains(["open", "allowlist", "invitation"], var.join_policy)
    error_message = "join_policy is open, allowlist or invitation."
  }
}

variable "join_allowlist" {
  description = "For join_policy allowlist: addresses (ann@example.com) and domains (example.com) admitted."
  type        = list(string)
  default     = []
}

# ---- operations (monitoring.tf, firestore.tf, storage.tf; docs/operations.md) ----

variable "notification_channels" {
  description = "Cloud Monitoring notification channels every alert goes to (projects/<p>/notificationChannels/<id>: e-mail, Slack, PagerDuty ... made in the console or with gcloud). Empty: the alerts open incidents in the console only."
  type        = list(string)
  default     = []
}

variable "max_message_age_seconds" {
  description = "Alert when a subscription's oldest unacknowledged message is older than this: its function keeps failing or falls behind."
  type        = number
  default     = 900
  validation {
    condition     = var.max_message_age_seconds >= 60
    error_message = "max_message_age_seconds is at least 60: a message may wait a retry backoff of up to 600 s."
  }
}

variable "http_5xx_ratio" {
  description = "Alert when more than this share of the API's or prediction's answers are 5xx over 5 minutes."
  type        = number
  default     = 0.05
  validation {
    condition     = var.http_5xx_ratio > 0 && var.http_5xx_ratio < 1
    error_message = "http_5xx_ratio is a share between 0 and 1, e.g. 0.05."
  }
}

variable "firestore_backup_retention_days" {
  description = "How long each daily Firestore backup is kept (a daily schedule keeps at most 7 days)."
  type        = number
  default     = 7
  validation {
    condition     = var.firestore_backup_retention_days >= 1 && var.firestore_backup_retention_days <= 7
    error_message = "firestore_backup_retention_days is 1 to 7 (Firestore keeps a daily backup at most 7 days)."
  }
}

variable "export_retention_days" {
  description = "Export archives (derived/exports/) are deleted this many days after they were written; asking for the export again rebuilds it."
  type        = number
  default     = 30
  validation {
    condition     = var.export_retention_days >= 1
    error_message = "export_retention_days is at least 1."
  }
}
