"""Structured logs through stdlib logging: one JSON object per line on stderr, in the fields Cloud Logging reads
(`severity`, `message`, `logging.googleapis.com/trace` while serving a request Cloud Run traced), then `time`
and the call's own fields: log.info("model loaded", uri=..., seconds=...). A line that carries a stack trace (a
`traceback` field, or a record logged with exc_info) carries it as `stack_trace`, and at ERROR and above in the
form Error Reporting groups (`@type` ReportedErrorEvent with its `serviceContext`): docs/operations.md, Logs."""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from typing import Protocol

from common.platform import config

LOGGER = logging.getLogger("yolodrop")
TRACE_FIELD = "logging.googleapis.com/trace"
ERROR_EVENT = "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
# W3C trace context: version-traceid-parentid-flags (https://www.w3.org/TR/trace-context/#traceparent-header)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_NO_TRACE = "0" * 32  # the W3C invalid trace id
REPORTED = ("ERROR", "CRITICAL", "ALERT", "EMERGENCY")  # the severities whose stack trace is an error to report


class CloudLoggingFormatter(logging.Formatter):
    """A record as one line of JSON: severity, message, the trace when known, time, then the record's fields,
    and an error's stack trace where Error Reporting reads it."""

    def format(self, record: logging.LogRecord) -> str:
        severity = getattr(record, "severity", record.levelname)
        entry = {"severity": severity, "message": record.getMessage()}
        trace = current_trace()
        if trace:
            entry[TRACE_FIELD] = trace
        entry["time"] = record.created
        fields = dict(getattr(record, "fields", {}))
        stack = fields.pop("traceback", None) or (self.formatException(record.exc_info) if record.exc_info else None)
        entry.update(fields)
        if stack:
            entry.update(error_report(str(stack), severity in REPORTED))
        return json.dumps(entry, default=str)


def error_report(stack: str, reported: bool) -> dict:
    """The fields that carry a stack trace: `stack_trace` (the first field Error Reporting reads), and for an
    error its `@type` and the service it happened in (Cloud Run's and Cloud Functions' K_SERVICE and K_REVISION,
    a job's CLOUD_RUN_JOB)."""
    if not reported:
        return {"stack_trace": stack}
    service = os.environ.get("K_SERVICE") or os.environ.get("CLOUD_RUN_JOB") or LOGGER.name
    context = {"service": service, **({"version": os.environ["K_REVISION"]} if os.environ.get("K_REVISION") else {})}
    return {"stack_trace": stack, "@type": ERROR_EVENT, "serviceContext": context}


class _CurrentStderr(logging.StreamHandler):
    """Writes to sys.stderr as it is when each record is written (a test's capture too), one whole line
    per record under the handler's lock."""

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def current_trace() -> str | None:
    """projects/<project>/traces/<id> of the HTTP request being served, from the X-Cloud-Trace-Context or
    traceparent header Cloud Run adds; None outside a request, as in a job. Flask's request context is per
    request (a contextvar, set by the framework for every HTTP function: the API and prediction behind the edge,
    and each push a topic-fed function serves), so no call passes the trace along."""
    flask = sys.modules.get("flask")  # loaded by the HTTP functions only: the others have no request to trace
    if flask is None or not flask.has_request_context():
        return None
    found = trace_id_of(flask.request.headers)
    try:
        return f"projects/{config.project()}/traces/{found}" if found else None
    except KeyError:  # no project configured: a line without its trace rather than no line
        return None


class Headers(Protocol):
    """A request's headers: werkzeug's, or any mapping of names to values."""

    def get(self, key: str, /) -> str | None: ...


def trace_id_of(headers: Headers) -> str | None:
    """The trace id a request carries: X-Cloud-Trace-Context's, else traceparent's; None when neither holds one."""
    return trace_id(headers.get("X-Cloud-Trace-Context")) or traceparent_id(headers.get("traceparent"))


def trace_id(header: str | None) -> str | None:
    """The trace id of an X-Cloud-Trace-Context header (TRACE_ID/SPAN_ID;o=1); None when it holds none."""
    trace = (header or "").partition("/")[0]
    return trace if _TRACE_ID.fullmatch(trace) and trace != _NO_TRACE else None


def traceparent_id(header: str | None) -> str | None:
    """The trace id of a W3C traceparent header (00-TRACE_ID-PARENT_ID-FLAGS); None when it holds none."""
    found = _TRACEPARENT.fullmatch((header or "").strip())
    return found[1] if found and found[1] != _NO_TRACE else None


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


# A job that failed, or that the watch found stalled (quiet for JOB_STALL_SECONDS, its message sent again or the
# job failed): one line each with these fields, which Terraform's log-based metrics count (monitoring.tf).
JOB_EVENT = "job_event"
JOB_FAILED, JOB_STALLED = "failed", "stalled"


def job_event(event: str, kind: str, job_id: str, **fields) -> None:
    """One line saying that job `job_id` of `kind` (training, import, dataset job, export, version) failed or
    stalled: `job_event`, `job_kind` and `job_id` are stable, the message is for people and names no id (the lines
    that name a job in their message are its handling's outcomes)."""
    log("WARNING", f"job {event} ({kind})", **{JOB_EVENT: event, "job_kind": kind, "job_id": job_id}, **fields)
