"""The production configuration, checked offline: infra/terraform parsed with
python-hcl2 against infra/settings.json (the one source of names, sizes and
settings, which the local stack reads too) and against the code it deploys, and
deploy.sh's --dry-run (it builds the images and applies that Terraform).
`terraform fmt -check` and checkov run when they are installed; no provider is
needed (none can be downloaded here), so `terraform validate` is not run."""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "infra" / "terraform"
MODULE = TERRAFORM / "modules" / "yolodrop"
ENVIRONMENT = TERRAFORM / "environments" / "production"
SETTINGS = json.loads((REPO / "infra" / "settings.json").read_text())
FOLDERS = sorted(path.parent.name for path in (REPO / "functions").glob("*/main.py"))
INGEST = SETTINGS["functions"]["ingest"]  # the bucket's notifications, pushed (group commit inside an instance)
RETIRED = SETTINGS["retired"]  # what earlier deployments ran: the ingest worker
CHECKOV = REPO / ".venv" / "checkov" / "bin" / "checkov"
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
STRONG_TOKEN = "deploy-dry-run-0123456789abcdefghijkl"  # deploy.sh refuses a token the API would refuse
# Every role the module grants, and to whom: a new one is a decision, made here.
ROLES = {
    "roles/datastore.user", "roles/storage.objectUser", "roles/storage.objectViewer", "roles/pubsub.publisher",
    "roles/pubsub.subscriber", "roles/secretmanager.secretAccessor", "roles/run.invoker",
    "roles/run.jobsExecutorWithOverrides", "roles/run.viewer", "roles/iam.serviceAccountUser",
    "roles/iam.serviceAccountTokenCreator", "roles/aiplatform.user", "roles/aiplatform.viewer",
}


# ---- reading the configuration ---------------------------------------------------------

def _plain(value):
    """python-hcl2's tree without its quoting and markers: "\"x\"" -> "x", blocks as lists."""
    if isinstance(value, dict):
        return {_unquote(k): _plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return _unquote(value) if isinstance(value, str) else value


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


@cache
def parsed(folder: Path) -> dict:
    """{"resource": {type: {name: body}}, "data": ..., "locals": {...}, "variable": ..., "module": ...}."""
    merged: dict = {"resource": {}, "data": {}, "locals": {}, "variable": {}, "module": {}, "output": {}}
    for path in sorted(folder.glob("*.tf")):
        tree = _plain(hcl2.loads(path.read_text()))
        for kind in ("resource", "data"):
            for block in tree.get(kind, []):
                for rtype, named in block.items():
                    merged[kind].setdefault(rtype, {}).update(named)
        for kind in ("locals", "variable", "module", "output"):
            for block in tree.get(kind, []):
                merged[kind].update(block)
    return merged


def resource(rtype: str, name: str) -> dict:
    return parsed(MODULE)["resource"][rtype][name]


def all_resources() -> list[tuple[str, str, dict]]:
    return [(t, n, body) for t, named in parsed(MODULE)["resource"].items() for n, body in named.items()]


def pushed() -> dict:
    return {key: f for key, f in SETTINGS["functions"].items() if f["topic"]}


def env_names() -> set[str]:
    """Every environment variable settings give a function, the trainer or the importer."""
    names = {n for f in SETTINGS["functions"].values() for n in f["env"]}
    return names | set(SETTINGS["trainer"]["env"]) | set(SETTINGS["importer"]["env"])


# ---- settings and the code -------------------------------------------------------------

def entry_points(folder: str) -> set[str]:
    tree = ast.parse((REPO / "functions" / folder / "main.py").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and any(
        "functions_framework" in ast.unparse(d) for d in node.decorator_list)}


def test_settings_name_every_function_folder_and_its_entry_point():
    assert sorted(SETTINGS["functions"]) == FOLDERS
    for key, function in SETTINGS["functions"].items():
        assert function["entry_point"] in entry_points(key), f"functions/{key}/main.py has no {function['entry_point']}"


def test_settings_topics_and_subscriptions_are_the_codes_defaults():
    """The local stack and Terraform read them from the settings; the code's own defaults (used where no
    variable names a topic) are the one copy that can drift."""
    from common.platform import config
    topics = SETTINGS["topics"]
    assert {config.TRAINING_TOPIC, config.PROGRESS_TOPIC, config.WATCH_TOPIC, config.DATASET_JOBS_TOPIC,
            config.EXPORT_TOPIC, config.IMPORT_TOPIC, topics[INGEST["topic"]]} == set(topics.values())
    # Ingest's subscription is the code's default (the name its delivery marks carry).
    assert INGEST["subscription"] == config.INGEST_SUBSCRIPTION


def test_every_variable_the_config_module_requires_is_set_where_it_is_read():
    required = set(re.findall(r'os\.environ\["([A-Z_]+)"\]', (REPO / "common/platform/config.py").read_text()))
    assert required == {"GOOGLE_CLOUD_PROJECT", "DATA_BUCKET", "API_TOKEN", "PAGE_TOKEN_SECRET", "TRAINER_JOB",
                        "TRAINER_REGION", "IMPORTER_JOB", "TRAINER_IMAGE", "TRAINER_SERVICE_ACCOUNT"}, \
        "config.py requires a new variable: say here which function needs it, and set it in infra/settings.json"
    for key, function in SETTINGS["functions"].items():
        given = set(function["env"]) | set(function["secret_env"])
        assert {"GOOGLE_CLOUD_PROJECT", "DATA_BUCKET"} <= given, key
    assert {"GOOGLE_CLOUD_PROJECT", "DATA_BUCKET", "DATASET_JOBS_TOPIC", "INGEST_SUBSCRIPTION",
            "INGEST_BATCH_SIZE", "INGEST_GROUP_WAIT_MS"} <= set(INGEST["env"])
    assert SETTINGS["functions"]["api"]["secret_env"] == {"API_TOKEN": "api_token",
                                                          "PAGE_TOKEN_SECRET": "page_token_secret"}
    assert SETTINGS["functions"]["predict"]["secret_env"] == {"API_TOKEN": "api_token"}
    assert {"TRAINER_JOB", "TRAINER_REGION", "TRAINER_LAUNCHER"} <= set(SETTINGS["functions"]["train"]["env"])
    # ... and a training on several GPUs as a Vertex AI custom job of the trainer's image, as its account
    assert {"TRAINER_IMAGE", "TRAINER_SERVICE_ACCOUNT", "TRAINER_ACCELERATOR_TYPES", "TRAINER_MAX_ACCELERATORS",
            "TRAINER_VERTEX_REGION", "PROGRESS_TOPIC"} <= set(SETTINGS["functions"]["train"]["env"])
    assert {"GOOGLE_CLOUD_PROJECT", "PROGRESS_TOPIC"} <= set(SETTINGS["trainer"]["env"])
    # The imports function launches the importer on Cloud Run; the API and ingest ask for imports, and so
    # does the importer's stage phase; both functions know where an archive stops being unpacked inline.
    assert {"IMPORTER_JOB", "IMPORTER_REGION", "IMPORTER_LAUNCHER", "IMPORT_TASKS", "IMPORT_TASK_RETRIES"} <= \
        set(SETTINGS["functions"]["imports"]["env"])
    for env in (SETTINGS["functions"]["api"]["env"], INGEST["env"]):
        assert {"IMPORT_TOPIC", "IMPORT_INLINE_MAX_BYTES"} <= set(env)
    assert {"GOOGLE_CLOUD_PROJECT", "DATA_BUCKET", "IMPORT_TOPIC"} <= set(SETTINGS["importer"]["env"])


def test_production_never_lets_imports_read_loopback_addresses_and_the_local_stack_does():
    from infra.local import stack
    assert "IMPORT_ALLOW_LOOPBACK" not in env_names()
    assert "IMPORT_ALLOW_LOOPBACK" not in parsed(MODULE)["locals"]["env_values"]
    assert "IMPORT_ALLOW_LOOPBACK" not in (REPO / "deploy.sh").read_text()
    assert stack.Stack(state_dir=REPO / ".local", ports=stack.PORT_DEFAULTS).env()["IMPORT_ALLOW_LOOPBACK"] == "1"


def test_every_variable_settings_give_has_a_value_in_terraform_and_is_read_by_the_code():
    names = env_names()
    assert names <= set(parsed(MODULE)["locals"]["env_values"]), "infra/terraform/.../settings.tf env_values"
    code = "".join(path.read_text() for path in [REPO / "common/platform/config.py", *REPO.glob("jobs/*/*.py")])
    # THREADS is functions-framework's own (its server's threads), given to ingest alone: its group commit needs
    # as many requests at once as its concurrency
    assert all(f'"{name}"' in code for name in names - {"THREADS"}), "a variable no code reads"
    assert [key for key, f in SETTINGS["functions"].items() if "THREADS" in f["env"]] == ["ingest"]
    assert parsed(MODULE)["locals"]["env_values"]["THREADS"] == "${tostring(local.functions.ingest.concurrency)}"


# ---- Terraform: functions, subscriptions, dead letters ---------------------------------

def test_terraform_deploys_each_settings_function_from_its_own_folder():
    function = resource("google_cloudfunctions2_function", "function")
    assert function["for_each"] == "${local.functions}" and function["name"] == "${each.value.name}"
    build = function["build_config"][0]
    assert (build["runtime"], build["entry_point"]) == ("${local.settings.runtime}", "${each.value.entry_point}")
    assert build["source"][0]["storage_source"][0]["object"] == \
        "${google_storage_bucket_object.source[each.key].name}"
    service = function["service_config"][0]
    assert service["environment_variables"] == "${{for name in each.value.env : name => local.env_values[name]}}"
    assert service["service_account_email"] == "${google_service_account.function[each.key].email}"
    archive = parsed(MODULE)["data"]["archive_file"]["source"]
    contents = [source["content"] for source in archive["source"]]
    assert "${file(\"${local.repo}/functions/${each.key}/main.py\")}" in contents
    assert "${file(\"${local.repo}/functions/${each.key}/requirements.txt\")}" in contents
    assert archive["dynamic"][0]["source"]["for_each"] == "${local.common_files}"


def test_topic_fed_functions_are_internal_and_pushed_by_their_own_subscription_with_a_dead_letter_policy():
    function = resource("google_cloudfunctions2_function", "function")
    assert function["service_config"][0]["ingress_settings"] == \
        '${each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"}'
    assert all(f["public"] is False for f in pushed().values())
    assert {key for key, f in SETTINGS["functions"].items() if f["public"]} == {"api", "predict"}
    push = resource("google_pubsub_subscription", "push")
    assert push["for_each"] == "${local.pushed_functions}" and push["name"] == "${each.value.subscription}"
    uri = "${google_cloudfunctions2_function.function[each.key].service_config[0].uri}"
    assert push["push_config"][0]["push_endpoint"] == uri
    assert push["push_config"][0]["oidc_token"][0] == {
        "service_account_email": "${google_service_account.push.email}", "audience": uri}
    assert push["dead_letter_policy"][0] == {
        "dead_letter_topic": "${google_pubsub_topic.dead_letter[each.value.topic].id}",
        "max_delivery_attempts": "${local.delivery.max_delivery_attempts}"}
    assert push["retry_policy"][0]["maximum_backoff"] == "${local.delivery.maximum_backoff}"


def test_every_topic_has_a_dead_letter_topic_whose_letters_are_kept():
    for name in ("topic", "dead_letter"):
        assert resource("google_pubsub_topic", name)["for_each"] == "${local.topics}"
    hold = resource("google_pubsub_subscription", "dead_letter_hold")
    assert hold["for_each"] == "${local.topics}"
    assert hold["topic"] == "${google_pubsub_topic.dead_letter[each.key].id}"
    assert hold["message_retention_duration"] == "${local.delivery.hold_retention}"
    assert all(f["topic"] in SETTINGS["topics"] for f in pushed().values())


# ---- Terraform: ingest, a function fed by the bucket's notifications ---------------------------

def test_ingest_is_a_function_pushed_the_bucket_notifications_that_scales_to_zero():
    """Like every topic-fed function: its push subscription (with the dead-letter policy), min instances 0, many
    requests per instance (the group commit needs them), its group's size and wait from the settings."""
    assert (INGEST["topic"], INGEST["public"], INGEST["min_instances"]) == ("gcs_events", False, 0)
    assert INGEST["concurrency"] > 1 and INGEST["batch_size"] >= 1 and 0 <= INGEST["group_wait_ms"] <= 100
    assert "ingest" in pushed()
    assert resource("google_pubsub_subscription", "push")["for_each"] == "${local.pushed_functions}"
    assert resource("google_cloudfunctions2_function", "function")["for_each"] == "${local.functions}"
    env_values = parsed(MODULE)["locals"]["env_values"]
    assert (env_values["INGEST_SUBSCRIPTION"], env_values["INGEST_BATCH_SIZE"], env_values["INGEST_GROUP_WAIT_MS"]) \
        == ("${local.functions.ingest.subscription}", "${tostring(local.functions.ingest.batch_size)}",
            "${tostring(local.functions.ingest.group_wait_ms)}")
    assert not [name for kind, name, _ in all_resources() if kind == "google_cloud_run_v2_service"], \
        "no service runs when nobody uses the deployment"


def test_nothing_of_the_deployment_runs_when_nobody_uses_it():
    assert {key: f["min_instances"] for key, f in SETTINGS["functions"].items() if f["min_instances"]} == {}


def test_ingest_takes_back_the_worker_account_and_does_what_the_worker_did():
    moved = [block for path in MODULE.glob("*.tf") for block in _plain(hcl2.loads(path.read_text())).get("moved", [])]
    assert {"from": "${google_service_account.ingest}", "to": '${google_service_account.function["ingest"]}'} in moved
    assert INGEST["service_account"] == "yd-ingest"  # the worker's: its grants are kept, not made again
    # Reads the bucket, writes what it unpacks and thumbnails, uses Firestore, publishes dataset jobs and import
    # requests: by its key "ingest" in local.runs_as, as every function.
    assert SETTINGS["object_writes"]["ingest"] == ["datasets/", "derived/thumbnails/"]
    assert "google_service_account.function[key].email" in parsed(MODULE)["locals"]["runs_as"]
    publishers = parsed(MODULE)["locals"]["topic_publishers"].values()
    assert {p["topic"] for p in publishers if p["function"] == "ingest"} == {"dataset_jobs", "import_requests"}


# ---- Terraform: the IAM the delivery needs, and nothing broader ------------------------

def test_the_delivery_chain_has_its_iam():
    storage_agent = resource("google_pubsub_topic_iam_member", "storage_agent_publishes_object_events")
    assert (storage_agent["topic"], storage_agent["role"]) == (
        '${google_pubsub_topic.topic["gcs_events"].name}', "roles/pubsub.publisher")
    assert "storage_agent" in storage_agent["member"]
    notification = resource("google_storage_notification", "object_events")
    assert notification["depends_on"] == ["${google_pubsub_topic_iam_member.storage_agent_publishes_object_events}"]
    assert notification["for_each"] == "${toset(local.settings.notification_prefixes)}"
    invoker = resource("google_cloud_run_service_iam_member", "push_invokes")
    assert (invoker["for_each"], invoker["role"]) == ("${local.pushed_functions}", "roles/run.invoker")
    assert invoker["member"] == "serviceAccount:${google_service_account.push.email}"
    agent = "${local.pubsub_agent}"
    assert resource("google_pubsub_topic_iam_member", "pubsub_agent_publishes_dead_letters")["member"] == agent
    acknowledges = resource("google_pubsub_subscription_iam_member", "pubsub_agent_acknowledges_dead_letters")
    assert (acknowledges["role"], acknowledges["member"]) == ("roles/pubsub.subscriber", agent)
    # ... on every subscription with a dead-letter policy: each push subscription.
    assert (acknowledges["for_each"], acknowledges["subscription"]) == (
        "${local.dead_lettering_subscriptions}", "${each.value}")
    dead_lettering = parsed(MODULE)["locals"]["dead_lettering_subscriptions"]
    assert "keys(local.pushed_functions)" in dead_lettering
    assert "google_pubsub_subscription.push[key].name" in dead_lettering
    signs = resource("google_service_account_iam_member", "pubsub_agent_signs_push_tokens")
    assert (signs["role"], signs["member"]) == ("roles/iam.serviceAccountTokenCreator", agent)


def test_the_api_signs_download_urls_as_itself_and_no_one_else():
    signs = resource("google_service_account_iam_member", "api_signs_download_urls")
    api = 'google_service_account.function["api"]'
    assert (signs["service_account_id"], signs["role"], signs["member"]) == (
        f"${{{api}.name}}", "roles/iam.serviceAccountTokenCreator", f"serviceAccount:${{{api}.email}}")


def granted_roles() -> set[str]:
    return {body["role"] for _, _, body in all_resources() if "role" in body and not body["role"].startswith("$")}


def test_no_role_is_broader_than_the_code_needs():
    roles = granted_roles()
    assert not roles & BASIC_ROLES and not [r for r in roles if r.lower().endswith("admin")], roles
    assert roles == ROLES, f"new roles {roles - ROLES}, roles no longer granted {ROLES - roles}"
    project_wide = [body["role"] for t, _, body in all_resources() if t == "google_project_iam_member"]
    assert project_wide == ["roles/datastore.user", "roles/aiplatform.user", "roles/aiplatform.viewer"], \
        "only Firestore and Vertex AI are granted project-wide (they have no finer IAM)"
    assert set(SETTINGS["object_writes"]) <= {*SETTINGS["functions"], "trainer", "importer"}
    # Pub/Sub subscriber only ever on one subscription (never on a topic or the project).
    subscribers = {(t, n) for t, n, body in all_resources() if body.get("role") == "roles/pubsub.subscriber"}
    assert subscribers == {("google_pubsub_subscription_iam_member", "pubsub_agent_acknowledges_dead_letters")}
    for name in ("train_runs_trainer", "watch_reads_executions"):  # on the trainer job, not the project
        assert resource("google_cloud_run_v2_job_iam_member", name)["name"] == "${google_cloud_run_v2_job.trainer.name}"
    for name in ("imports_runs_importer", "imports_reads_importer_executions"):  # on the importer job
        grant = resource("google_cloud_run_v2_job_iam_member", name)
        assert grant["name"] == "${google_cloud_run_v2_job.importer.name}"
        assert grant["member"] == 'serviceAccount:${google_service_account.function["imports"].email}'
    # The imports function only probes what is in the bucket; the importer writes it.
    assert "imports" not in SETTINGS["object_writes"] and "importer" in SETTINGS["object_writes"]


def test_the_importer_writes_the_bucket_uses_firestore_and_asks_for_its_next_phase():
    importer = "serviceAccount:${google_service_account.importer.email}"
    assert "importer = google_service_account.importer.email" in parsed(MODULE)["locals"]["bucket_users"]
    assert SETTINGS["object_writes"]["importer"] == ["datasets/", "derived/imports/"]
    publishes = resource("google_pubsub_topic_iam_member", "importer_publishes_import_requests")
    assert (publishes["topic"], publishes["role"], publishes["member"]) == (
        '${google_pubsub_topic.topic["import_requests"].name}', "roles/pubsub.publisher", importer)
    firestore = resource("google_project_iam_member", "firestore_user")
    assert (firestore["for_each"], firestore["member"]) == ("${local.firestore_users}", "serviceAccount:${each.value}")
    users = parsed(MODULE)["locals"]["firestore_users"]
    assert "google_service_account.importer.email" in users and "local.runs_as" in users
    publishers = {(p["function"], p["topic"]) for p in parsed(MODULE)["locals"]["topic_publishers"].values()}
    assert {("api", "import_requests"), ("ingest", "import_requests")} <= publishers
    acts = resource("google_service_account_iam_member", "imports_acts_as_importer")
    assert acts["service_account_id"] == "${google_service_account.importer.name}"


def test_each_function_runs_as_its_own_service_account():
    accounts = [f["service_account"] for f in SETTINGS["functions"].values()]
    accounts += [SETTINGS["trainer"]["service_account"],
                 SETTINGS["importer"]["service_account"], SETTINGS["push_service_account"]]
    assert len(set(accounts)) == len(accounts) and all(6 <= len(a) <= 30 for a in accounts)
    runs_as = parsed(MODULE)["locals"]["runs_as"]
    assert "keys(local.functions)" in runs_as


# ---- Terraform: storage, Firestore, the trainer, the watch -----------------------------

def test_the_bucket_location_is_the_one_variable_and_no_eventarc_trigger_needs_its_region():
    assert parsed(MODULE)["locals"]["bucket_location"] == "${coalesce(var.bucket_location, var.region)}"
    assert resource("google_storage_bucket", "data")["location"] == "${local.bucket_location}"
    assert parsed(ENVIRONMENT)["module"]["yolodrop"]["bucket_location"] == "${var.bucket_location}"
    function = resource("google_cloudfunctions2_function", "function")
    triggers = function.get("event_trigger", [])
    assert all(t.get("trigger_region") == "${local.bucket_location}" for t in triggers
               if "storage" in t.get("event_type", "")), "a storage trigger must be where the bucket is"
    assert "google_eventarc_trigger" not in parsed(MODULE)["resource"]


def test_firestore_indexes_come_from_the_one_json_list():
    assert parsed(MODULE)["locals"]["indexes"] == '${jsondecode(file("${local.repo}/infra/firestore.indexes.json"))}'
    assert resource("google_firestore_index", "composite")["for_each"] == "${local.composite_indexes}"
    assert resource("google_firestore_field", "exempt")["for_each"] == "${local.index_exemptions}"
    spec = json.loads((REPO / "infra" / "firestore.indexes.json").read_text())
    assert all(override["indexes"] == [] for override in spec["fieldOverrides"]), "only exemptions are supported"


def test_the_trainer_job_has_its_gpu_in_the_trainer_region():
    job = resource("google_cloud_run_v2_job", "trainer")
    assert job["location"] == "${var.trainer_region}" and job["name"] == "${local.trainer.job}"
    task = job["template"][0]["template"][0]
    assert task["node_selector"][0]["accelerator"] == "${var.trainer_gpu_type}"
    assert task["gpu_zonal_redundancy_disabled"] is True and task["max_retries"] == "${local.trainer.max_retries}"
    assert task["containers"][0]["resources"][0]["limits"]["nvidia.com/gpu"] == "${tostring(local.trainer.gpus)}"
    module_call = parsed(ENVIRONMENT)["module"]["yolodrop"]
    assert {"project", "region", "bucket", "trainer_region", "trainer_gpu_type"} <= set(module_call)


def test_the_trainer_job_reads_the_data_bucket_through_a_read_only_mount_it_names():
    task = resource("google_cloud_run_v2_job", "trainer")["template"][0]["template"][0]
    [volume] = task["volumes"]
    assert volume["gcs"][0] == {"bucket": "${google_storage_bucket.data.name}", "read_only": True}
    [container] = task["containers"]
    [mounted] = container["volume_mounts"]
    assert mounted["name"] == volume["name"]
    variables = {env["name"]: env["value"] for env in container["env"] if "name" in env}
    assert variables["TRAINER_DATA_MOUNT"] == mounted["mount_path"] == "${local.trainer_data_mount}"
    assert task["execution_environment"] == "EXECUTION_ENVIRONMENT_GEN2"


def test_the_importer_job_has_no_gpu_and_runs_beside_the_bucket_as_its_own_account():
    job = resource("google_cloud_run_v2_job", "importer")
    assert job["location"] == "${var.region}" and job["name"] == "${local.importer.job}"
    task = job["template"][0]["template"][0]
    assert task["service_account"] == "${google_service_account.importer.email}"
    assert task["max_retries"] == "${local.importer.max_retries}"
    assert task["timeout"] == "${local.importer.task_timeout_seconds}s"
    assert "node_selector" not in task and "gpu_zonal_redundancy_disabled" not in task
    container = task["containers"][0]
    assert container["image"] == "${var.importer_image}"
    assert container["resources"][0]["limits"] == {"cpu": "${local.importer.cpu}", "memory": "${local.importer.memory}"}
    assert container["dynamic"][0]["env"]["for_each"] == "${toset(local.importer.env)}"
    assert "gpus" not in SETTINGS["importer"]
    # The function launches the job where it is, with the settings' retries.
    env_values = parsed(MODULE)["locals"]["env_values"]
    assert (env_values["IMPORTER_JOB"], env_values["IMPORTER_REGION"], env_values["IMPORT_TASK_RETRIES"]) == (
        "${local.importer.job}", "${var.region}", "${tostring(local.importer.max_retries)}")
    assert parsed(ENVIRONMENT)["module"]["yolodrop"]["importer_image"] == "${var.importer_image}"


def test_the_importer_image_is_slim_python_without_cuda():
    dockerfile = (REPO / "jobs" / "importer" / "Dockerfile").read_text()
    instructions = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    assert re.fullmatch(r"FROM python:3\.11-slim\S*", instructions[0]), instructions[0]
    assert "cuda" not in dockerfile.lower() and "torch" not in (REPO / "jobs/importer/requirements.txt").read_text()
    assert "RUN pip install -r jobs/importer/requirements.txt" in dockerfile
    assert {"COPY common common", "COPY jobs jobs"} <= set(instructions)
    assert instructions[-1] == 'CMD ["python", "-m", "jobs.importer"]'


def test_the_watch_is_scheduled_onto_its_topic():
    job = resource("google_cloud_scheduler_job", "watch")
    assert job["schedule"] == "${local.settings.watch.schedule}"
    assert job["pubsub_target"][0]["topic_name"] == '${google_pubsub_topic.topic["training_watch"].id}'
    assert SETTINGS["functions"]["watch"]["topic"] == "training_watch"


# ---- deploy.sh: the images, then Terraform ----------------------------------------------

@cache
def deploy_commands(*options: str) -> list[list[str]]:
    env = {**os.environ, "GOOGLE_CLOUD_PROJECT": "p", "REGION": "r", "DATA_BUCKET": "b", "API_TOKEN": STRONG_TOKEN,
           "JOIN_ALLOWLIST": "ann@example.com example.org"}
    done = subprocess.run(["bash", str(REPO / "deploy.sh"), "--dry-run", *options], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert STRONG_TOKEN not in done.stdout, "the token is given to Terraform as TF_VAR_api_token, never shown"
    return [shlex.split(line)[1:] for line in done.stdout.splitlines() if line.startswith("+ ")]


def flags(command: list[str]) -> dict[str, str]:
    return dict(arg[2:].split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)


def terraform(verb: str, *options: str) -> list[list[str]]:
    return [c for c in deploy_commands(*options) if c[:3] == ["terraform", f"-chdir={ENVIRONMENT}", verb]]


def variables_given(command: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("-var=").split("=", 1) for arg in command if arg.startswith("-var="))


def test_deploy_builds_the_two_images_then_applies_the_environment_with_them():
    commands = deploy_commands()
    *bootstrap, apply = terraform("apply")
    given = variables_given(apply)
    built = [c for c in commands if c[:3] == ["gcloud", "builds", "submit"]]
    assert flags(built[0]) == {**flags(built[0]), "config": str(REPO / "infra/cloudbuild.trainer.yaml"),
                               "substitutions": f"_IMAGE={given['trainer_image']}"}
    tagged = {flags(c).get("tag") for c in built[1:]}
    assert tagged == {given["importer_image"]} and len(built) == 2
    assert all(commands.index(c) < commands.index(apply) for c in built), "Terraform would deploy missing images"
    images = f"r-docker.pkg.dev/p/{SETTINGS['trainer']['image_repository']}/"
    for variable, image in (("trainer_image", "trainer"), ("importer_image", SETTINGS["importer"]["image"])):
        assert re.fullmatch(rf"{re.escape(images + image)}:\S+", given[variable]), variable
    assert "-auto-approve" in apply and not [arg for arg in apply if arg.startswith("-target")]
    assert given["join_allowlist"] == '["ann@example.com","example.org"]'
    # The module's image repository, applied alone before the builds, when it is missing.
    assert bootstrap[0][-len(given):] == apply[-len(given):]
    target = [arg.split("=", 1)[1] for arg in bootstrap[0] if arg.startswith("-target=")]
    assert target == ["module.yolodrop.google_artifact_registry_repository.images"]
    assert resource("google_artifact_registry_repository", "images")["repository_id"] == \
        "${local.trainer.image_repository}"
    assert commands.index(bootstrap[0]) < commands.index(built[0])


def test_deploy_gives_the_environment_every_variable_it_requires_and_no_other():
    declared = parsed(ENVIRONMENT)["variable"]
    required = {name for name, body in declared.items() if "default" not in body}
    for options in ((), ("--plan",)):
        command = terraform("apply" if not options else "plan", *options)[-1]
        given = set(variables_given(command))
        assert given <= set(declared), f"{given - set(declared)} are no variables of the environment"
        assert required - given == {"api_token"}, "the token travels as TF_VAR_api_token"
    assert 'export TF_VAR_api_token="$API_TOKEN"' in (REPO / "deploy.sh").read_text()
    # Every variable of the module is given by the environment that calls it.
    module_variables = {name for name, body in parsed(MODULE)["variable"].items() if "default" not in body}
    assert module_variables <= set(parsed(ENVIRONMENT)["module"]["yolodrop"])


def test_deploy_plan_builds_and_changes_nothing():
    commands = deploy_commands("--plan")
    assert terraform("plan", "--plan") and not terraform("apply", "--plan")
    assert not [c for c in commands if c[0] == "gcloud" and not {"describe", "list"} & set(c)], \
        "--plan only reads"


def test_deploy_without_terraform_says_what_it_needs_before_anything_runs(tmp_path):
    for tool in ("fold", "sort", "wc", "sed", "dirname"):  # what runs before the check, and no terraform
        (tmp_path / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(tmp_path), "GOOGLE_CLOUD_PROJECT": "p", "REGION": "r", "DATA_BUCKET": "b",
           "API_TOKEN": STRONG_TOKEN}
    done = subprocess.run([shutil.which("bash"), str(REPO / "deploy.sh")], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "is not installed" in done.stderr and "+ " not in done.stdout, done.stderr


def test_deploy_removes_the_ingest_worker_after_terraform_ran():
    """A project an older deploy made still runs the worker and its pull subscription: deleted once the function
    that replaces them is applied, so no notification waits on nothing."""
    assert RETIRED == {"services": ["yolodrop-ingest-worker"], "subscriptions": ["ingest-pull"]}
    assert not set(RETIRED["subscriptions"]) & {f["subscription"] for f in SETTINGS["functions"].values()}
    commands = deploy_commands()
    deleted = [c for c in commands if "delete" in c[:4]]
    assert deleted == [["gcloud", "run", "services", "delete", "yolodrop-ingest-worker", "--region=r", "--project=p",
                        "--quiet"], ["gcloud", "pubsub", "subscriptions", "delete", "ingest-pull",
                                     "--project=p", "--quiet"]]
    assert all(commands.index(c) > commands.index(terraform("apply")[-1]) for c in deleted), \
        "ingest would stop until the function runs"


def setting_literals() -> set[str]:
    """The names settings own: no other file may spell them out."""
    names = set(SETTINGS["topics"].values()) | set(SETTINGS["secrets"].values())
    names |= {f[k] for f in SETTINGS["functions"].values() for k in ("name", "subscription", "service_account") if f[k]}
    names |= {SETTINGS[job][k] for job in ("trainer", "importer") for k in ("job", "service_account")}
    names |= set(RETIRED["services"]) | set(RETIRED["subscriptions"])
    return names | {SETTINGS["watch"]["scheduler_job"], SETTINGS["push_service_account"]}


def test_neither_terraform_nor_deploy_spells_out_a_name_settings_own():
    sources = {path: re.sub(r"^\s*#.*$", "", path.read_text(), flags=re.M)  # comments may name them
               for path in [*TERRAFORM.rglob("*.tf"), REPO / "deploy.sh"]}
    spelled = {f"{path.relative_to(REPO)}: {name}" for path, text in sources.items() for name in setting_literals()
               if re.search(rf'["=\s/]{re.escape(name)}["\s,:/]', text)}
    assert not spelled


# ---- the tools, where installed ----------------------------------------------------------

def test_terraform_fmt():
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed here; `terraform fmt -check -recursive infra/terraform` not run")
    done = subprocess.run(["terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout


def test_every_checkov_skip_gives_its_reason():
    skips = [line.strip() for path in TERRAFORM.rglob("*.tf") for line in path.read_text().splitlines()
             if "checkov:skip" in line]
    assert skips and all(re.fullmatch(r"#checkov:skip=CKV_[A-Z0-9_]+:.{20,}", skip) for skip in skips), skips


def test_checkov():
    if not CHECKOV.exists():
        pytest.skip(f"checkov is not installed ({CHECKOV.relative_to(REPO)}): python3 -m venv .venv/checkov && "
                    ".venv/checkov/bin/pip install -r infra/terraform/requirements-checkov.txt "
                    "(its own venv: its pins would change packages the project pins)")
    done = subprocess.run([str(CHECKOV), "-d", str(TERRAFORM), "--framework", "terraform", "--compact", "--quiet",
                           "--skip-download"], env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-5000:]


# ---- issue 21: each part's grants on its own resources, secrets out of the state, ceilings, TTL -------------

def layout_paths() -> list[str]:
    """One object name of each kind the code writes (common/domain/layout.py)."""
    from common.domain import layout
    sha = "ab" * 32
    return [layout.dataset_object("d", "images/a.jpg"), layout.import_archive("d"), layout.import_staging("i", "zip"),
            layout.thumbnail_path("d", sha), layout.training_manifest("j"), layout.training_checkpoint("j", "last.pt"),
            layout.training_weights("j", "best.pt"), layout.training_cancel_marker("j"),
            layout.base_model("yolov8n.pt"), layout.content_object(sha), layout.version_snapshot("d", "v1"),
            layout.export_archive("e", "d", "v1", "yolo")]


def test_each_account_writes_only_under_prefixes_the_layout_names_and_none_the_whole_bucket():
    writes = SETTINGS["object_writes"]
    paths = layout_paths()
    for key, prefixes in writes.items():
        assert prefixes and all(p.endswith("/") and any(path.startswith(p) for path in paths) for p in prefixes), key
    assert "datasets/" not in writes["trainer"] and "derived/base-models/" not in writes["importer"]
    assert all(any(path.startswith(p) for p in writes["trainer"]) for path in paths if "/training/" in path)
    # Every write binding carries its condition; reads are bucket-wide, never a write role.
    module = parsed(MODULE)
    expression = module["locals"]["object_writes"]
    assert 'resource.name.startsWith(\\"${local.objects_of}${prefix}\\")' in expression and '" || "' in expression
    assert module["locals"]["objects_of"] == "projects/_/buckets/${google_storage_bucket.data.name}/objects/"
    bucket_grants = {n: body for t, n, body in all_resources() if t == "google_storage_bucket_iam_member"}
    assert set(bucket_grants) == {"reads_objects", "writes_objects"}
    assert bucket_grants["reads_objects"]["role"] == "roles/storage.objectViewer"
    written = bucket_grants["writes_objects"]
    assert (written["for_each"], written["role"]) == ("${local.object_writes}", "roles/storage.objectUser")
    assert written["condition"][0]["expression"] == "${each.value}"
    assert " if " not in module["locals"]["bucket_users"]  # every account reads: the watch's reconciliation too


def test_every_function_has_a_ceiling_of_instances():
    for key, function in SETTINGS["functions"].items():
        assert function["max_instances"] >= 1 and function["min_instances"] <= function["max_instances"], key
    service = resource("google_cloudfunctions2_function", "function")["service_config"][0]
    assert service["max_instance_count"] == "${each.value.max_instances}"


def test_no_secret_value_is_in_the_terraform_state():
    texts = {path.name: path.read_text() for path in TERRAFORM.rglob("*.tf")}
    assert not [name for name, text in texts.items() if re.search(r"^\s*secret_data\s*=", text, re.M)]
    for name in ("api_token", "page_token_secret"):
        version = resource("google_secret_manager_secret_version", name)
        assert version["secret"] == f'${{google_secret_manager_secret.secret["{name}"].id}}'
        assert "secret_data_wo" in version and version["secret_data_wo_version"] == f"${{var.{name}_version}}"
    assert resource("google_secret_manager_secret_version", "page_token_secret")["secret_data_wo"] == \
        "${ephemeral.random_password.page_token_secret.result}"
    assert re.search(r'ephemeral "random_password" "page_token_secret" \{\s+length\s+= 48', texts["secrets.tf"])
    for folder in (MODULE, ENVIRONMENT):
        token = parsed(folder)["variable"]["api_token"]
        assert token["ephemeral"] is True and token["sensitive"] is True and "default" not in token, folder
    assert "length(var.api_token) >= 32" in parsed(MODULE)["variable"]["api_token"]["validation"][0]["condition"]
    assert all('required_version = ">= 1.11"' in texts[name] for name in ("versions.tf", "main.tf"))
    assert set(SETTINGS["secrets"]) == {"api_token", "page_token_secret"}


def test_rate_limit_counters_expire_by_their_ttl():
    ttl = resource("google_firestore_field", "rate_limits_ttl")
    assert (ttl["collection"], ttl["field"]) == ("rate_limits", "expires_at") and "ttl_config" in ttl
    assert '"expires_at"' in (REPO / "common" / "cloud" / "rate_limit_store.py").read_text() + \
        (REPO / "common" / "domain" / "rate_limits.py").read_text()


def test_terraform_grants_the_publishers_settings_name():
    module = parsed(MODULE)
    granted = {(p["function"], p["topic"]) for p in module["locals"]["topic_publishers"].values()}
    granted |= {("api", "training_requests"), ("trainer", "training_progress"), ("importer", "import_requests")}
    for name, (_who, topic) in {"api_publishes_training_requests": ("api", "training_requests"),
                               "trainer_publishes_progress": ("trainer", "training_progress"),
                               "importer_publishes_import_requests": ("importer", "import_requests")}.items():
        assert resource("google_pubsub_topic_iam_member", name)["topic"] == \
            f'${{google_pubsub_topic.topic["{topic}"].name}}', name
    assert granted == {(k, t) for k, topics in SETTINGS["publishes"].items() for t in topics}


@pytest.mark.parametrize("token", ["t", "changeme" * 5])
def test_deploy_refuses_a_token_the_api_would_refuse_before_anything_runs(token):
    env = {**os.environ, "GOOGLE_CLOUD_PROJECT": "p", "REGION": "r", "DATA_BUCKET": "b", "API_TOKEN": token}
    done = subprocess.run(["bash", str(REPO / "deploy.sh"), "--dry-run"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "at least 32 characters, 12 of them different" in done.stderr
    assert "+ gcloud" not in done.stdout


def test_vertex_ai_is_granted_only_where_settings_allow_several_gpus():
    """The training function creates and finds custom jobs that run as the trainer's account; the watch
    reads them; neither grant exists while settings allow no GPU type (every training on the Cloud Run Job)."""
    runs = resource("google_project_iam_member", "train_runs_vertex_jobs")
    reads = resource("google_project_iam_member", "watch_reads_vertex_jobs")
    assert (runs["role"], reads["role"]) == ("roles/aiplatform.user", "roles/aiplatform.viewer")
    assert runs["member"] == 'serviceAccount:${google_service_account.function["train"].email}'
    assert reads["member"] == 'serviceAccount:${google_service_account.function["watch"].email}'
    assert runs["count"] == reads["count"] == "${local.vertex_enabled ? 1 : 0}"
    assert parsed(MODULE)["locals"]["vertex_enabled"] == "${length(local.trainer.vertex.accelerator_types) > 0}"
    assert resource("google_service_account_iam_member", "train_acts_as_trainer")["member"] == runs["member"]
    assert "aiplatform.googleapis.com" in SETTINGS["apis"]
    vertex = SETTINGS["trainer"]["vertex"]
    assert vertex["accelerator_types"] == [] and vertex["max_accelerators"] == 1, "the default: one GPU on Cloud Run"
    from common.domain import accelerators
    assert set(vertex["accelerator_types"]) <= set(accelerators.MACHINES)
    env = parsed(MODULE)["locals"]["env_values"]
    assert env["TRAINER_SERVICE_ACCOUNT"] == "${google_service_account.trainer.email}"
    assert env["TRAINER_IMAGE"] == "${var.trainer_image}"
    assert parsed(ENVIRONMENT)["module"]["yolodrop"]["trainer_vertex_region"] == "${var.trainer_vertex_region}"
