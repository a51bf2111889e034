"""Structured logs through stdlib logging: one JSON object per line on stderr, in the fields Cloud Logging reads
(`severity`, `message`, `logging.googleapis.com/trace` while serving a request Cloud Run traced), then `time`
and the call's own fields: log.info("model loaded", uri=..., seconds=...)."""
from __future__ import annotations

import json
import logging
import re
import sys

from common.platform import config

LOGGER = logging.getLogger("yolodrop")
TRACE_FIELD = "logging.googleapis.com/trace"
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")


class CloudLoggingFormatter(logging.Formatter):
    """A record as one line of JSON: severity, message, the trace when known, time, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"severity": getattr(record, "severity", record.levelname), "message": record.getMessage()}
        trace = current_trace()
        if trace:
            entry[TRACE_FIELD] = trace
        entry["time"] = record.created
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str)


class _CurrentStderr(logging.StreamHandler):
    """Writes to sys.stderr as it is when each record is written (a test's capture too), one whole line
    per record under the handler's lock."""

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def current_trace() -> str | None:
    """projects/<project>/traces/<id> of the HTTP request being served, from the X-Cloud-Trace-Context header
    Cloud Run adds; None outside a request, as in a Pub/Sub consumer or a job."""
    flask = sys.modules.get("flask")  # loaded by the HTTP functions only: the others have no request to trace
    if flask is None or not flask.has_request_context():
        return None
    found = trace_id(flask.request.headers.get("X-Cloud-Trace-Context"))
    try:
        return f"projects/{config.project()}/traces/{found}" if found else None
    except KeyError:  # no project configured: a line without its trace rather than no line
        return None


def trace_id(header: str | None) -> str | None:
    """The trace id of an X-Cloud-Trace-Context header (TRACE_ID/SPAN_ID;o=1); None when it holds none."""
    trace = (header or "").partition("/")[0]
    return trace if _TRACE_ID.fullmatch(trace) else None


def _configured() -> logging.Logger:
    handler = _CurrentStderr()
    handler.setFormatter(CloudLoggingFormatter())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False  # our lines once, in our shape, whatever a library does to the root logger
    return LOGGER


_configured()


def log(severity: str, message: str, **fields) -> None:
    """One record at Cloud Logging's `severity` (DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, ...)."""
    level = logging.getLevelNamesMapping().get(severity, logging.INFO)
    # A dictConfig elsewhere disables every logger it does not name (functions-framework's, when
    # LOG_EXECUTION_ID is set): ours must go on writing.
    LOGGER.disabled = False
    LOGGER.log(level, "%s", message, extra={"severity": severity, "fields": fields})


def info(message: str, **fields) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields) -> None:
    log("ERROR", message, **fields)
