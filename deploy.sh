#!/usr/bin/env bash
# Deploy yolodrop to Google Cloud (the production twin of infra/local/, see infra/README.md).
#
#   GOOGLE_CLOUD_PROJECT=... REGION=... DATA_BUCKET=... API_TOKEN=... ./deploy.sh [--dry-run]
#
# API_TOKEN: a random secret of at least 32 characters (`openssl rand -base64 32`).
# Optional: FIRESTORE_LOCATION and BUCKET_LOCATION (default: REGION), TRAINER_REGION
# (a region with Cloud Run GPUs; default: REGION), TRAINER_GPU_TYPE (default: nvidia-l4).
# The importer job and the ingest worker (a Cloud Run service) run in REGION, their
# images in the trainer's repository. Names, sizes and grants come from
# infra/settings.json, which infra/terraform reads too: each part runs as its own
# service account, granted what Terraform grants it, on the one resource (the job,
# the topic, the secret, the bucket under a prefix condition). Idempotent: every
# resource is created only when missing and the functions and services are
# redeployed, so re-running updates. --dry-run prints every command, the "is it
# there already?" checks included, and runs none.
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

missing=()
for name in GOOGLE_CLOUD_PROJECT REGION DATA_BUCKET API_TOKEN; do
  [[ -n "${!name:-}" ]] || missing+=("$name")
done
if (( ${#missing[@]} )); then
  echo "error: missing required environment variable(s): ${missing[*]}" >&2
  echo "usage: GOOGLE_CLOUD_PROJECT=... REGION=... DATA_BUCKET=... API_TOKEN=... $0 [--dry-run]" >&2
  exit 2
fi

# The API refuses a weak token (common/platform/config.py): refuse it here, before anything is deployed.
if (( ${#API_TOKEN} < 32 )) || (( $(fold -w1 <<<"$API_TOKEN" | sort -u | wc -l) < 12 )); then
  echo "error: API_TOKEN must be a random secret of at least 32 characters, 12 of them different" \
    "(the API refuses a weaker one): use \$(openssl rand -base64 32)" >&2
  exit 2
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$GOOGLE_CLOUD_PROJECT"
FIRESTORE_LOCATION="${FIRESTORE_LOCATION:-$REGION}"
SETTINGS="$REPO/infra/settings.json"   # names, sizes, settings: shared with infra/terraform
INDEXES_FILE="$REPO/infra/firestore.indexes.json"
BUCKET_LOCATION="${BUCKET_LOCATION:-$REGION}"
TRAINER_REGION="${TRAINER_REGION:-$REGION}"
TRAINER_GPU_TYPE="${TRAINER_GPU_TYPE:-nvidia-l4}"
# The settings as shell variables: S_<path> for values, S_FUNCTIONS for the function
# keys, S_TOPICS for the topic names, F_<key>_<field> per function (one python3 read,
# no other parser needed).
eval "$(python3 - "$SETTINGS" <<'PY'
import json, shlex, sys
settings = json.load(open(sys.argv[1]))
def out(name, value):
    value = " ".join(map(str, value)) if isinstance(value, list) else "" if value is None else value
    print(f"{name}={shlex.quote(str(value))}")
def flat(prefix, tree):
    for key, value in tree.items():
        if key.startswith("_"):  # comments
            continue
        if isinstance(value, dict) and key not in ("functions", "secret_env"):
            flat(f"{prefix}{key}_", value)
        elif key != "functions":
            out(f"S_{prefix}{key}", value)
flat("", settings)
out("S_FUNCTIONS", list(settings["functions"]))
out("S_OBJECT_WRITERS", list(settings["object_writes"]))
out("S_PUBLISHERS", list(settings["publishes"]))
out("S_TOPICS", list(settings["topics"].values()))
for key, function in settings["functions"].items():
    out(f"F_{key}_secrets", [settings["secrets"][secret] for secret in function["secret_env"].values()])
    for field, value in function.items():
        if field == "secret_env":
            value = ",".join(f"{env}={settings['secrets'][secret]}:latest" for env, secret in value.items())
        elif field == "topic" and value:
            value = settings["topics"][value]
        out(f"F_{key}_{field}", value)
PY
)"
SECRET="$S_secrets_api_token" PAGE_SECRET="$S_secrets_page_token_secret"
G=(--project="$PROJECT" --quiet)

exec 3>&1  # command echo goes to the real stdout even inside $(...)
show() { printf '+'; printf ' %q' "$@"; printf '\n'; } >&3

# run CMD...: print it; run it unless --dry-run.
run() { show "$@"; (( DRY_RUN )) || "$@"; }

# exists CMD...: a read-only check. In --dry-run it is printed, not run, and
# answers "missing" so that the create command that follows is printed too.
exists() {
  if (( DRY_RUN )); then show "$@"; echo "  # (check) when it fails:" >&3; return 1; fi
  "$@" >/dev/null 2>&1
}

# capture PLACEHOLDER CMD...: the output of a read-only command; in --dry-run
# the command is printed and PLACEHOLDER stands for its output.
capture() {
  local placeholder="$1"; shift
  if (( DRY_RUN )); then show "$@"; echo "$placeholder"; return; fi
  "$@"
}

# when_exists CHECK... -- CMD...: run CMD when the read-only CHECK succeeds (what is
# there is to be deleted); in --dry-run both are printed and neither is run.
when_exists() {
  local check=()
  while [[ "$1" != -- ]]; do check+=("$1"); shift; done
  shift
  if (( DRY_RUN )); then show "${check[@]}"; echo "  # (check) when it succeeds:" >&3; show "$@"; return 0; fi
  if "${check[@]}" >/dev/null 2>&1; then run "$@"; fi
}

# ensure_subscription NAME TOPIC FLAG...: create the subscription of TOPIC with the
# FLAGs, or update it to them when it exists.
ensure_subscription() {
  local name="$1" topic="$2"
  shift 2
  if exists gcloud pubsub subscriptions describe "$name" "${G[@]}"; then
    run gcloud pubsub subscriptions update "$name" "$@" "${G[@]}"
  else
    run gcloud pubsub subscriptions create "$name" --topic="$topic" "$@" "${G[@]}"
  fi
}

# run_allow_exists CMD...: like run, but an "already exists" error is success.
run_allow_exists() {
  show "$@"
  (( DRY_RUN )) && return 0
  local err
  if ! err="$("$@" 2>&1 >/dev/null)"; then
    if grep -qiE 'ALREADY_EXISTS|already exists' <<<"$err"; then echo "  (already exists)"; return 0; fi
    echo "$err" >&2; return 1
  fi
}

echo "# project=$PROJECT region=$REGION bucket=gs://$DATA_BUCKET dry_run=$DRY_RUN"

echo "# 1. APIs"
# shellcheck disable=SC2086  # the list is words
run gcloud services enable $S_apis "${G[@]}"

PROJECT_NUMBER="$(capture '<PROJECT_NUMBER>' gcloud projects describe "$PROJECT" --format='value(projectNumber)' "${G[@]}")"
PUBSUB_AGENT="service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
STORAGE_AGENT="service-${PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"

echo "# 2. bucket, Firestore, topics with their dead-letter topics, notifications"
exists gcloud storage buckets describe "gs://$DATA_BUCKET" "${G[@]}" ||
  run gcloud storage buckets create "gs://$DATA_BUCKET" --location="$BUCKET_LOCATION" \
    --uniform-bucket-level-access --public-access-prevention "${G[@]}"
exists gcloud firestore databases describe --database='(default)' "${G[@]}" ||
  run gcloud firestore databases create --database='(default)' --location="$FIRESTORE_LOCATION" \
    --type=firestore-native "${G[@]}"
for topic in $S_TOPICS; do
  dead="$topic$S_delivery_dead_letter_suffix" hold="$topic$S_delivery_dead_letter_suffix$S_delivery_hold_suffix"
  for t in "$topic" "$dead"; do
    exists gcloud pubsub topics describe "$t" "${G[@]}" || run gcloud pubsub topics create "$t" "${G[@]}"
  done
  # Dead letters would be lost on a topic without a subscription: keep them to look at and replay.
  exists gcloud pubsub subscriptions describe "$hold" "${G[@]}" ||
    run gcloud pubsub subscriptions create "$hold" --topic="$dead" \
      --message-retention-duration="$S_delivery_hold_retention" "${G[@]}"
  # Pub/Sub's service agent forwards dead letters: it publishes to the dead-letter topic.
  run gcloud pubsub topics add-iam-policy-binding "$dead" --member="serviceAccount:$PUBSUB_AGENT" \
    --role=roles/pubsub.publisher "${G[@]}"
done
# Cloud Storage publishes notifications as its service agent.
run gcloud pubsub topics add-iam-policy-binding "$S_topics_gcs_events" --member="serviceAccount:$STORAGE_AGENT" \
  --role=roles/pubsub.publisher "${G[@]}"
notifications="$(capture '' gcloud storage buckets notifications list "gs://$DATA_BUCKET" --format=json "${G[@]}")"
(( DRY_RUN )) && echo "  # (check) for each prefix without a finalize+delete notification to $S_topics_gcs_events:"
for prefix in $S_notification_prefixes; do
  if [[ -n "$notifications" ]] && python3 - "$notifications" "$S_topics_gcs_events" "$prefix" <<'PY'
import json, sys
items, topic, prefix = json.loads(sys.argv[1] or "[]"), sys.argv[2], sys.argv[3]
configs = [item.get("Notification Configuration", item) for item in items]
sys.exit(0 if any(c.get("topic", "").endswith("/topics/" + topic) and c.get("object_name_prefix") == prefix
                  and {"OBJECT_FINALIZE", "OBJECT_DELETE"} <= set(c.get("event_types") or []) for c in configs) else 1)
PY
  then
    echo "  notification for $prefix exists"
  else
    run gcloud storage buckets notifications create "gs://$DATA_BUCKET" --topic="$S_topics_gcs_events" \
      --event-types=OBJECT_FINALIZE,OBJECT_DELETE --object-prefix="$prefix" --payload-format=json "${G[@]}"
  fi
done

echo "# 3. secrets, one service account per part, and each account's grants on its own resources"
# The part's service account, by key: a function's, ingest (the worker), trainer, importer, push.
account_of() {
  local name
  case "$1" in
    ingest) name="$S_ingest_worker_service_account" ;;
    trainer) name="$S_trainer_service_account" ;;
    importer) name="$S_importer_service_account" ;;
    push) name="$S_push_service_account" ;;
    *) name="$(field "$1" service_account)" ;;
  esac
  echo "$name@$PROJECT.iam.gserviceaccount.com"
}
field() { local name="F_$1_$2"; echo "${!name}"; }
PARTS="$S_FUNCTIONS ingest trainer importer push"
# What runs our code and uses Firestore (every function, the worker, the importer's progress documents).
FIRESTORE_USERS="$S_FUNCTIONS ingest importer"

for part in $PARTS; do
  account="$(account_of "$part")"
  exists gcloud iam service-accounts describe "$account" "${G[@]}" ||
    run gcloud iam service-accounts create "${account%%@*}" --display-name="yolodrop $part" "${G[@]}"
done

for secret in "$SECRET" "$PAGE_SECRET"; do
  exists gcloud secrets describe "$secret" "${G[@]}" ||
    run gcloud secrets create "$secret" --replication-policy=automatic "${G[@]}"
done
current_token="$(capture '<current secret value>' gcloud secrets versions access latest --secret="$SECRET" "${G[@]}" 2>/dev/null || true)"
if (( DRY_RUN )); then
  echo "  # when it differs from \$API_TOKEN:"
  echo "+ printf %s \"\$API_TOKEN\" | gcloud secrets versions add $SECRET --data-file=- ${G[*]}"
elif [[ "$current_token" != "$API_TOKEN" ]]; then
  echo "+ printf %s \"\$API_TOKEN\" | gcloud secrets versions add $SECRET --data-file=- ${G[*]}"
  printf %s "$API_TOKEN" | gcloud secrets versions add "$SECRET" --data-file=- "${G[@]}"
fi
unset current_token
# The page tokens' key: random, made once (a new one would void the page tokens people hold).
page_versions="$(capture '' gcloud secrets versions list "$PAGE_SECRET" --limit=1 --format='value(name)' "${G[@]}" 2>/dev/null || true)"
if (( DRY_RUN )) || [[ -z "$page_versions" ]]; then
  (( DRY_RUN )) && echo "  # when the secret has no version yet:"
  echo "+ python3 -c 'import secrets; print(secrets.token_urlsafe(36), end=\"\")' | gcloud secrets versions add $PAGE_SECRET --data-file=- ${G[*]}"
  (( DRY_RUN )) || python3 -c 'import secrets; print(secrets.token_urlsafe(36), end="")' |
    gcloud secrets versions add "$PAGE_SECRET" --data-file=- "${G[@]}"
fi
for key in $S_FUNCTIONS; do
  for secret in $(field "$key" secrets); do
    run gcloud secrets add-iam-policy-binding "$secret" --member="serviceAccount:$(account_of "$key")" \
      --role=roles/secretmanager.secretAccessor "${G[@]}"
  done
done

# The bucket: every part but the watch reads it all; a part writes only under its prefixes (settings' object_writes,
# an IAM Condition on the object's name).
for part in $S_FUNCTIONS ingest trainer importer; do
  [[ "$part" == watch ]] && continue
  run gcloud storage buckets add-iam-policy-binding "gs://$DATA_BUCKET" --member="serviceAccount:$(account_of "$part")" \
    --role=roles/storage.objectViewer "${G[@]}"
done
for part in $S_OBJECT_WRITERS; do
  prefixes="S_object_writes_$part" expression=""
  for prefix in ${!prefixes}; do
    expression+="${expression:+ || }resource.name.startsWith(\"projects/_/buckets/$DATA_BUCKET/objects/$prefix\")"
  done
  run gcloud storage buckets add-iam-policy-binding "gs://$DATA_BUCKET" --member="serviceAccount:$(account_of "$part")" \
    --role=roles/storage.objectUser --condition="title=$part writes its prefixes,expression=$expression" "${G[@]}"
done
# Firestore has no finer IAM than the project's (the index, jobs, models and imports share one database).
for part in $FIRESTORE_USERS; do
  run gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$(account_of "$part")" \
    --role=roles/datastore.user --condition=None "${G[@]}"
done
# Each publisher on its topics alone (settings' publishes).
for part in $S_PUBLISHERS; do
  topics="S_publishes_$part"
  for topic_key in ${!topics}; do
    topic="S_topics_$topic_key"
    run gcloud pubsub topics add-iam-policy-binding "${!topic}" --member="serviceAccount:$(account_of "$part")" \
      --role=roles/pubsub.publisher "${G[@]}"
  done
done
# Pub/Sub's service agent mints the push subscriptions' OIDC tokens for the push account.
run gcloud iam service-accounts add-iam-policy-binding "$(account_of push)" --member="serviceAccount:$PUBSUB_AGENT" \
  --role=roles/iam.serviceAccountTokenCreator "${G[@]}"
# The training and imports functions start their jobs as the trainer's and the importer's accounts (step 4b, 4c
# grant the runs on the jobs themselves).
run gcloud iam service-accounts add-iam-policy-binding "$(account_of trainer)" \
  --member="serviceAccount:$(account_of train)" --role=roles/iam.serviceAccountUser "${G[@]}"
run gcloud iam service-accounts add-iam-policy-binding "$(account_of importer)" \
  --member="serviceAccount:$(account_of imports)" --role=roles/iam.serviceAccountUser "${G[@]}"

echo "# 4. functions (each staged from functions/<name>/: its main.py and requirements.txt, plus common/)"
if (( DRY_RUN )); then
  STAGE_ROOT='<tmpdir>'
else
  STAGE_ROOT="$(mktemp -d)"
  trap 'rm -rf "$STAGE_ROOT"' EXIT
fi
# stage NAME -> prints the staged directory. Cloud Functions builds only what is
# inside --source, so common/ is copied in; the function's own requirements.txt
# names only what that function imports (tests/unit/test_architecture.py).
stage() {
  local dir="$STAGE_ROOT/$1" src="$REPO/functions/$1"
  [[ -f "$src/main.py" && -f "$src/requirements.txt" ]] || {
    echo "error: $src needs main.py and requirements.txt" >&2; exit 1; }
  run mkdir -p "$dir" >&2
  run cp "$src/main.py" "$src/requirements.txt" "$dir/" >&2
  run cp -R "$REPO/common" "$dir/common" >&2
  run find "$dir" -name __pycache__ -prune -exec rm -rf {} + >&2
  echo "$dir"
}

# env_value NAME: the value of an environment variable settings give a function, the
# ingest worker or a job.
env_value() {
  case "$1" in
    GOOGLE_CLOUD_PROJECT) echo "$PROJECT" ;;
    DATA_BUCKET) echo "$DATA_BUCKET" ;;
    TRAINING_TOPIC) echo "$S_topics_training_requests" ;;
    PROGRESS_TOPIC) echo "$S_topics_training_progress" ;;
    DATASET_JOBS_TOPIC) echo "$S_topics_dataset_jobs" ;;
    TRAINER_LAUNCHER) echo cloud-run ;;
    TRAINER_JOB) echo "$S_trainer_job" ;;
    TRAINER_REGION) echo "$TRAINER_REGION" ;;
    TASK_TIMEOUT_SECONDS) echo "$S_trainer_task_timeout_seconds" ;;
    WATCH_GRACE_SECONDS) echo "$S_watch_grace_seconds" ;;
    JOB_STALL_SECONDS) echo "$S_watch_job_stall_seconds" ;;
    IMPORT_TOPIC) echo "$S_topics_import_requests" ;;
    IMPORTER_LAUNCHER) echo cloud-run ;;
    IMPORTER_JOB) echo "$S_importer_job" ;;
    IMPORTER_REGION) echo "$REGION" ;;
    IMPORT_TASKS) echo "$S_importer_tasks" ;;
    IMPORT_TASK_RETRIES) echo "$S_importer_max_retries" ;;
    IMPORT_INLINE_MAX_BYTES) echo "$S_importer_inline_max_bytes" ;;
    IMPORT_COCO_MAX_BYTES) echo "$S_importer_coco_max_bytes" ;;
    IMPORT_BUCKETS) echo "$S_importer_buckets" ;;  # space-separated: env_flag joins the variables with commas
    INGEST_SUBSCRIPTION) echo "$S_ingest_worker_subscription" ;;
    INGEST_BATCH_SIZE) echo "$S_ingest_worker_batch_size" ;;
    FIREBASE_WEB_API_KEY) echo "${FIREBASE_WEB_API_KEY:-}" ;;      # the page's sign-in (public by design)
    GOOGLE_OAUTH_CLIENT_ID) echo "${GOOGLE_OAUTH_CLIENT_ID:-}" ;;  # unset: the page offers e-mail sign-in only
    JOIN_POLICY) echo "${JOIN_POLICY:-open}" ;;                      # who may join (docs/security.md)
    JOIN_ALLOWLIST) echo "${JOIN_ALLOWLIST:-}" ;;                    # space-separated addresses and domains
    QUOTA_STORED_BYTES) echo "$S_accounts_quota_stored_bytes" ;;
    QUOTA_DATASETS) echo "$S_accounts_quota_datasets" ;;
    QUOTA_CONCURRENT_TRAINING) echo "$S_accounts_quota_concurrent_training" ;;
    QUOTA_GPU_HOURS_PER_DAY) echo "$S_accounts_quota_gpu_hours_per_day" ;;
    TRAINING_MAX_EPOCHS) echo "$S_accounts_training_max_epochs" ;;
    TRAINING_MAX_IMGSZ) echo "$S_accounts_training_max_imgsz" ;;
    PREDICT_URL) echo "https://$REGION-$PROJECT.cloudfunctions.net/$F_predict_name" ;;  # the page's try-it
    *) echo "error: infra/settings.json names $1, which deploy.sh has no value for" >&2; exit 1 ;;
  esac
}
env_flag() {  # env_flag NAME... -> --set-env-vars=A=1,B=2
  local pairs=() name
  for name in "$@"; do pairs+=("$name=$(env_value "$name")"); done
  (IFS=,; echo "--set-env-vars=${pairs[*]}")
}

# deploy_function KEY: stage and deploy functions/KEY with its settings. A topic-fed
# function is internal and fed by its own push subscription (step 5); the API and
# prediction are public HTTP and check their callers themselves.
deploy_function() {
  local key="$1" src access secrets=()
  src="$(stage "$key")"
  if [[ -n "$(field "$key" topic)" ]]; then access=(--no-allow-unauthenticated --ingress-settings=internal-only)
  else access=(--allow-unauthenticated); fi
  [[ -n "$(field "$key" secret_env)" ]] && secrets=(--set-secrets="$(field "$key" secret_env)")
  # shellcheck disable=SC2046  # env names are words
  run gcloud functions deploy "$(field "$key" name)" --gen2 --region="$REGION" --runtime="$S_runtime" \
    --source="$src" --entry-point="$(field "$key" entry_point)" --trigger-http "${access[@]}" \
    --memory="$(field "$key" memory)" --cpu="$(field "$key" cpu)" --concurrency="$(field "$key" concurrency)" \
    --timeout="$(field "$key" timeout_seconds)s" --min-instances="$(field "$key" min_instances)" \
    --max-instances="$(field "$key" max_instances)" --service-account="$(account_of "$key")" \
    "$(env_flag $(field "$key" env))" "${secrets[@]}" "${G[@]}"
}
for key in $S_FUNCTIONS; do deploy_function "$key"; done

echo "# 4b. the trainer: image (Cloud Build) and Cloud Run Job with a GPU"
exists gcloud artifacts repositories describe "$S_trainer_image_repository" --location="$TRAINER_REGION" "${G[@]}" ||
  run gcloud artifacts repositories create "$S_trainer_image_repository" --repository-format=docker \
    --location="$TRAINER_REGION" "${G[@]}"
IMAGES="$TRAINER_REGION-docker.pkg.dev/$PROJECT/$S_trainer_image_repository"  # the trainer's and the importer's
IMAGE_TAG="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo latest)"
IMAGE="$IMAGES/trainer:$IMAGE_TAG"
run gcloud builds submit "$REPO" --config="$REPO/infra/cloudbuild.trainer.yaml" \
  --substitutions="_IMAGE=$IMAGE" "${G[@]}"
# Retries resume from the bucket checkpoint (CLOUD_RUN_TASK_ATTEMPT); no GPU
# zonal redundancy keeps GPU quota needs low.
# shellcheck disable=SC2086  # env names are words
run gcloud run jobs deploy "$S_trainer_job" --image="$IMAGE" --region="$TRAINER_REGION" \
  --gpu="$S_trainer_gpus" --gpu-type="$TRAINER_GPU_TYPE" --no-gpu-zonal-redundancy \
  --cpu="$S_trainer_cpu" --memory="$S_trainer_memory" --tasks=1 --max-retries="$S_trainer_max_retries" \
  --task-timeout="${S_trainer_task_timeout_seconds}s" "$(env_flag $S_trainer_env)" \
  --service-account="$(account_of trainer)" "${G[@]}"
# The training function runs it with overrides (JOB_ID, MANIFEST_URI); the watch reads its executions: on this job.
run gcloud run jobs add-iam-policy-binding "$S_trainer_job" --region="$TRAINER_REGION" \
  --member="serviceAccount:$(account_of train)" --role=roles/run.jobsExecutorWithOverrides "${G[@]}"
run gcloud run jobs add-iam-policy-binding "$S_trainer_job" --region="$TRAINER_REGION" \
  --member="serviceAccount:$(account_of watch)" --role=roles/run.viewer "${G[@]}"

echo "# 4c. the importer: image (Cloud Build, from jobs/importer/Dockerfile) and Cloud Run Job without a GPU"
# The build context is staged like a function's: common/ and jobs/, the Dockerfile at its root.
importer_src="$STAGE_ROOT/$S_importer_image-image"
run mkdir -p "$importer_src"
run cp -R "$REPO/common" "$REPO/jobs" "$importer_src/"
run cp "$REPO/jobs/importer/Dockerfile" "$importer_src/Dockerfile"
run find "$importer_src" -name __pycache__ -prune -exec rm -rf {} +
IMPORTER_IMAGE="$IMAGES/$S_importer_image:$IMAGE_TAG"
run gcloud builds submit "$importer_src" --tag="$IMPORTER_IMAGE" "${G[@]}"
# The imports function sets the task count per import; a retried task skips what it wrote.
# shellcheck disable=SC2086  # env names are words
run gcloud run jobs deploy "$S_importer_job" --image="$IMPORTER_IMAGE" --region="$REGION" \
  --cpu="$S_importer_cpu" --memory="$S_importer_memory" --tasks=1 --max-retries="$S_importer_max_retries" \
  --task-timeout="${S_importer_task_timeout_seconds}s" "$(env_flag $S_importer_env)" \
  --service-account="$(account_of importer)" "${G[@]}"
# The imports function runs it with overrides (IMPORT_ID, IMPORT_PHASE, the task count) and reads its executions.
for role in roles/run.jobsExecutorWithOverrides roles/run.viewer; do
  run gcloud run jobs add-iam-policy-binding "$S_importer_job" --region="$REGION" \
    --member="serviceAccount:$(account_of imports)" --role="$role" "${G[@]}"
done

echo "# 4d. the ingest worker: its pull subscription, image (Cloud Build, from functions/ingest/Dockerfile), Cloud Run service"
ingest_topic="S_topics_$S_ingest_worker_topic"
ingest_topic="${!ingest_topic}"
# A pull worker scaled to zero pulls nothing, and no request would wake it.
(( S_ingest_worker_min_instances >= 1 )) || {
  echo "error: infra/settings.json ingest_worker.min_instances must be at least 1: nothing pulls otherwise" >&2; exit 1; }
# The subscription first: from then on every notification waits there for the worker.
# Its policies are the push subscriptions' (step 5); the ack deadline is the lease the
# worker takes on a batch and renews while it runs (common/platform/worker.py).
pull=(--ack-deadline="$S_ingest_worker_ack_deadline_seconds" --expiration-period=never
      --min-retry-delay="$S_delivery_minimum_backoff" --max-retry-delay="$S_delivery_maximum_backoff"
      --dead-letter-topic="$ingest_topic$S_delivery_dead_letter_suffix"
      --max-delivery-attempts="$S_delivery_max_delivery_attempts")
ensure_subscription "$S_ingest_worker_subscription" "$ingest_topic" "${pull[@]}"
# The worker pulls, acknowledges and extends leases on it; Pub/Sub's service agent
# acknowledges on it when it forwards a dead letter.
for member in "$(account_of ingest)" "$PUBSUB_AGENT"; do
  run gcloud pubsub subscriptions add-iam-policy-binding "$S_ingest_worker_subscription" \
    --member="serviceAccount:$member" --role=roles/pubsub.subscriber "${G[@]}"
done
# The build context: common/ and functions/ingest/, the Dockerfile at its root (the image
# runs python -m functions.ingest.main, as the local stack does).
ingest_src="$STAGE_ROOT/$S_ingest_worker_image-image"
run mkdir -p "$ingest_src/functions"
run cp -R "$REPO/common" "$ingest_src/common"
run cp -R "$REPO/functions/ingest" "$ingest_src/functions/ingest"
run cp "$REPO/functions/ingest/Dockerfile" "$ingest_src/Dockerfile"
run find "$ingest_src" -name __pycache__ -prune -exec rm -rf {} +
INGEST_IMAGE="$IMAGES/$S_ingest_worker_image:$IMAGE_TAG"
run gcloud builds submit "$ingest_src" --tag="$INGEST_IMAGE" "${G[@]}"
# CPU always allocated (the worker works between requests, not in them); internal and
# invoked by nobody: its only HTTP answer is its status, for the health check.
# shellcheck disable=SC2086  # env names are words
run gcloud run deploy "$S_ingest_worker_service" --image="$INGEST_IMAGE" --region="$REGION" \
  --no-cpu-throttling --min-instances="$S_ingest_worker_min_instances" \
  --max-instances="$S_ingest_worker_max_instances" --cpu="$S_ingest_worker_cpu" \
  --memory="$S_ingest_worker_memory" --ingress=internal --no-allow-unauthenticated \
  "$(env_flag $S_ingest_worker_env)" --service-account="$(account_of ingest)" "${G[@]}"
# What the worker replaced, where an earlier deploy left it: the ingest Cloud Function
# and its push subscription (which would index every notification a second time).
when_exists gcloud functions describe "$S_ingest_worker_retired_function" --gen2 --region="$REGION" "${G[@]}" -- \
  gcloud functions delete "$S_ingest_worker_retired_function" --gen2 --region="$REGION" "${G[@]}"
when_exists gcloud pubsub subscriptions describe "$S_ingest_worker_retired_subscription" "${G[@]}" -- \
  gcloud pubsub subscriptions delete "$S_ingest_worker_retired_subscription" "${G[@]}"

echo "# 5. push subscriptions: each topic-fed function's own, with its retry and dead-letter policy"
for key in $S_FUNCTIONS; do
  topic="$(field "$key" topic)" subscription="$(field "$key" subscription)"
  [[ -n "$topic" ]] || continue
  url="$(capture "<URL of $(field "$key" name)>" gcloud functions describe "$(field "$key" name)" --gen2 \
    --region="$REGION" --format='value(serviceConfig.uri)' "${G[@]}")"
  run gcloud functions add-invoker-policy-binding "$(field "$key" name)" --region="$REGION" \
    --member="serviceAccount:$(account_of push)" "${G[@]}"
  ack=$(( $(field "$key" timeout_seconds) < 600 ? $(field "$key" timeout_seconds) : 600 ))
  delivery=(--push-endpoint="$url" --push-auth-service-account="$(account_of push)" --ack-deadline="$ack"
            --min-retry-delay="$S_delivery_minimum_backoff" --max-retry-delay="$S_delivery_maximum_backoff"
            --dead-letter-topic="$topic$S_delivery_dead_letter_suffix"
            --max-delivery-attempts="$S_delivery_max_delivery_attempts")
  ensure_subscription "$subscription" "$topic" "${delivery[@]}"
  # ... and acknowledges on the source subscription when it forwards a dead letter.
  run gcloud pubsub subscriptions add-iam-policy-binding "$subscription" \
    --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber "${G[@]}"
done

echo "# 5b. the watch's schedule (Cloud Scheduler publishes a tick to $S_topics_training_watch)"
schedule=(--location="$REGION" --schedule="$S_watch_schedule" --time-zone=Etc/UTC
          --topic="$S_topics_training_watch" --message-body='{"sweep": true}')
if exists gcloud scheduler jobs describe "$S_watch_scheduler_job" --location="$REGION" "${G[@]}"; then
  run gcloud scheduler jobs update pubsub "$S_watch_scheduler_job" "${schedule[@]}" "${G[@]}"
else
  run gcloud scheduler jobs create pubsub "$S_watch_scheduler_job" "${schedule[@]}" "${G[@]}"
fi

echo "# 6. Firestore indexes from ${INDEXES_FILE#"$REPO"/} (built in the background: --async)"
if [[ -f "$INDEXES_FILE" ]]; then
  # One tab-separated line per index: kind, collection group, then scope and field configs.
  while IFS=$'\t' read -r -a spec; do
    if [[ "${spec[0]}" == composite ]]; then
      field_flags=()
      for field in "${spec[@]:3}"; do field_flags+=(--field-config="$field"); done
      run_allow_exists gcloud firestore indexes composite create --database='(default)' \
        --collection-group="${spec[1]}" --query-scope="${spec[2]}" "${field_flags[@]}" --async "${G[@]}"
    else  # exemption from single-field indexing
      run gcloud firestore indexes fields update "${spec[2]}" --database='(default)' \
        --collection-group="${spec[1]}" --disable-indexes --async "${G[@]}"
    fi
  done < <(python3 - "$INDEXES_FILE" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
for index in spec.get("indexes", []):
    fields = []
    for f in index["fields"]:
        if "arrayConfig" in f:
            fields.append(f"field-path={f['fieldPath']},array-config={f['arrayConfig'].lower()}")
        else:
            fields.append(f"field-path={f['fieldPath']},order={f.get('order', 'ASCENDING').lower()}")
    scope = "collection-group" if index.get("queryScope") == "COLLECTION_GROUP" else "collection"
    print("\t".join(["composite", index["collectionGroup"], scope, *fields]))
for override in spec.get("fieldOverrides", []):
    if override.get("indexes") == []:
        print("\t".join(["exempt", override["collectionGroup"], override["fieldPath"]]))
    else:
        sys.exit(f"fieldOverride {override['fieldPath']}: only exemptions (indexes: []) are supported here")
PY
  )
else
  echo "  no $INDEXES_FILE; skipped"
fi

api_url="$(capture '<API_URL>' gcloud functions describe "$F_api_name" --gen2 --region="$REGION" \
  --format='value(serviceConfig.uri)' "${G[@]}")"
echo "# done. API: $api_url  (Authorization: Bearer \$API_TOKEN)"
echo "# drop files under gs://$DATA_BUCKET/datasets/<dataset>/ or gs://$DATA_BUCKET/imports/<dataset>.zip"
