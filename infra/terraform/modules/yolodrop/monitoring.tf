# What an operator is told, and what they look at (docs/operations.md, "Alerts and the dashboard"):
# dead letters waiting, a subscription whose oldest message is old, 5xx answers of the public functions,
# failed and stalled jobs and the reconciliation's repairs. The subscriptions and functions come from the
# settings through the resources pubsub.tf and functions.tf declare; the jobs and repairs from log-based
# metrics on our structured log lines (common/platform/log.py job_event, common/services/reconcile.py).

locals {
  hold_subscriptions     = [for key in sort(keys(local.topics)) : google_pubsub_subscription.dead_letter_hold[key].name]
  lettered_subscriptions = [for key in sort(keys(local.dead_lettering_subscriptions)) : local.dead_lettering_subscriptions[key]]

  # Monitoring filters naming the subscriptions: one_of("a", "b", ...).
  hold_filter     = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = one_of(${join(", ", [for name in local.hold_subscriptions : "\"${name}\""])})"
  lettered_filter = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = one_of(${join(", ", [for name in local.lettered_subscriptions : "\"${name}\""])})"

  # Each public HTTP function (the API, prediction) is a Cloud Run service of its name.
  http_services = { for key, function in local.public_functions : key => google_cloudfunctions2_function.function[key].name }

  # The log lines the log-based metrics count: fields, not messages, so that wording may change.
  job_lines = {
    jobs_failed  = { event = "failed", description = "Jobs that failed (training, import, export, version, dataset job), by kind." }
    jobs_stalled = { event = "stalled", description = "Jobs the watch found quiet for JOB_STALL_SECONDS (their message sent again, or failed), by kind." }
  }
  repair_counts = toset(["added", "updated", "removed"])
  repair_filter = "jsonPayload.message = \"reconciliation repaired\""
}

resource "google_logging_metric" "jobs" {
  for_each = local.job_lines
  project  = var.project
  name     = "yolodrop/${each.key}"
  filter   = "jsonPayload.job_event = \"${each.value.event}\""
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "yolodrop ${replace(each.key, "_", " ")}"
    labels {
      key         = "job_kind"
      value_type  = "STRING"
      description = "training, import, export, version or dataset job"
    }
  }
  label_extractors = {
    job_kind = "EXTRACT(jsonPayload.job_kind)"
  }
  description = each.value.description
  depends_on  = [google_project_service.api]
}

# One line per dataset a reconciliation run repaired: counted, and each of its counts as a distribution.
resource "google_logging_metric" "reconciliation_repairs" {
  project = var.project
  name    = "yolodrop/reconciliation_repairs"
  filter  = local.repair_filter
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "yolodrop datasets repaired by the reconciliation"
  }
  description = "Datasets whose index the scheduled reconciliation found different from the bucket and repaired."
  depends_on  = [google_project_service.api]
}

resource "google_logging_metric" "reconciliation_repaired_objects" {
  for_each        = local.repair_counts
  project         = var.project
  name            = "yolodrop/reconciliation_${each.value}"
  filter          = "${local.repair_filter} AND jsonPayload.${each.value} > 0"
  value_extractor = "EXTRACT(jsonPayload.${each.value})"
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "1"
    display_name = "yolodrop objects the reconciliation ${each.value}"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 16
      growth_factor      = 4
      scale              = 1
    }
  }
  description = "Objects of one dataset the reconciliation ${each.value} in one run (the index lacked, held stale or held gone ones)."
  depends_on  = [google_project_service.api]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project
  display_name          = "yolodrop: dead letters waiting"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "messages in a dead-letter hold subscription"
    condition_threshold {
      filter          = "${local.hold_filter} AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
  documentation {
    mime_type = "text/markdown"
    content   = "A message failed ${local.delivery.max_delivery_attempts} deliveries and waits in $${resource.label.subscription_id}: look, fix the cause, replay (docs/operations.md, Retries, dead letters and replay)."
  }
  depends_on = [google_project_service.api]
}

resource "google_monitoring_alert_policy" "oldest_message" {
  project               = var.project
  display_name          = "yolodrop: a subscription falls behind"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "oldest unacknowledged message older than ${var.max_message_age_seconds} s"
    condition_threshold {
      filter          = "${local.lettered_filter} AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.max_message_age_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
  documentation {
    mime_type = "text/markdown"
    content   = "$${resource.label.subscription_id} holds a message older than ${var.max_message_age_seconds} s: its function fails, is throttled or is not deployed (docs/operations.md, Alerts and the dashboard)."
  }
  depends_on = [google_project_service.api]
}

resource "google_monitoring_alert_policy" "http_errors" {
  for_each              = local.http_services
  project               = var.project
  display_name          = "yolodrop: ${each.value} answers 5xx"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "5xx over ${var.http_5xx_ratio * 100}% of ${each.value}'s answers"
    condition_threshold {
      filter             = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${each.value}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\""
      denominator_filter = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${each.value}\" AND metric.type = \"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.http_5xx_ratio
      duration           = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    mime_type = "text/markdown"
    content   = "${each.value} answers 5xx: each answer's request_id is in its ERROR log line with the stack trace, and Error Reporting groups them (docs/operations.md, Logs)."
  }
  depends_on = [google_project_service.api]
}

resource "google_monitoring_alert_policy" "jobs" {
  for_each              = local.job_lines
  project               = var.project
  display_name          = "yolodrop: ${replace(each.key, "_", " ")}"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = each.value.description
    condition_threshold {
      filter          = "resource.type = one_of(\"cloud_run_revision\", \"cloud_run_job\") AND ${local.user_metric}/${google_logging_metric.jobs[each.key].name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.job_kind"]
      }
    }
  }
  documentation {
    mime_type = "text/markdown"
    content   = "A $${metric.label.job_kind} job ${each.value.event}: its log line (jsonPayload.job_event = \"${each.value.event}\") names it and why; GET /jobs shows it (docs/operations.md, Alerts and the dashboard)."
  }
}

resource "google_monitoring_alert_policy" "reconciliation_repairs" {
  project               = var.project
  display_name          = "yolodrop: the reconciliation repaired the index"
  combiner              = "OR"
  notification_channels = var.notification_channels
  conditions {
    display_name = "a dataset's index differed from its bucket"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.reconciliation_repairs.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    mime_type = "text/markdown"
    content   = "Events were lost (dead letters past their hold, an outage longer than the retries, or a bug) and the reconciliation repaired them: its \"reconciliation repaired\" lines name each dataset (docs/operations.md)."
  }
}

locals {
  # The dashboard's charts: what each shows, and how its series are aligned (and summed, by what).
  by_max      = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
  by_job_kind = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.job_kind"] }
  by_class    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.service_name", "metric.label.response_code_class"] }
  summed      = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM" }
  user_metric = "metric.type = \"logging.googleapis.com/user"
  tiles = [
    {
      title       = "Dead letters waiting, by hold subscription"
      aggregation = local.by_max
      filter      = "${local.hold_filter} AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
    },
    {
      title       = "Oldest unacknowledged message (s), by subscription"
      aggregation = local.by_max
      filter      = "${local.lettered_filter} AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
    },
    {
      title       = "API and prediction answers per second, by service and class (2xx, 4xx, 5xx)"
      aggregation = local.by_class
      filter      = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = one_of(${join(", ", [for name in values(local.http_services) : "\"${name}\""])}) AND metric.type = \"run.googleapis.com/request_count\""
    },
    {
      title       = "Failed jobs, by kind"
      aggregation = local.by_job_kind
      filter      = "${local.user_metric}/${google_logging_metric.jobs["jobs_failed"].name}\""
    },
    {
      title       = "Stalled jobs, by kind"
      aggregation = local.by_job_kind
      filter      = "${local.user_metric}/${google_logging_metric.jobs["jobs_stalled"].name}\""
    },
    {
      title       = "Datasets the reconciliation repaired"
      aggregation = local.summed
      filter      = "${local.user_metric}/${google_logging_metric.reconciliation_repairs.name}\""
    },
  ]
}

resource "google_monitoring_dashboard" "yolodrop" {
  project = var.project
  dashboard_json = jsonencode({
    displayName = "yolodrop"
    mosaicLayout = {
      columns = 48
      tiles = [for index, tile in local.tiles : {
        xPos   = (index % 2) * 24
        yPos   = floor(index / 2) * 16
        width  = 24
        height = 16
        widget = {
          title = tile.title
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = tile.filter
                  aggregation = tile.aggregation
                }
              }
            }]
          }
        }
      }]
    }
  })
  depends_on = [google_project_service.api]
}
