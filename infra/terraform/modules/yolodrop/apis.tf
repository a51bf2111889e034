resource "google_project_service" "api" {
  for_each           = toset(local.settings.apis)
  project            = var.project
  service            = each.value
  disable_on_destroy = false
}
