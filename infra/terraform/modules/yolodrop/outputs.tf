output "api_url" {
  description = "The API (Authorization: Bearer <api_token>)."
  value       = google_cloudfunctions2_function.function["api"].service_config[0].uri
}

output "function_urls" {
  value = { for key, function in google_cloudfunctions2_function.function : key => function.service_config[0].uri }
}

output "data_bucket" {
  value = google_storage_bucket.data.name
}

output "trainer_job" {
  value = google_cloud_run_v2_job.trainer.id
}

output "importer_job" {
  value = google_cloud_run_v2_job.importer.id
}

output "ingest_subscription" {
  description = "The push subscription that delivers the storage notifications to the ingest function."
  value       = google_pubsub_subscription.push["ingest"].name
}

output "image_repository" {
  description = "Where the images go: <this>/trainer:<tag> and <this>/importer:<tag>."
  value       = "${var.trainer_region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}

output "dead_letter_subscriptions" {
  description = "Where dead letters wait, per topic (pull them to look, publish them again to replay)."
  value       = { for key, subscription in google_pubsub_subscription.dead_letter_hold : key => subscription.name }
}
