resource "google_secret_manager_secret" "secret" {
  for_each  = local.settings.secrets
  project   = var.project
  secret_id = each.value
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

# Both values are write-only (secret_data_wo): Terraform sends them to Secret Manager and keeps neither in its
# plan nor its state, which hold only the *_version numbers. A version is written when its number changes.
resource "google_secret_manager_secret_version" "api_token" {
  secret                 = google_secret_manager_secret.secret["api_token"].id
  secret_data_wo         = var.api_token
  secret_data_wo_version = var.api_token_version
}

# The key of the API's page tokens: random, its own (a page token must tell nothing of the API token).
ephemeral "random_password" "page_token_secret" {
  length  = 48
  special = false
}

resource "google_secret_manager_secret_version" "page_token_secret" {
  secret                 = google_secret_manager_secret.secret["page_token_secret"].id
  secret_data_wo         = ephemeral.random_password.page_token_secret.result
  secret_data_wo_version = var.page_token_secret_version
}
