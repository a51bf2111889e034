# The (default) Firestore database and the indexes of infra/firestore.indexes.json
# (the one list; deploy.sh creates the same ones), with point-in-time recovery and
# daily backups: restoring is docs/operations.md, "Restoring the index".

resource "google_firestore_database" "default" {
  project                 = var.project
  name                    = "(default)"
  location_id             = local.firestore_location
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"
  # Any minute of the last 7 days can be read or cloned into a new database.
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  depends_on                        = [google_project_service.api]
}

# A backup a day, kept firestore_backup_retention_days: a whole copy that outlives the database
# (point-in-time recovery goes with it) and restores into a new one.
resource "google_firestore_backup_schedule" "daily" {
  project   = var.project
  database  = google_firestore_database.default.name
  retention = "${var.firestore_backup_retention_days * 86400}s"
  daily_recurrence {}
}

locals {
  composite_indexes = {
    for index in local.indexes.indexes :
    join("/", concat([index.collectionGroup], [for field in index.fields : field.fieldPath])) => index
  }
  # Only exemptions from single-field indexing ("indexes": []) are listed.
  index_exemptions = {
    for override in local.indexes.fieldOverrides :
    "${override.collectionGroup}/${override.fieldPath}" => override if length(override.indexes) == 0
  }
}

resource "google_firestore_index" "composite" {
  for_each    = local.composite_indexes
  project     = var.project
  database    = google_firestore_database.default.name
  collection  = each.value.collectionGroup
  query_scope = try(each.value.queryScope, "COLLECTION")

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = try(fields.value.order, null)
      array_config = try(fields.value.arrayConfig, null)
    }
  }
}

# Rate-limit counters delete themselves once their window has passed: Firestore's TTL policy on expires_at (a
# timestamp; common/cloud/rate_limit_store.py), never indexed (a counter is read by its id).
resource "google_firestore_field" "rate_limits_ttl" {
  project    = var.project
  database   = google_firestore_database.default.name
  collection = "rate_limits"
  field      = "expires_at"
  ttl_config {}
  index_config {}
}

resource "google_firestore_field" "exempt" {
  for_each   = local.index_exemptions
  project    = var.project
  database   = google_firestore_database.default.name
  collection = each.value.collectionGroup
  field      = each.value.fieldPath
  # An empty index_config removes the single-field indexes of the field.
  index_config {}
}
