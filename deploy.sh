#!/usr/bin/env bash
# Deploy yolodrop to Google Cloud: build the three images, then apply the Terraform module
# (infra/terraform/environments/production), which makes everything else from infra/settings.json.
#
#   GOOGLE_CLOUD_PROJECT=... REGION=... DATA_BUCKET=... API_TOKEN=... ./deploy.sh [--plan] [--dry-run]
#
# API_TOKEN: a random secret of at least 32 characters (`openssl rand -base64 32`).
# Optional: FIRESTORE_LOCATION and BUCKET_LOCATION (default: REGION), TRAINER_REGION (a region with
# Cloud Run GPUs; default: REGION), TRAINER_GPU_TYPE (default: nvidia-l4), FIREBASE_WEB_API_KEY,
# GOOGLE_OAUTH_CLIENT_ID, JOIN_POLICY (default: open), JOIN_ALLOWLIST (space-separated), and
# TF_STATE_BUCKET (Terraform's state; default: PROJECT-yolodrop-tfstate, made when missing).
# Needs gcloud and terraform (>= 1.11). Re-running updates: the images are built for the current
# commit and Terraform changes what differs. --plan builds nothing and shows what an apply would
# change; --dry-run prints every command, the "is it there already?" checks included, and runs none.
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

DRY_RUN=0 PLAN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --plan) PLAN=1 ;;
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
  echo "usage: GOOGLE_CLOUD_PROJECT=... REGION=... DATA_BUCKET=... API_TOKEN=... $0 [--plan] [--dry-run]" >&2
  exit 2
fi

# The API refuses a weak token (common/platform/config.py): refuse it here, before anything is deployed.
if (( ${#API_TOKEN} < 32 )) || (( $(fold -w1 <<<"$API_TOKEN" | sort -u | wc -l) < 12 )); then
  echo "error: API_TOKEN must be a random secret of at least 32 characters, 12 of them different" \
    "(the API refuses a weaker one): use \$(openssl rand -base64 32)" >&2
  exit 2
fi

for tool in gcloud terraform; do
  (( DRY_RUN )) || command -v "$tool" >/dev/null || {
    echo "error: $tool is not installed; deploy.sh runs gcloud (the images) and terraform >= 1.11 (the rest)" >&2
    exit 2; }
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENVIRONMENT="$REPO/infra/terraform/environments/production"
PROJECT="$GOOGLE_CLOUD_PROJECT"
TRAINER_REGION="${TRAINER_REGION:-$REGION}"
STATE_BUCKET="${TF_STATE_BUCKET:-$PROJECT-yolodrop-tfstate}"
G=(--project="$PROJECT" --quiet)
# The few names this script needs before Terraform knows them, from infra/settings.json (Terraform's too).
eval "$(python3 - "$REPO/infra/settings.json" <<'PY'
import json, shlex, sys
settings = json.load(open(sys.argv[1]))
names = {"SECRET": settings["secrets"]["api_token"], "REPOSITORY": settings["trainer"]["image_repository"],
         "IMPORTER_IMAGE": settings["importer"]["image"],
         "RETIRED_SERVICES": " ".join(settings["retired"]["services"]),
         "RETIRED_SUBSCRIPTIONS": " ".join(settings["retired"]["subscriptions"])}
print("\n".join(f"S_{name}={shlex.quote(value)}" for name, value in names.items()))
PY
)"

exec 3>&1  # command echo goes to the real stdout even inside $(...)
show() { printf '+'; printf ' %q' "$@"; printf '\n'; } >&3

# run CMD...: print it; run it unless --dry-run.
run() { show "$@"; (( DRY_RUN )) || "$@"; }

# exists CMD...: a read-only check. In --dry-run it is printed, not run, and
# answers "missing" so that the command that follows is printed too.
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

tf() { run terraform -chdir="$ENVIRONMENT" "$@"; }

# The API token's version number: Terraform writes the token (write-only: in neither its plan nor its
# state) when the number changes. It is the secret's latest version when that holds API_TOKEN, else the next.
api_token_version() {
  local latest current
  latest="$(capture '<latest version>' gcloud secrets versions list "$S_SECRET" --limit=1 --sort-by=~createTime \
    --format='value(name.basename())' "${G[@]}" 2>/dev/null || true)"
  if (( DRY_RUN )); then echo "<the latest version when it holds \$API_TOKEN, else the next>"; return; fi
  [[ -n "$latest" ]] || { echo 1; return; }
  current="$(gcloud secrets versions access "$latest" --secret="$S_SECRET" "${G[@]}" 2>/dev/null || true)"
  if [[ "$current" == "$API_TOKEN" ]]; then echo "$latest"; else echo $(( latest + 1 )); fi
}

IMAGES="$TRAINER_REGION-docker.pkg.dev/$PROJECT/$S_REPOSITORY"
IMAGE_TAG="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo latest)"
TRAINER_IMAGE="$IMAGES/trainer:$IMAGE_TAG"
IMPORTER_IMAGE="$IMAGES/$S_IMPORTER_IMAGE:$IMAGE_TAG"
allowlist=""
for entry in ${JOIN_ALLOWLIST:-}; do allowlist+="${allowlist:+,}\"$entry\""; done

echo "# project=$PROJECT region=$REGION bucket=gs://$DATA_BUCKET state=gs://$STATE_BUCKET plan=$PLAN dry_run=$DRY_RUN"

echo "# 1. Terraform's state bucket and the environment"
if (( ! PLAN )) && ! exists gcloud storage buckets describe "gs://$STATE_BUCKET" "${G[@]}"; then
  run gcloud storage buckets create "gs://$STATE_BUCKET" --location="${BUCKET_LOCATION:-$REGION}" \
    --uniform-bucket-level-access --public-access-prevention "${G[@]}"
  run gcloud storage buckets update "gs://$STATE_BUCKET" --versioning "${G[@]}"
fi
tf init -input=false -reconfigure -backend-config="bucket=$STATE_BUCKET"
vars=(-var="project=$PROJECT" -var="region=$REGION" -var="bucket=$DATA_BUCKET"
      -var="bucket_location=${BUCKET_LOCATION:-$REGION}" -var="firestore_location=${FIRESTORE_LOCATION:-$REGION}"
      -var="trainer_region=$TRAINER_REGION" -var="trainer_gpu_type=${TRAINER_GPU_TYPE:-nvidia-l4}"
      -var="trainer_image=$TRAINER_IMAGE" -var="importer_image=$IMPORTER_IMAGE"
      -var="api_token_version=$(api_token_version)"
      -var="firebase_web_api_key=${FIREBASE_WEB_API_KEY:-}" -var="google_oauth_client_id=${GOOGLE_OAUTH_CLIENT_ID:-}"
      -var="join_policy=${JOIN_POLICY:-open}" -var="join_allowlist=[$allowlist]")
export TF_VAR_api_token="$API_TOKEN"  # ephemeral: never on a command line, in the plan or in the state

if (( PLAN )); then
  tf plan -input=false "${vars[@]}"
  exit 0
fi

echo "# 2. the image repository: the module's, applied alone the first time so that the images have a place"
exists gcloud artifacts repositories describe "$S_REPOSITORY" --location="$TRAINER_REGION" "${G[@]}" ||
  tf apply -input=false -auto-approve -target=module.yolodrop.google_artifact_registry_repository.images "${vars[@]}"

echo "# 3. the images, built by Cloud Build for commit $IMAGE_TAG"
if (( DRY_RUN )); then
  STAGE_ROOT='<tmpdir>'
else
  STAGE_ROOT="$(mktemp -d)"
  trap 'rm -rf "$STAGE_ROOT"' EXIT
fi
# stage NAME DOCKERFILE FOLDER...: a build context of common/ and the FOLDERs (paths in the repository) with
# DOCKERFILE at its root, so that Cloud Build uploads only what the image holds.
stage() {
  local context="$STAGE_ROOT/$1-image" dockerfile="$2" folder
  shift 2
  run mkdir -p "$context"
  for folder in common "$@"; do
    [[ "$folder" != */* ]] || run mkdir -p "$context/${folder%/*}"
    run cp -R "$REPO/$folder" "$context/$folder"
  done
  run cp "$REPO/$dockerfile" "$context/Dockerfile"
  run find "$context" -name __pycache__ -prune -exec rm -rf {} +
}
run gcloud builds submit "$REPO" --config="$REPO/infra/cloudbuild.trainer.yaml" \
  --substitutions="_IMAGE=$TRAINER_IMAGE" "${G[@]}"
stage "$S_IMPORTER_IMAGE" jobs/importer/Dockerfile jobs
run gcloud builds submit "$STAGE_ROOT/$S_IMPORTER_IMAGE-image" --tag="$IMPORTER_IMAGE" "${G[@]}"

echo "# 4. everything else, as infra/terraform describes it"
tf apply -input=false -auto-approve "${vars[@]}"

echo "# 5. what this deployment no longer runs, where a deploy before it left it (settings' retired)"
for service in $S_RETIRED_SERVICES; do
  when_exists gcloud run services describe "$service" --region="$REGION" "${G[@]}" -- \
    gcloud run services delete "$service" --region="$REGION" "${G[@]}"
done
for subscription in $S_RETIRED_SUBSCRIPTIONS; do
  when_exists gcloud pubsub subscriptions describe "$subscription" "${G[@]}" -- \
    gcloud pubsub subscriptions delete "$subscription" "${G[@]}"
done

api_url="$(capture '<API_URL>' terraform -chdir="$ENVIRONMENT" output -raw api_url)"
echo "# done. API: $api_url  (Authorization: Bearer \$API_TOKEN)"
echo "# drop files under gs://$DATA_BUCKET/datasets/<dataset>/ or gs://$DATA_BUCKET/imports/<dataset>.zip"
