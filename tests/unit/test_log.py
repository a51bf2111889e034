"""The structured log: stdlib logging with Cloud Logging's fields, one JSON object per line on stderr."""
from __future__ import annotations

import json
import logging
import logging.config
import traceback
from concurrent.futures import ThreadPoolExecutor

import flask
import pytest

from common.platform import log

TRACE = "105445aa7843bc8bf206b12000100000"


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_record_is_severity_message_time_and_the_calls_fields(capsys):
    log.warning("lease lost", document="jobs/j1", attempt=2, path=log)  # not JSON: written as str()
    log.log("NOTICE", "a level stdlib does not name")
    warned, notice = lines(capsys)
    assert list(warned) == ["severity", "message", "time", "document", "attempt", "path"]
    assert (warned["severity"], warned["message"], warned["document"], warned["attempt"]) == \
        ("WARNING", "lease lost", "jobs/j1", 2)
    assert isinstance(warned["time"], float) and warned["path"].startswith("<module 'common.platform.log'")
    assert (notice["severity"], notice["message"]) == ("NOTICE", "a level stdlib does not name")


def test_a_message_with_percent_signs_and_newlines_stays_one_line_as_given(capsys):
    log.error("100% of %s failed\nsecond line", error="x\ny")
    (record,) = lines(capsys)
    assert (record["message"], record["error"]) == ("100% of %s failed\nsecond line", "x\ny")


def test_a_line_logged_while_serving_a_traced_request_carries_its_trace(capsys, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo")
    app = flask.Flask(__name__)
    with app.test_request_context(headers={"X-Cloud-Trace-Context": f"{TRACE}/1;o=1"}):
        log.info("in a traced request")
    with app.test_request_context(headers={"X-Cloud-Trace-Context": "not-a-trace"}):
        log.info("in a request with a malformed trace")
    log.info("outside any request")
    traced, malformed, outside = lines(capsys)
    assert traced[log.TRACE_FIELD] == f"projects/demo/traces/{TRACE}"
    assert log.TRACE_FIELD not in malformed and log.TRACE_FIELD not in outside


def test_concurrent_records_never_share_a_line(capsys):
    def write(thread: int) -> None:
        for n in range(200):
            log.info("x" * 2000, thread=thread, n=n)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    assert sorted((r["thread"], r["n"]) for r in lines(capsys)) == [(t, n) for t in range(8) for n in range(200)]


def test_a_library_configuring_the_root_logger_does_not_repeat_or_reshape_our_lines(capsys):
    root = logging.getLogger()
    handler = logging.StreamHandler()  # what logging.basicConfig() would add
    root.addHandler(handler)
    try:
        log.info("once")
    finally:
        root.removeHandler(handler)
    assert [r["message"] for r in lines(capsys)] == ["once"]


def test_a_dict_config_elsewhere_does_not_silence_our_lines(capsys):
    root, loggers = logging.getLogger(), [logger for logger in logging.Logger.manager.loggerDict.values()
                                          if isinstance(logger, logging.Logger) and not logger.disabled]
    handlers, level = root.handlers[:], root.level
    logging.config.dictConfig({"version": 1})  # as functions-framework does with LOG_EXECUTION_ID set
    try:
        log.info("still written")
    finally:  # the other tests' logging as it was
        root.handlers[:] = handlers
        root.setLevel(level)
        for logger in loggers:
            logger.disabled = False
    assert [r["message"] for r in lines(capsys)] == ["still written"]


# ---- Cloud Logging's trace and Error Reporting's form (issue 23) ----------------------------------------

def traced_line(capsys, monkeypatch, headers: dict) -> dict:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo")
    with flask.Flask(__name__).test_request_context(headers=headers):
        log.info("in a request")
    (record,) = lines(capsys)
    return record


def test_a_traceparent_header_groups_the_requests_lines_as_cloud_traces_does(capsys, monkeypatch):
    record = traced_line(capsys, monkeypatch, {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    assert record[log.TRACE_FIELD] == f"projects/demo/traces/{TRACE}"
    # Cloud Run sends both, with the same trace: X-Cloud-Trace-Context is read first.
    other = "4bf92f3577b34da6a3ce929d0e0e4736"
    both = traced_line(capsys, monkeypatch, {"X-Cloud-Trace-Context": f"{TRACE}/1;o=1",
                                              "traceparent": f"00-{other}-00f067aa0ba902b7-01"})
    assert both[log.TRACE_FIELD] == f"projects/demo/traces/{TRACE}"


@pytest.mark.parametrize("header", [
    {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"},  # the W3C invalid trace id
    {"traceparent": f"00-{TRACE.upper()}-00f067aa0ba902b7-01"},  # W3C ids are lower case
    {"traceparent": f"00-{TRACE}-01"},
    {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01-extra"},
    {"X-Cloud-Trace-Context": f"{'0' * 32}/1"},
    {"X-Cloud-Trace-Context": f"{TRACE}x/1"},
])
def test_a_header_without_a_valid_trace_id_gives_no_trace(capsys, monkeypatch, header):
    assert log.TRACE_FIELD not in traced_line(capsys, monkeypatch, header)


def test_the_request_id_is_the_traceparents_trace_when_the_caller_gives_none():
    from common.api import context
    with flask.Flask(__name__).test_request_context(headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}):
        assert context.request_id_of(flask.request) == TRACE


def failing() -> None:
    raise ValueError("a bug")


def test_an_error_with_its_traceback_is_in_the_form_error_reporting_reads(capsys, monkeypatch):
    monkeypatch.setenv("K_SERVICE", "yolodrop-api")
    monkeypatch.setenv("K_REVISION", "yolodrop-api-00042-abc")
    try:
        failing()
    except ValueError:
        log.error("api request failed", request_id="r-1", traceback=traceback.format_exc())
    (record,) = lines(capsys)
    assert record["message"] == "api request failed" and record["request_id"] == "r-1"
    assert "traceback" not in record, "the stack trace is written once, where Error Reporting reads it"
    assert record["stack_trace"].startswith("Traceback (most recent call last):")
    assert record["stack_trace"].rstrip().endswith("ValueError: a bug") and "in failing" in record["stack_trace"]
    assert record["@type"] == \
        "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"
    assert record["serviceContext"] == {"service": "yolodrop-api", "version": "yolodrop-api-00042-abc"}


def test_a_record_logged_with_exc_info_carries_its_stack_trace_and_a_job_names_its_service(capsys, monkeypatch):
    monkeypatch.delenv("K_SERVICE", raising=False)
    monkeypatch.delenv("K_REVISION", raising=False)
    monkeypatch.setenv("CLOUD_RUN_JOB", "yolodrop-trainer")
    try:
        failing()
    except ValueError:
        log.LOGGER.exception("training failed")
    (record,) = lines(capsys)
    assert (record["severity"], record["message"]) == ("ERROR", "training failed")
    assert "ValueError: a bug" in record["stack_trace"]
    assert record["serviceContext"] == {"service": "yolodrop-trainer"}


def test_a_traceback_below_error_is_kept_but_not_reported_and_an_error_without_one_is_not_reported(capsys):
    log.warning("retrying", traceback="Traceback (most recent call last):\n  ...\nOSError: x")
    log.log("CRITICAL", "stopping", traceback="Traceback (most recent call last):\n  ...\nOSError: y")
    log.error("import failed", error="ValueError('no data')")
    warned, critical, plain = lines(capsys)
    assert warned["stack_trace"].endswith("OSError: x") and "@type" not in warned and "serviceContext" not in warned
    assert critical["@type"].endswith("ReportedErrorEvent")
    assert not {"stack_trace", "@type", "serviceContext"} & set(plain)


def test_a_failed_or_stalled_job_is_one_line_with_stable_fields(capsys):
    log.job_event(log.JOB_FAILED, "training", "t-1", reason="out of retries")
    log.job_event(log.JOB_STALLED, "export", "e-1", action="sent again")
    failed, stalled = lines(capsys)
    assert {k: failed[k] for k in ("severity", "job_event", "job_kind", "job_id", "reason")} == \
        {"severity": "WARNING", "job_event": "failed", "job_kind": "training", "job_id": "t-1",
         "reason": "out of retries"}
    assert (stalled["job_event"], stalled["job_kind"], stalled["action"]) == ("stalled", "export", "sent again")
