"""Configuration, read from the environment in one place.

Required settings raise a KeyError naming the variable the first time they are
needed; nothing silently falls back to None. The emulator variables
(STORAGE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST) are read
by the client libraries themselves: set them and the same code runs locally.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from common.domain import accelerators

TRAINING_TOPIC = "training-requests"
PROGRESS_TOPIC = "training-progress"
DATASET_JOBS_TOPIC = "dataset-jobs"
WATCH_TOPIC = "training-watch"
EXPORT_TOPIC = "export-requests"
IMPORT_TOPIC = "import-requests"
INGEST_SUBSCRIPTION = "ingest-push"


def project() -> str:
    """The Google Cloud project every client works in."""
    return os.environ["GOOGLE_CLOUD_PROJECT"]


def data_bucket() -> str:
    """The bucket people drop files into; events of other buckets are ignored."""
    return os.environ["DATA_BUCKET"]


def api_token() -> str:
    """The administrator's bearer token the API accepts (a random secret: api_secrets_problem)."""
    return os.environ["API_TOKEN"]


def page_token_secret() -> str:
    """Signs the API's page tokens: a random secret of its own, so that a page token tells nothing of
    API_TOKEN (each one is an HMAC anyone may hold)."""
    return os.environ["PAGE_TOKEN_SECRET"]


# A secret the API holds: at least this many characters, this many of them different (a random one, e.g.
# `openssl rand -base64 32`, passes; a word repeated does not).
MIN_SECRET_CHARACTERS, MIN_SECRET_DISTINCT = 32, 12


def api_secrets_problem() -> str | None:
    """What is wrong with the API's secrets (API_TOKEN, PAGE_TOKEN_SECRET), or None: the API refuses to
    start with a weak one or with the two the same."""
    secrets = {name: os.environ.get(name, "") for name in ("API_TOKEN", "PAGE_TOKEN_SECRET")}
    for name, value in secrets.items():
        if len(value) < MIN_SECRET_CHARACTERS or len(set(value)) < MIN_SECRET_DISTINCT:
            return (f"{name} must be a random secret of at least {MIN_SECRET_CHARACTERS} characters, "
                    f"{MIN_SECRET_DISTINCT} of them different (it has {len(value)}, {len(set(value))} different): "
                    f"set it to the output of `openssl rand -base64 32`")
    if secrets["API_TOKEN"] == secrets["PAGE_TOKEN_SECRET"]:
        return "PAGE_TOKEN_SECRET must differ from API_TOKEN: set it to the output of `openssl rand -base64 32`"
    return None


def ingest_subscription() -> str:
    """The subscription that pushes the storage notifications to the ingest function (its delivery marks)."""
    return os.environ.get("INGEST_SUBSCRIPTION", INGEST_SUBSCRIPTION)


def ingest_batch_size() -> int:
    """Notifications one ingest instance indexes together at most (one transaction)."""
    return int(os.environ.get("INGEST_BATCH_SIZE", "100"))


def ingest_group_wait_seconds() -> float:
    """How long the first notification of a group waits for others at its ingest instance (group commit)."""
    return float(os.environ.get("INGEST_GROUP_WAIT_MS", "5")) / 1000


def ingest_read_threads() -> int:
    """Files of one group an ingest instance reads (and identifies) at once: their downloads overlap. More
    than the cores: a download mostly waits on the network."""
    return int(os.environ.get("INGEST_READ_THREADS", "8"))


def cloud_deadline() -> float:
    """Seconds one Firestore call of an event function may take, retries included."""
    return float(os.environ.get("CLOUD_DEADLINE_SECONDS", "60"))


def api_deadline() -> float:
    """Seconds one cloud call of the API may take: an HTTP request must answer."""
    return float(os.environ.get("API_DEADLINE_SECONDS", "10"))


def rate_limit() -> tuple[int, int]:
    """(requests, seconds): how many expensive requests (training, uploads,
    exports, auto-labelling) one person may make per window."""
    return int(os.environ.get("RATE_LIMIT_REQUESTS", "30")), int(os.environ.get("RATE_LIMIT_SECONDS", "60"))


def api_max_body_bytes() -> int:
    """Bytes of one JSON request body the API reads at most (a 413 beyond): the largest it takes, an
    upload of 1000 files with their paths, is about 1.2 MB."""
    return int(os.environ.get("API_MAX_BODY_BYTES", str(2 * 1024 ** 2)))


def max_upload_bytes() -> int:
    """The largest one file an upload session is handed out for."""
    return int(os.environ.get("MAX_UPLOAD_BYTES", str(2 * 1024 ** 3)))


def training_topic() -> str:
    """Where POST /training publishes training requests."""
    return os.environ.get("TRAINING_TOPIC", TRAINING_TOPIC)


def dataset_job_chunk_size() -> int:
    """Files per chunk of a dataset job (one message, one function call each)."""
    return int(os.environ.get("DATASET_JOB_CHUNK_SIZE", "200"))


def dataset_jobs_topic() -> str:
    """Where dataset jobs (revalidate, remap, auto-label, accept) are planned and fanned out in chunks."""
    return os.environ.get("DATASET_JOBS_TOPIC", DATASET_JOBS_TOPIC)


def progress_topic() -> str:
    """Where the trainer publishes its progress events."""
    return os.environ.get("PROGRESS_TOPIC", PROGRESS_TOPIC)


def trainer_launcher() -> str:
    """cloud-run or local; unset: local next to the emulators, else cloud-run."""
    return os.environ.get("TRAINER_LAUNCHER") or ("local" if os.environ.get("PUBSUB_EMULATOR_HOST") else "cloud-run")


def trainer_job() -> str:
    """The Cloud Run Job the training function runs (cloud-run launcher)."""
    return os.environ["TRAINER_JOB"]


def trainer_region() -> str:
    """The region of the trainer's Cloud Run Job."""
    return os.environ["TRAINER_REGION"]


def trainer_log_dir() -> Path:
    """Local launcher only: where trainer-<job>.log goes (the temp directory unset)."""
    return Path(os.environ.get("TRAINER_LOG_DIR") or tempfile.gettempdir())


def trainer_accelerator_types() -> tuple[str, ...]:
    """The GPU types a training request may ask several of (`accelerator: {type, count}`, run as a Vertex AI
    custom job), separated by spaces or commas, e.g. nvidia-l4 (infra/settings.json trainer.vertex; the types
    common/domain/accelerators.py knows). Empty: every training runs on the trainer's Cloud Run Job, one GPU."""
    return tuple(os.environ.get("TRAINER_ACCELERATOR_TYPES", "").replace(",", " ").split())


def trainer_max_accelerators() -> int:
    """The most GPUs one training may ask for (`accelerator.count`)."""
    return _int("TRAINER_MAX_ACCELERATORS", 1)


def trainer_accelerator_limits() -> accelerators.Limits:
    """The GPUs the operator lets one training ask for (the two settings above)."""
    return accelerators.Limits(trainer_accelerator_types(), trainer_max_accelerators())


def trainer_vertex_region() -> str:
    """Where the Vertex AI custom jobs of trainings on several GPUs run (TRAINER_REGION unset)."""
    return os.environ.get("TRAINER_VERTEX_REGION") or trainer_region()


def trainer_image() -> str:
    """The trainer image a Vertex AI custom job runs (the Cloud Run Job's)."""
    return os.environ["TRAINER_IMAGE"]


def trainer_service_account() -> str:
    """The e-mail of the trainer's service account, which a Vertex AI custom job runs as."""
    return os.environ["TRAINER_SERVICE_ACCOUNT"]


def trainer_vertex_timeout_seconds() -> int:
    """How long one Vertex AI custom job of the trainer may run; a longer training continues in the next one
    from its bucket checkpoint, as on the Cloud Run Job (docs/training.md, Longer than a task)."""
    return _int("TRAINER_VERTEX_TIMEOUT_SECONDS", 86400)


def base_model_pins() -> str:
    """The operator's SHA-256 pins of official pretrained weights (common.domain.base_models)."""
    return os.environ.get("BASE_MODEL_SHA256", "")


def predict_threads() -> int | None:
    """ONNX Runtime's threads per inference; unset: the CPUs this instance may use (its quota, not the host's)."""
    value = os.environ.get("PREDICT_THREADS")
    return int(value) if value else None


def predict_models_cached() -> int:
    """How many ONNX models one prediction instance keeps loaded (least recently used goes first)."""
    return int(os.environ.get("PREDICT_MODELS_CACHED", "4"))


def predict_models_cached_bytes() -> int:
    """ONNX bytes the models one prediction instance keeps loaded may hold together (the newest always stays)."""
    return int(os.environ.get("PREDICT_MODELS_CACHED_BYTES", str(600 * 1024 ** 2)))


def predict_max_bytes() -> int:
    """Bytes of images one prediction request may bring (its body, or the gs:// objects it names) (a 413 beyond)."""
    return int(os.environ.get("PREDICT_MAX_BYTES", str(32 * 1024 ** 2)))


def predict_max_pixels() -> int:
    """Pixels of one image prediction decodes at most (larger ones fail with image_too_large, undecoded): what
    the function's memory allows (docs/security.md, "Prediction")."""
    return int(os.environ.get("PREDICT_MAX_PIXELS", "50000000"))


def predict_rate_limit() -> tuple[int, int]:
    """(requests, seconds): prediction requests one person may make per window, from PREDICT_RATE_LIMIT
    "requests/seconds" (a 429 beyond; the administrator is not limited)."""
    return rate_limit_of("prediction")


def watch_topic() -> str:
    """The topic whose messages make the watch sweep the unfinished training jobs."""
    return os.environ.get("WATCH_TOPIC", WATCH_TOPIC)


def watch_grace_seconds() -> float:
    """How long after its execution ended a job may still receive its final event."""
    return float(os.environ.get("WATCH_GRACE_SECONDS", "120"))


def reconcile_objects_per_run() -> int:
    """Objects one reconciliation run lists at most (whole datasets: the next run goes on from the dataset after
    the last one it compared)."""
    return int(os.environ.get("RECONCILE_OBJECTS_PER_RUN", "100000"))


def reconcile_repairs_per_run() -> int:
    """Differences one reconciliation run repairs at most (the next run repairs the rest)."""
    return int(os.environ.get("RECONCILE_REPAIRS_PER_RUN", "1000"))


def reconcile_grace_seconds() -> float:
    """How old an object's last write must be before reconciliation repairs it: younger, its own event may still
    be on its way to ingest."""
    return float(os.environ.get("RECONCILE_GRACE_SECONDS", "900"))


def job_stall_seconds() -> float:
    """How long a job may go without a unit done before the watch asks for its messages again: longer than
    a unit may take (a function's timeout, 540 s)."""
    return float(os.environ.get("JOB_STALL_SECONDS", "600"))


def watch_interval_seconds() -> float:
    """Local stack only: how often its scheduler asks for a sweep (Cloud Scheduler does in production)."""
    return float(os.environ.get("WATCH_INTERVAL_SECONDS", "1"))


def export_topic() -> str:
    """Where the API publishes version and export requests."""
    return os.environ.get("EXPORT_TOPIC", EXPORT_TOPIC)


def export_part_files() -> int:
    """Images one part of an export holds at most (common/domain/export_parts.py)."""
    return int(os.environ.get("EXPORT_PART_FILES", "1000"))


def export_call_seconds() -> float:
    """Seconds one call of the export function writes parts before it hands the rest to a new call (the
    function's 540 s timeout less the time to finish the part under way and hand over)."""
    return float(os.environ.get("EXPORT_CALL_SECONDS", "420"))


def export_lease_seconds() -> float:
    """Seconds an export's claim holds without a heartbeat (a beat every quarter of it): after that, a
    delivery takes it over. What a killed call costs in waiting; a late writer cannot harm (parts are
    committed only if absent)."""
    return float(os.environ.get("EXPORT_LEASE_SECONDS", "60"))


def auth_emulator_host() -> str | None:
    """The Firebase Auth emulator (host:port) the page signs people in with; unset in production."""
    return os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") or None


def firebase_web_api_key() -> str | None:
    """The Firebase web API key the page sends to Google's Identity Toolkit (public by design)."""
    return os.environ.get("FIREBASE_WEB_API_KEY") or None


def google_oauth_client_id() -> str | None:
    """The OAuth web client the page signs people in to Google with (its redirect URIs must list the page's URL,
    and the Firebase project's Google provider must accept it); unset: no Google sign-in in production."""
    return os.environ.get("GOOGLE_OAUTH_CLIENT_ID") or None


def predict_url() -> str | None:
    """The prediction function's URL, for the page's try-it."""
    return os.environ.get("PREDICT_URL") or None


def import_topic() -> str:
    """Where the API and the ingest function publish import requests."""
    return os.environ.get("IMPORT_TOPIC", IMPORT_TOPIC)


def importer_launcher() -> str:
    """cloud-run or local, as for the trainer (TRAINER_LAUNCHER decides both when IMPORTER_LAUNCHER is unset)."""
    return os.environ.get("IMPORTER_LAUNCHER") or trainer_launcher()


def importer_job() -> str:
    """The Cloud Run Job that unpacks imports."""
    return os.environ["IMPORTER_JOB"]


def importer_region() -> str:
    """The region of the import Cloud Run Job (TRAINER_REGION unset)."""
    return os.environ.get("IMPORTER_REGION") or trainer_region()


def import_tasks() -> int:
    """Parallel tasks of an import that can be read at random (a zip by ranges)."""
    return int(os.environ.get("IMPORT_TASKS", "4"))


def import_task_retries() -> int:
    """Times a task that died is run again (Cloud Run's max_retries; the local launcher does the same)."""
    return int(os.environ.get("IMPORT_TASK_RETRIES", "3"))


def import_inline_max_bytes() -> int:
    """A dropped imports/<dataset>.zip up to this size is unpacked in the ingest call; larger ones start an import
    job."""
    return int(os.environ.get("IMPORT_INLINE_MAX_BYTES", str(64 * 1024 ** 2)))


def import_max_bytes() -> int:
    """The largest archive an import reads (and stages)."""
    return int(os.environ.get("IMPORT_MAX_BYTES", str(100 * 1024 ** 3)))


def import_download_seconds() -> float:
    """How long reading a URL that cannot be read by ranges may take (it is copied into the bucket first)."""
    return float(os.environ.get("IMPORT_DOWNLOAD_SECONDS", str(6 * 3600)))


def import_allow_loopback() -> bool:
    """Local stack and tests only: let imports read URLs on this machine (127.0.0.0/8, ::1). Production never sets
    it."""
    return os.environ.get("IMPORT_ALLOW_LOOPBACK") == "1"


def import_log_dir() -> Path:
    """Local launcher only: where the importer's task logs go (TRAINER_LOG_DIR's place unset)."""
    return Path(os.environ.get("IMPORT_LOG_DIR") or trainer_log_dir())


def import_coco_max_bytes() -> int:
    """The most bytes of COCO annotation JSON one import reads (one file, and all its files together). Read as a
    stream, it takes at most about twice its size in memory (common.domain.coco_import): the default fits the
    importer's 2 GiB with its uploads."""
    return int(os.environ.get("IMPORT_COCO_MAX_BYTES", str(256 * 1024 ** 2)))


def import_buckets() -> frozenset[str]:
    """Buckets besides the data bucket whose objects an import may read by gs:// (IMPORT_BUCKETS, separated by
    spaces or commas; infra/settings.json importer.buckets, default none). The importer reads them with its own
    account, so only an operator names them; anything else is imported by a signed URL."""
    return frozenset(os.environ.get("IMPORT_BUCKETS", "").replace(",", " ").split()) | {data_bucket()}


# ---- Who may join, quotas and limits (docs/security.md, "Accounts, quotas and limits") ----

JOIN_POLICIES = ("open", "allowlist", "invitation")


def join_policy() -> str:
    """Who may use the API besides the administrator (a verified e-mail is always required): open (anyone),
    allowlist (JOIN_ALLOWLIST's addresses and domains) or invitation (people a dataset invited or made member)."""
    policy = os.environ.get("JOIN_POLICY", "open")
    if policy not in JOIN_POLICIES:
        raise ValueError(f"JOIN_POLICY must be one of {', '.join(JOIN_POLICIES)}, got {policy!r}")
    return policy


def join_allowlist() -> tuple[str, ...]:
    """Addresses (ann@example.com) and domains (example.com, or @example.com) the allowlist policy admits,
    separated by commas or spaces."""
    return tuple(item.lower() for item in re.split(r"[,\s]+", os.environ.get("JOIN_ALLOWLIST", "")) if item)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def quota_stored_bytes() -> int:
    """Bytes one person may upload through upload sessions, in all (declared sizes of the sessions handed out)."""
    return _int("QUOTA_STORED_BYTES", 50 * 1024 ** 3)


def quota_datasets() -> int:
    """Datasets one person may own."""
    return _int("QUOTA_DATASETS", 20)


def quota_concurrent_training() -> int:
    """Unfinished (queued or running) training jobs one person may have at once."""
    return _int("QUOTA_CONCURRENT_TRAINING", 2)


def quota_gpu_hours_per_day() -> float:
    """Trainer hours (recorded runtimes of the person's jobs started this UTC day) one person may use a day."""
    return float(os.environ.get("QUOTA_GPU_HOURS_PER_DAY", "8"))


def training_max_epochs() -> int:
    """The most epochs one training request may ask for."""
    return _int("TRAINING_MAX_EPOCHS", 300)


def training_max_imgsz() -> int:
    """The largest image size one training request may ask for."""
    return _int("TRAINING_MAX_IMGSZ", 1280)


def max_upload_files() -> int:
    """Files one upload request may ask sessions for."""
    return _int("MAX_UPLOAD_FILES", 500)


def max_upload_request_bytes() -> int:
    """Declared bytes of all the files of one upload request together."""
    return _int("MAX_UPLOAD_REQUEST_BYTES", 10 * 1024 ** 3)


RATE_LIMIT_KINDS = {"datasets": (20, 3600), "api_keys": (10, 3600), "classes": (30, 60),  # (requests, seconds)
                    "prediction": (120, 60)}
RATE_LIMIT_VARIABLES = {"prediction": "PREDICT_RATE_LIMIT"}  # a kind whose variable is older than RATE_LIMIT_<KIND>


def rate_limit_of(kind: str) -> tuple[int, int]:
    """(requests, seconds) one person may make of `kind`: RATE_LIMIT_<KIND> (or the kind's own variable above)
    as "requests/seconds" when set, else the kind's default above, else RATE_LIMIT_REQUESTS/RATE_LIMIT_SECONDS."""
    value = os.environ.get(RATE_LIMIT_VARIABLES.get(kind, f"RATE_LIMIT_{kind.upper()}"))
    if value:
        requests, _, seconds = value.partition("/")
        return int(requests), int(seconds)
    return RATE_LIMIT_KINDS.get(kind) or rate_limit()


def rate_limit_global_factor() -> int:
    """Everyone together may make this many times one person's limit of a kind per window (0: no ceiling)."""
    return _int("RATE_LIMIT_GLOBAL_FACTOR", 50)


def api_key_days() -> tuple[int, int]:
    """(default, maximum) days an API key lives."""
    return _int("API_KEY_DEFAULT_DAYS", 90), _int("API_KEY_MAX_DAYS", 365)


def download_url_seconds() -> int:
    """How long a download URL the API hands out (an export's zip, a model's weights) works: 15 minutes by default,
    at most the 7 days a V4 signed URL may live."""
    return min(int(os.environ.get("DOWNLOAD_URL_SECONDS", "900")), 7 * 24 * 3600)


def predict_access_seconds() -> float:
    """How long a prediction instance trusts that a caller may see a model's dataset before reading its members
    again (only an admission is kept; 0: read on every request)."""
    return float(os.environ.get("PREDICT_ACCESS_SECONDS", "5"))


def account_check_seconds() -> float:
    """How long an instance trusts what it read of an account (disabled, deleted, admitted) before reading again."""
    return float(os.environ.get("ACCOUNT_CHECK_SECONDS", "30"))
