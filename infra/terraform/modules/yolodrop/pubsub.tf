# Topics, their dead-letter topics (with a subscription that holds dead letters a week),
# and the push subscription of each topic-fed function: the subscription is ours, so
# its dead-letter and retry policies are declared here (an Eventarc trigger would own
# its subscription instead). Ingest's is one of them. The names are the local stack's
# (infra/local/stack.py).

resource "google_pubsub_topic" "topic" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; customer keys are an organisation's choice this module does not impose
  for_each   = local.topics
  project    = var.project
  name       = each.value
  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; customer keys are an organisation's choice this module does not impose
  for_each = local.topics
  project  = var.project
  name     = "${each.value}${local.delivery.dead_letter_suffix}"
}

# Dead letters on a topic without a subscription would be lost: keep them to look at
# and replay (docs/operations.md, "Retries, dead letters and replay").
resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each                   = local.topics
  project                    = var.project
  name                       = "${google_pubsub_topic.dead_letter[each.key].name}${local.delivery.hold_suffix}"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = local.delivery.hold_retention
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "push" {
  for_each             = local.pushed_functions
  project              = var.project
  name                 = each.value.subscription
  topic                = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds = min(600, each.value.timeout_seconds)

  push_config {
    push_endpoint = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    }
  }
  retry_policy {
    minimum_backoff = local.delivery.minimum_backoff
    maximum_backoff = local.delivery.maximum_backoff
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.topic].id
    max_delivery_attempts = local.delivery.max_delivery_attempts
  }
  expiration_policy {
    ttl = ""
  }
  depends_on = [
    google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
    google_service_account_iam_member.pubsub_agent_signs_push_tokens,
  ]
}

# Pub/Sub's service agent forwards dead letters: it publishes to the dead-letter topic
# and acknowledges on the source subscription (each push subscription). It also mints
# the push OIDC tokens.
locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Every subscription with a dead-letter policy, by function key.
  dead_lettering_subscriptions = merge(
    { for key in keys(local.pushed_functions) : key => google_pubsub_subscription.push[key].name },
  )
}

data "google_project" "project" {
  project_id = var.project
}

resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  for_each = local.topics
  project  = var.project
  topic    = google_pubsub_topic.dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acknowledges_dead_letters" {
  for_each     = local.dead_lettering_subscriptions
  project      = var.project
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_service_account_iam_member" "pubsub_agent_signs_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
