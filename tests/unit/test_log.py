"""The structured log: stdlib logging with Cloud Logging's fields, one JSON object per line on stderr."""
from __future__ import annotations

import json
import logging
import logging.config
from concurrent.futures import ThreadPoolExecutor

import flask

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
