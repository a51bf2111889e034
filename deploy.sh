#!/usr/bin/env bash
# Deploy yolodrop to Google Cloud (the production twin of infra/local/, see infra/README.md).
#
#   GOOGLE_CLOUD_PROJECT=... REGION=... DATA_BUCKET=... API_TOKEN=... ./deploy.sh [--dry-run]
#
# Optional: FUNCTION_SA (runtime and trigger service account; default: the
# project's Compute Engine default service account), FIRESTORE_LOCATION
# (default: REGION), TRAINER_REGION (a region with Cloud Run GPUs; default:
# REGION), TRAINER_GPU_TYPE (default: nvidia-l4). Idempotent: every resource is created only when missing
# and the functions are redeployed, so re-running updates. --dry-run prints
# every command, the "is it there already?" checks included, and runs none.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

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

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$GOOGLE_CLOUD_PROJECT"
FIRESTORE_LOCATION="${FIRESTORE_LOCATION:-$REGION}"
TOPIC=gcs-events
DEAD_TOPIC=gcs-events-dead
DEAD_HOLD_SUB=gcs-events-dead-hold
SECRET=yolodrop-api-token
INGEST_FN=yolodrop-ingest
API_FN=yolodrop-api
TRAINING_TOPIC=training-requests
PROGRESS_TOPIC=training-progress
TRAIN_FN=yolodrop-train
PROGRESS_FN=yolodrop-progress
TRAINER_JOB=yolodrop-trainer
TRAINER_REGION="${TRAINER_REGION:-$REGION}"
TRAINER_GPU_TYPE="${TRAINER_GPU_TYPE:-nvidia-l4}"
IMAGE_REPO=yolodrop
# One notification per prefix the ingest function acts on (a notification has
# at most one prefix); derived/ (thumbnails, exports) gets none, so nothing the
# functions write re-triggers them.
NOTIFY_PREFIXES=(datasets/ imports/)
INDEXES_FILE="$REPO/infra/firestore.indexes.json"
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
run gcloud services enable cloudfunctions.googleapis.com run.googleapis.com eventarc.googleapis.com \
  pubsub.googleapis.com firestore.googleapis.com storage.googleapis.com cloudbuild.googleapis.com \
  artifactregistry.googleapis.com secretmanager.googleapis.com "${G[@]}"

PROJECT_NUMBER="$(capture '<PROJECT_NUMBER>' gcloud projects describe "$PROJECT" --format='value(projectNumber)' "${G[@]}")"
RUNTIME_SA="${FUNCTION_SA:-${PROJECT_NUMBER}-compute@developer.gserviceaccount.com}"
PUBSUB_AGENT="service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"

echo "# 2. bucket, Firestore, topics, notifications"
exists gcloud storage buckets describe "gs://$DATA_BUCKET" "${G[@]}" ||
  run gcloud storage buckets create "gs://$DATA_BUCKET" --location="$REGION" --uniform-bucket-level-access "${G[@]}"
exists gcloud firestore databases describe --database='(default)' "${G[@]}" ||
  run gcloud firestore databases create --database='(default)' --location="$FIRESTORE_LOCATION" \
    --type=firestore-native "${G[@]}"
for topic in "$TOPIC" "$DEAD_TOPIC" "$TRAINING_TOPIC" "$PROGRESS_TOPIC"; do
  exists gcloud pubsub topics describe "$topic" "${G[@]}" || run gcloud pubsub topics create "$topic" "${G[@]}"
done
# Dead-lettered events would be lost on a topic without a subscription: keep them a week.
exists gcloud pubsub subscriptions describe "$DEAD_HOLD_SUB" "${G[@]}" ||
  run gcloud pubsub subscriptions create "$DEAD_HOLD_SUB" --topic="$DEAD_TOPIC" \
    --message-retention-duration=7d "${G[@]}"
notifications="$(capture '' gcloud storage buckets notifications list "gs://$DATA_BUCKET" --format=json "${G[@]}")"
(( DRY_RUN )) && echo "  # (check) for each prefix without a finalize+delete notification to $TOPIC:"
for prefix in "${NOTIFY_PREFIXES[@]}"; do
  if [[ -n "$notifications" ]] && python3 - "$notifications" "$TOPIC" "$prefix" <<'PY'
import json, sys
items, topic, prefix = json.loads(sys.argv[1] or "[]"), sys.argv[2], sys.argv[3]
configs = [item.get("Notification Configuration", item) for item in items]
sys.exit(0 if any(c.get("topic", "").endswith("/topics/" + topic) and c.get("object_name_prefix") == prefix
                  and {"OBJECT_FINALIZE", "OBJECT_DELETE"} <= set(c.get("event_types") or []) for c in configs) else 1)
PY
  then
    echo "  notification for $prefix exists"
  else
    run gcloud storage buckets notifications create "gs://$DATA_BUCKET" --topic="$TOPIC" \
      --event-types=OBJECT_FINALIZE,OBJECT_DELETE --object-prefix="$prefix" --payload-format=json "${G[@]}"
  fi
done

echo "# 3. API token secret and the runtime service account's roles"
exists gcloud secrets describe "$SECRET" "${G[@]}" ||
  run gcloud secrets create "$SECRET" --replication-policy=automatic "${G[@]}"
current_token="$(capture '<current secret value>' gcloud secrets versions access latest --secret="$SECRET" "${G[@]}" 2>/dev/null || true)"
if (( DRY_RUN )); then
  echo "  # when it differs from \$API_TOKEN:"
  echo "+ printf %s \"\$API_TOKEN\" | gcloud secrets versions add $SECRET --data-file=- ${G[*]}"
elif [[ "$current_token" != "$API_TOKEN" ]]; then
  echo "+ printf %s \"\$API_TOKEN\" | gcloud secrets versions add $SECRET --data-file=- ${G[*]}"
  printf %s "$API_TOKEN" | gcloud secrets versions add "$SECRET" --data-file=- "${G[@]}"
fi
unset current_token
run gcloud secrets add-iam-policy-binding "$SECRET" --member="serviceAccount:$RUNTIME_SA" \
  --role=roles/secretmanager.secretAccessor "${G[@]}"
run gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$RUNTIME_SA" \
  --role=roles/datastore.user --condition=None "${G[@]}"
run gcloud storage buckets add-iam-policy-binding "gs://$DATA_BUCKET" --member="serviceAccount:$RUNTIME_SA" \
  --role=roles/storage.objectAdmin "${G[@]}"
# The API publishes training requests and the trainer progress; the training
# function runs the trainer job with overrides, as the runtime service account.
for role in roles/pubsub.publisher roles/run.developer roles/iam.serviceAccountUser; do
  run gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$RUNTIME_SA" \
    --role="$role" --condition=None "${G[@]}"
done

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
SA_FLAGS=() TRIGGER_SA_FLAGS=()
if [[ -n "${FUNCTION_SA:-}" ]]; then
  SA_FLAGS=(--service-account="$FUNCTION_SA")
  TRIGGER_SA_FLAGS=(--trigger-service-account="$FUNCTION_SA")
fi
ENV_VARS="GOOGLE_CLOUD_PROJECT=$PROJECT,DATA_BUCKET=$DATA_BUCKET"

ingest_src="$(stage ingest)"
run gcloud functions deploy "$INGEST_FN" --gen2 --region="$REGION" --runtime=python311 \
  --source="$ingest_src" --entry-point=ingest_object \
  --trigger-topic="$TOPIC" --retry \
  --memory=1Gi --cpu=1 --concurrency=16 --timeout=300s \
  --set-env-vars="$ENV_VARS" "${SA_FLAGS[@]}" "${TRIGGER_SA_FLAGS[@]}" "${G[@]}"
# The Eventarc trigger pushes as the trigger service account, which needs run.invoker.
run gcloud functions add-invoker-policy-binding "$INGEST_FN" --region="$REGION" \
  --member="serviceAccount:$RUNTIME_SA" "${G[@]}"

api_src="$(stage api)"
run gcloud functions deploy "$API_FN" --gen2 --region="$REGION" --runtime=python311 \
  --source="$api_src" --entry-point=api_handler \
  --trigger-http --allow-unauthenticated \
  --memory=512Mi --cpu=1 --concurrency=32 --timeout=60s \
  --set-env-vars="$ENV_VARS" --set-secrets="API_TOKEN=$SECRET:latest" "${SA_FLAGS[@]}" "${G[@]}"

for fn in train progress; do
  src="$(stage "$fn")"
  if [[ "$fn" == train ]]; then
    name="$TRAIN_FN" entry=training_request topic="$TRAINING_TOPIC"
    extra_env=",TRAINER_LAUNCHER=cloud-run,TRAINER_JOB=$TRAINER_JOB,TRAINER_REGION=$TRAINER_REGION"
  else
    name="$PROGRESS_FN" entry=training_progress topic="$PROGRESS_TOPIC" extra_env=""
  fi
  run gcloud functions deploy "$name" --gen2 --region="$REGION" --runtime=python311 \
    --source="$src" --entry-point="$entry" --trigger-topic="$topic" --retry \
    --memory=1Gi --cpu=1 --concurrency=8 --timeout=540s \
    --set-env-vars="$ENV_VARS$extra_env" "${SA_FLAGS[@]}" "${TRIGGER_SA_FLAGS[@]}" "${G[@]}"
  run gcloud functions add-invoker-policy-binding "$name" --region="$REGION" \
    --member="serviceAccount:$RUNTIME_SA" "${G[@]}"
done

echo "# 4b. the trainer: image (Cloud Build) and Cloud Run Job with a GPU"
exists gcloud artifacts repositories describe "$IMAGE_REPO" --location="$TRAINER_REGION" "${G[@]}" ||
  run gcloud artifacts repositories create "$IMAGE_REPO" --repository-format=docker \
    --location="$TRAINER_REGION" "${G[@]}"
IMAGE="$TRAINER_REGION-docker.pkg.dev/$PROJECT/$IMAGE_REPO/trainer:$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo latest)"
run gcloud builds submit "$REPO" --config="$REPO/infra/cloudbuild.trainer.yaml" \
  --substitutions="_IMAGE=$IMAGE" "${G[@]}"
# Retries resume from the bucket checkpoint (CLOUD_RUN_TASK_ATTEMPT); no GPU
# zonal redundancy keeps GPU quota needs low.
run gcloud run jobs deploy "$TRAINER_JOB" --image="$IMAGE" --region="$TRAINER_REGION" \
  --gpu=1 --gpu-type="$TRAINER_GPU_TYPE" --no-gpu-zonal-redundancy --cpu=8 --memory=32Gi \
  --tasks=1 --max-retries=3 --task-timeout=86400s \
  --set-env-vars="GOOGLE_CLOUD_PROJECT=$PROJECT,PROGRESS_TOPIC=$PROGRESS_TOPIC" "${SA_FLAGS[@]}" "${G[@]}"

echo "# 5. dead-letter policy on the ingest trigger's (Eventarc-created) subscription"
trigger="$(capture '<TRIGGER>' gcloud functions describe "$INGEST_FN" --gen2 --region="$REGION" \
  --format='value(eventTrigger.trigger)' "${G[@]}")"
subscription="$(capture '<SUBSCRIPTION>' gcloud eventarc triggers describe "$trigger" --location="$REGION" \
  --format='value(transport.pubsub.subscription)' "${G[@]}")"
if [[ -z "$subscription" ]]; then
  echo "error: no Pub/Sub subscription found for trigger '$trigger'; set the dead-letter policy by hand:" >&2
  echo "  gcloud pubsub subscriptions list --filter=topic:$TOPIC   # the eventarc-$REGION-... one" >&2
  exit 1
fi
run gcloud pubsub subscriptions update "$subscription" --dead-letter-topic="$DEAD_TOPIC" \
  --max-delivery-attempts=10 "${G[@]}"
# Pub/Sub's service agent forwards dead letters: it publishes to the dead-letter
# topic and acknowledges on the source subscription.
run gcloud pubsub topics add-iam-policy-binding "$DEAD_TOPIC" --member="serviceAccount:$PUBSUB_AGENT" \
  --role=roles/pubsub.publisher "${G[@]}"
run gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --member="serviceAccount:$PUBSUB_AGENT" \
  --role=roles/pubsub.subscriber "${G[@]}"

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

api_url="$(capture '<API_URL>' gcloud functions describe "$API_FN" --gen2 --region="$REGION" \
  --format='value(serviceConfig.uri)' "${G[@]}")"
echo "# done. API: $api_url  (Authorization: Bearer \$API_TOKEN)"
echo "# drop files under gs://$DATA_BUCKET/datasets/<dataset>/ or gs://$DATA_BUCKET/imports/<dataset>.zip"
