"""Structured JSON logs: one line per record, with the severity Cloud Logging reads."""
from __future__ import annotations

import json
import sys
import time


def log(severity: str, message: str, **fields) -> None:
    record = {"severity": severity, "message": message, "time": time.time(), **fields}
    print(json.dumps(record, default=str), file=sys.stderr, flush=True)


def info(message: str, **fields) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields) -> None:
    log("ERROR", message, **fields)
