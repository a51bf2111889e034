resource "google_secret_manager_secret" "secret" {
  for_each  = local.settings.secrets
  project   = var.project
  secret_id = each.value
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_version" "api_token" {
  secret      = google_secret_manager_secret.secret["api_token"].id
  secret_data = var.api_token
}
