# Everything named or sized comes from infra/settings.json, which deploy.sh reads too;
# the Firestore indexes come from infra/firestore.indexes.json, which deploy.sh reads too.
locals {
  repo     = abspath("${path.module}/../../../..")
  settings = jsondecode(file("${local.repo}/infra/settings.json"))
  indexes  = jsondecode(file("${local.repo}/infra/firestore.indexes.json"))

  functions        = local.settings.functions
  pushed_functions = { for key, function in local.functions : key => function if function.topic != null }
  public_functions = { for key, function in local.functions : key => function if function.public }
  topics           = local.settings.topics
  delivery         = local.settings.delivery
  trainer          = local.settings.trainer
  importer         = local.settings.importer

  bucket_location    = coalesce(var.bucket_location, var.region)
  firestore_location = coalesce(var.firestore_location, var.region)

  trainer_vertex_region = coalesce(var.trainer_vertex_region, var.trainer_region)
  vertex_enabled        = length(local.trainer.vertex.accelerator_types) > 0

  # Every environment variable a function, the trainer or the importer may be given
  # (settings name which), with its value: common/platform/config.py reads them.
  env_values = {
    GOOGLE_CLOUD_PROJECT    = var.project
    DATA_BUCKET             = google_storage_bucket.data.name
    TRAINING_TOPIC          = google_pubsub_topic.topic["training_requests"].name
    PROGRESS_TOPIC          = google_pubsub_topic.topic["training_progress"].name
    DATASET_JOBS_TOPIC      = google_pubsub_topic.topic["dataset_jobs"].name
    TRAINER_LAUNCHER        = "cloud-run"
    TRAINER_JOB             = local.trainer.job
    TRAINER_REGION          = var.trainer_region
    TASK_TIMEOUT_SECONDS    = tostring(local.trainer.task_timeout_seconds)
    WATCH_GRACE_SECONDS     = tostring(local.settings.watch.grace_seconds)
    JOB_STALL_SECONDS       = tostring(local.settings.watch.job_stall_seconds)
    IMPORT_TOPIC            = google_pubsub_topic.topic["import_requests"].name
    IMPORTER_LAUNCHER       = "cloud-run"
    IMPORTER_JOB            = local.importer.job
    IMPORTER_REGION         = var.region
    IMPORT_TASKS            = tostring(local.importer.tasks)
    IMPORT_TASK_RETRIES     = tostring(local.importer.max_retries)
    IMPORT_INLINE_MAX_BYTES = tostring(local.importer.inline_max_bytes)
    IMPORT_COCO_MAX_BYTES   = tostring(local.importer.coco_max_bytes)
    IMPORT_BUCKETS          = join(" ", local.importer.buckets)
    INGEST_SUBSCRIPTION     = local.functions.ingest.subscription # a name, not the resource: it pushes to the function
    INGEST_BATCH_SIZE       = tostring(local.functions.ingest.batch_size)
    INGEST_GROUP_WAIT_MS    = tostring(local.functions.ingest.group_wait_ms)
    THREADS                 = tostring(local.functions.ingest.concurrency) # functions-framework's: ingest's group commit
    FIREBASE_WEB_API_KEY    = var.firebase_web_api_key
    GOOGLE_OAUTH_CLIENT_ID  = var.google_oauth_client_id
    JOIN_POLICY             = var.join_policy
    JOIN_ALLOWLIST          = join(" ", var.join_allowlist)
    PREDICT_URL             = "https://${var.region}-${var.project}.cloudfunctions.net/${local.functions.predict.name}"

    # What one person may use (docs/security.md)
    QUOTA_STORED_BYTES        = tostring(local.settings.accounts.quota_stored_bytes)
    QUOTA_DATASETS            = tostring(local.settings.accounts.quota_datasets)
    QUOTA_CONCURRENT_TRAINING = tostring(local.settings.accounts.quota_concurrent_training)
    QUOTA_GPU_HOURS_PER_DAY   = tostring(local.settings.accounts.quota_gpu_hours_per_day)
    TRAINING_MAX_EPOCHS       = tostring(local.settings.accounts.training_max_epochs)
    TRAINING_MAX_IMGSZ        = tostring(local.settings.accounts.training_max_imgsz)

    # Several GPUs: a Vertex AI custom job of the trainer's image, as its account (docs/training.md)
    TRAINER_ACCELERATOR_TYPES      = join(" ", local.trainer.vertex.accelerator_types)
    TRAINER_MAX_ACCELERATORS       = tostring(local.trainer.vertex.max_accelerators)
    TRAINER_VERTEX_REGION          = local.trainer_vertex_region
    TRAINER_IMAGE                  = var.trainer_image
    TRAINER_SERVICE_ACCOUNT        = google_service_account.trainer.email
    TRAINER_VERTEX_TIMEOUT_SECONDS = tostring(local.trainer.vertex.timeout_seconds)
  }
}
