"""Operations in Terraform, checked offline (issue 23): alerts and the dashboard on what the settings deploy, the
log-based metrics on the lines our code writes, Firestore's recovery and backups, and derived data's lifetime.
The HCL is parsed as tests/unit/test_terraform.py parses it; `terraform fmt` and checkov run there."""
from __future__ import annotations

import json
import re

import pytest

from tests.unit.test_terraform import ENVIRONMENT, MODULE, REPO, SETTINGS, parsed, resource


def text(expression: str) -> str:
    """An HCL string as Terraform reads it: python-hcl2 keeps the escapes of its inner quotes."""
    return expression.replace('\\"', '"')


def policies() -> dict[str, dict]:
    return parsed(MODULE)["resource"]["google_monitoring_alert_policy"]


def condition(name: str) -> dict:
    return policies()[name]["conditions"][0]["condition_threshold"][0]


# ---- a tiny reader of the Logging query language, for the filters of our log-based metrics --------------

def matches(log_filter: str, entry: dict) -> bool:
    """Whether a Cloud Logging filter of `jsonPayload.FIELD = "value"` and `jsonPayload.FIELD > N` terms joined
    by AND selects the JSON line `entry` (Cloud Run puts a JSON line's fields under jsonPayload)."""
    for term in log_filter.split(" AND "):
        found = re.fullmatch(r'jsonPayload\.(\w+) (=|>) ("([^"]*)"|\d+)', term.strip())
        assert found, f"a term this reader does not know: {term!r}"
        field, operator, value = found[1], found[2], found[4] if found[4] is not None else int(found[3])
        if field not in entry or (entry[field] != value if operator == "=" else not entry[field] > value):
            return False
    return True


def logged(capsys, write) -> dict:
    write()
    (line,) = capsys.readouterr().err.splitlines()
    return json.loads(line)


# ---- alerts ------------------------------------------------------------------------------------------------

def test_every_alert_goes_to_the_notification_channels_the_variable_names_which_may_be_none():
    assert set(policies()) == {"dead_letters", "oldest_message", "http_errors", "jobs", "reconciliation_repairs"}
    assert all(policy["notification_channels"] == "${var.notification_channels}" for policy in policies().values())
    channels = parsed(MODULE)["variable"]["notification_channels"]
    assert channels["type"] == "${list(string)}" and channels["default"] == []
    assert parsed(ENVIRONMENT)["module"]["yolodrop"]["notification_channels"] == "${var.notification_channels}"
    for name in ("max_message_age_seconds", "http_5xx_ratio", "firestore_backup_retention_days",
                 "export_retention_days"):
        assert parsed(ENVIRONMENT)["module"]["yolodrop"][name] == f"${{var.{name}}}", name
        assert parsed(ENVIRONMENT)["variable"][name]["default"] == parsed(MODULE)["variable"][name]["default"]


def test_dead_letters_and_old_messages_are_watched_on_the_subscriptions_the_module_makes_from_the_settings():
    """No second list: the hold subscriptions are those of every topic, the watched ones every subscription
    with a dead-letter policy (push subscriptions and ingest's), as pubsub.tf declares them."""
    module = parsed(MODULE)["locals"]
    assert module["hold_subscriptions"] == \
        "${[for key in sort(keys(local.topics)) : google_pubsub_subscription.dead_letter_hold[key].name]}"
    assert module["lettered_subscriptions"] == \
        "${[for key in sort(keys(local.dead_lettering_subscriptions)) : local.dead_lettering_subscriptions[key]]}"
    for name, subscriptions in (("hold_filter", "hold_subscriptions"), ("lettered_filter", "lettered_subscriptions")):
        assert module[name] == ('resource.type = \\"pubsub_subscription\\" AND resource.label.subscription_id = '
                                f'one_of(${{join(", ", [for name in local.{subscriptions} : "\\"${{name}}\\""])}})')
    dead = condition("dead_letters")
    assert text(dead["filter"]) == \
        '${local.hold_filter} AND metric.type = "pubsub.googleapis.com/subscription/num_undelivered_messages"'
    assert (dead["comparison"], dead["threshold_value"]) == ("COMPARISON_GT", 0), "one dead letter is one too many"
    old = condition("oldest_message")
    assert text(old["filter"]) == \
        '${local.lettered_filter} AND metric.type = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"'
    assert (old["comparison"], old["threshold_value"]) == ("COMPARISON_GT", "${var.max_message_age_seconds}")
    # Per subscription: no reducer folds them into one series, so the alert names the one behind.
    assert all("cross_series_reducer" not in c["aggregations"][0] for c in (dead, old))
    # A message waits at most the settings' maximum backoff between two deliveries: below it, the alert would
    # fire on a healthy retry.
    backoff = int(SETTINGS["delivery"]["maximum_backoff"].removesuffix("s"))
    assert parsed(MODULE)["variable"]["max_message_age_seconds"]["default"] > backoff


def test_the_5xx_rate_of_each_public_function_is_a_ratio_of_its_own_answers():
    http = resource("google_monitoring_alert_policy", "http_errors")
    assert http["for_each"] == "${local.http_services}"
    assert parsed(MODULE)["locals"]["http_services"] == \
        "${{for key, function in local.public_functions : key => google_cloudfunctions2_function.function[key].name}}"
    assert {key for key, f in SETTINGS["functions"].items() if f["public"]} == {"api", "predict"}
    ratio = condition("http_errors")
    service = 'resource.type = "cloud_run_revision" AND resource.label.service_name = "${each.value}"'
    assert text(ratio["denominator_filter"]) == f'{service} AND metric.type = "run.googleapis.com/request_count"'
    assert text(ratio["filter"]) == text(ratio["denominator_filter"]) + ' AND metric.label.response_code_class = "5xx"'
    assert ratio["aggregations"] == ratio["denominator_aggregations"]
    assert ratio["threshold_value"] == "${var.http_5xx_ratio}"


@pytest.mark.parametrize("event", ["failed", "stalled"])
def test_the_job_metrics_count_the_lines_the_kernel_and_the_watch_write(capsys, event):
    from common.platform import log
    metric = resource("google_logging_metric", "jobs")
    lines = parsed(MODULE)["locals"]["job_lines"]
    (key,) = [key for key, line in lines.items() if line["event"] == event]
    log_filter = text(metric["filter"]).replace("${each.value.event}", event)
    line = logged(capsys, lambda: log.job_event(event, "export", "e-1", reason="why"))
    assert matches(log_filter, line)
    other = "stalled" if event == "failed" else "failed"
    assert not matches(log_filter, logged(capsys, lambda: log.job_event(other, "export", "e-1")))
    assert not matches(log_filter, logged(capsys, lambda: log.info(f"export e-1 {event}")))
    # The label is a field of the line, and the alert and the dashboard count by it.
    assert metric["label_extractors"] == {"job_kind": "EXTRACT(jsonPayload.job_kind)"} and line["job_kind"] == "export"
    assert condition("jobs")["aggregations"][0]["group_by_fields"] == ["metric.label.job_kind"]
    assert (condition("jobs")["comparison"], condition("jobs")["threshold_value"]) == ("COMPARISON_GT", 0)
    assert f'metric.type = "logging.googleapis.com/user/${{google_logging_metric.jobs["{key}"].name}}"' in \
        dashboard_filters()


def dashboard_filters() -> list[str]:
    """The filter of each chart, with the locals it names written out."""
    module = parsed(MODULE)["locals"]
    return [text(tile["filter"].replace("${local.user_metric}", module["user_metric"])) for tile in module["tiles"]]


def test_the_reconciliation_metrics_count_its_repaired_line_and_its_counts(capsys):
    from common.platform import log
    from common.services import reconcile
    repair_filter = text(parsed(MODULE)["locals"]["repair_filter"])
    assert repair_filter == f'jsonPayload.message = "{reconcile.REPAIRED}"'
    counted = resource("google_logging_metric", "reconciliation_repairs")
    assert counted["filter"] == "${local.repair_filter}"
    # Its fields (docs/operations.md): dataset, and the objects added, updated and removed.
    source = (REPO / "common/services/reconcile.py").read_text()
    fields = ("added", "updated", "removed")
    assert parsed(MODULE)["locals"]["repair_counts"] == '${toset(["added", "updated", "removed"])}'
    assert all(f'"{field}":' in source for field in fields)
    assert "log.warning(REPAIRED, dataset=dataset, **counts)" in source
    line = logged(capsys, lambda: log.warning(reconcile.REPAIRED, dataset="d", added=3, updated=0, removed=1))
    assert matches(repair_filter, line)
    objects = resource("google_logging_metric", "reconciliation_repaired_objects")
    assert objects["value_extractor"] == "EXTRACT(jsonPayload.${each.value})"
    assert objects["metric_descriptor"][0]["value_type"] == "DISTRIBUTION"
    per_count = text(objects["filter"]).replace("${local.repair_filter}", repair_filter)
    assert [matches(per_count.replace("${each.value}", field), line) for field in fields] == [True, False, True]
    assert condition("reconciliation_repairs")["threshold_value"] == 0


def test_the_dashboard_shows_what_the_alerts_watch():
    shown = " ".join(dashboard_filters())
    for watched in ("${local.hold_filter}", "${local.lettered_filter}", "run.googleapis.com/request_count",
                    'jobs["jobs_failed"]', 'jobs["jobs_stalled"]', "reconciliation_repairs.name"):
        assert watched in shown, watched
    dashboard = resource("google_monitoring_dashboard", "yolodrop")["dashboard_json"]
    assert "local.tiles" in dashboard and "mosaicLayout" in dashboard
    assert "monitoring.googleapis.com" in SETTINGS["apis"] and "logging.googleapis.com" in SETTINGS["apis"]


# ---- Firestore: recovery and backups ------------------------------------------------------------------------

def test_firestore_has_point_in_time_recovery_and_a_daily_backup_kept_as_long_as_the_variable_says():
    database = resource("google_firestore_database", "default")
    assert database["point_in_time_recovery_enablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"
    schedule = resource("google_firestore_backup_schedule", "daily")
    assert schedule["database"] == "${google_firestore_database.default.name}"
    assert schedule["daily_recurrence"] == [{}] and "weekly_recurrence" not in schedule
    assert schedule["retention"] == "${var.firestore_backup_retention_days * 86400}s"
    retention = parsed(MODULE)["variable"]["firestore_backup_retention_days"]
    assert retention["default"] == 7
    assert "var.firestore_backup_retention_days <= 7" in retention["validation"][0]["condition"]


# ---- derived data's lifetime ----------------------------------------------------------------------------------

def test_exports_expire_by_age_and_nothing_a_version_or_a_model_needs_has_a_lifetime():
    from common.domain import layout
    prefix = parsed(MODULE)["locals"]["exports_prefix"]
    assert layout.export_archive("e", "d", "v1", "yolo").startswith(prefix) and prefix in \
        SETTINGS["object_writes"]["export"]
    rules = resource("google_storage_bucket", "data")["lifecycle_rule"]
    by_prefix = [rule for rule in rules if "matches_prefix" in rule["condition"][0]]
    assert by_prefix == [{"condition": [{"age": "${var.export_retention_days}",
                                         "matches_prefix": ["${local.exports_prefix}"]}],
                          "action": [{"type": "Delete"}]}]
    # Every other rule removes only noncurrent generations: a live version snapshot, content object, model or
    # dataset file never expires (docs/operations.md, Derived data).
    assert all(set(rule["condition"][0]) == {"days_since_noncurrent_time"} for rule in rules if rule not in by_prefix)
    sha = "ab" * 32
    kept = [layout.content_object(sha), layout.version_snapshot("d", "v1"), layout.training_weights("j", "best.pt"),
            layout.dataset_object("d", "images/a.jpg")]
    assert not [path for path in kept if path.startswith(prefix)]
