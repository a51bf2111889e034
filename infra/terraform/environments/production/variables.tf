variable "project" {
  type = string
}

variable "region" {
  type = string
}

variable "bucket" {
  type = string
}

variable "bucket_location" {
  type    = string
  default = null
}

variable "firestore_location" {
  type    = string
  default = null
}

variable "trainer_region" {
  type = string
}

variable "trainer_gpu_type" {
  type    = string
  default = "nvidia-l4"
}

variable "trainer_vertex_region" {
  description = "Where trainings on several GPUs run as Vertex AI custom jobs (infra/settings.json trainer.vertex); unset: trainer_region."
  type        = string
  default     = null
}

variable "trainer_image" {
  type = string
}

variable "importer_image" {
  type = string
}

variable "api_token" {
  description = "TF_VAR_api_token, on every plan and apply: ephemeral, in neither plan nor state; written when api_token_version changes."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "api_token_version" {
  type    = number
  default = 1
}

variable "page_token_secret_version" {
  type    = number
  default = 1
}

variable "firebase_web_api_key" {
  description = "The Firebase web API key the page signs people in with."
  type        = string
  default     = ""
}

variable "google_oauth_client_id" {
  description = "The OAuth web client for the page's Google sign-in; empty: e-mail sign-in only."
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

# ---- operations: what an operator is told, backups, derived data's lifetime (docs/operations.md) ----

variable "notification_channels" {
  description = "Notification channels every alert goes to (projects/<p>/notificationChannels/<id>); with deploy.sh: TF_VAR_notification_channels='[\"...\"]'. Empty: incidents in the console only."
  type        = list(string)
  default     = []
}

variable "max_message_age_seconds" {
  type    = number
  default = 900
}

variable "http_5xx_ratio" {
  type    = number
  default = 0.05
}

variable "firestore_backup_retention_days" {
  type    = number
  default = 7
}

variable "export_retention_days" {
  type    = number
  default = 30
}
