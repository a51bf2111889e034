# The ingest worker: functions/ingest/main.py as a Cloud Run service (its image from
# functions/ingest/Dockerfile, in the trainer's repository) that pulls the storage
# notifications from its own pull subscription in batches, indexes each batch in one
# Firestore transaction, acknowledges what is done and nacks transient failures, which
# Pub/Sub redelivers with the settings' backoff and dead-letters after the settings'
# attempts. Nothing pushes to it: it answers HTTP only with its status (the health
# check), so it is internal and nobody is granted to invoke it.

resource "google_pubsub_subscription" "ingest" {
  project = var.project
  name    = local.ingest_worker.subscription
  topic   = google_pubsub_topic.topic[local.ingest_worker.topic].id
  # The worker leases a batch for this long and renews the lease while it runs
  # (common/platform/worker.py LEASE_SECONDS, Pub/Sub's maximum).
  ack_deadline_seconds = local.ingest_worker.ack_deadline_seconds

  retry_policy {
    minimum_backoff = local.delivery.minimum_backoff
    maximum_backoff = local.delivery.maximum_backoff
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[local.ingest_worker.topic].id
    max_delivery_attempts = local.delivery.max_delivery_attempts
  }
  expiration_policy {
    ttl = ""
  }
  depends_on = [google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters]
}

# Pull, acknowledge and extend leases (modifyAckDeadline) on its own subscription only.
resource "google_pubsub_subscription_iam_member" "ingest_pulls" {
  project      = var.project
  subscription = google_pubsub_subscription.ingest.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.ingest.email}"
}

resource "google_cloud_run_v2_service" "ingest" {
  project             = var.project
  location            = var.region
  name                = local.ingest_worker.service
  deletion_protection = false
  # No request reaches it but the health check: internal only, and no invoker is granted.
  ingress = "INGRESS_TRAFFIC_INTERNAL_ONLY"

  template {
    service_account = google_service_account.ingest.email
    scaling {
      # At least one: a pull worker scaled to zero pulls nothing, and no request
      # would wake it (the lifecycle precondition below refuses fewer).
      min_instance_count = local.ingest_worker.min_instances
      max_instance_count = local.ingest_worker.max_instances
    }
    containers {
      image = var.ingest_image
      resources {
        limits = {
          cpu    = local.ingest_worker.cpu
          memory = local.ingest_worker.memory
        }
        # CPU always allocated: the worker works between requests, not in them.
        cpu_idle = false
      }
      dynamic "env" {
        for_each = toset(local.ingest_worker.env)
        content {
          name  = env.value
          value = local.env_values[env.value]
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = local.ingest_worker.min_instances >= 1
      error_message = "ingest_worker.min_instances must be at least 1: with none, nothing pulls the storage notifications."
    }
  }
  depends_on = [
    google_project_service.api,
    google_pubsub_subscription_iam_member.ingest_pulls,
  ]
}
