# The watch on trainer executions (common/services/watch_training.py): Cloud Scheduler
# publishes a tick to the watch topic; the watch function (pushed like the others)
# sweeps the queued and running jobs and fails those whose execution ended without a
# final event. A schedule, not an Eventarc trigger: Cloud Run announces no event when
# a job execution ends (its audit logs record the RunJob call, not the end), and a
# sweep also catches an end that happened while the watch itself was failing.

resource "google_cloud_scheduler_job" "watch" {
  project   = var.project
  region    = var.region
  name      = local.settings.watch.scheduler_job
  schedule  = local.settings.watch.schedule
  time_zone = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.topic["training_watch"].id
    data       = base64encode(jsonencode({ sweep = true }))
  }
  depends_on = [google_project_service.api]
}

# The reconciliation (common/services/reconcile.py): the bucket's listing compared with the index and the
# difference repaired, on its own schedule, by the same watch function.
resource "google_cloud_scheduler_job" "reconcile" {
  project   = var.project
  region    = var.region
  name      = local.settings.watch.reconcile_scheduler_job
  schedule  = local.settings.watch.reconcile_schedule
  time_zone = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.topic["training_watch"].id
    data       = base64encode(jsonencode({ sweep = true, reconcile = true }))
  }
  depends_on = [google_project_service.api]
}
