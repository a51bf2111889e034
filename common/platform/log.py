"""Structured JSON logs: one line per record, with the severity Cloud Logging reads."""
from __future__ import annotations

import json
import sys
import threading
import time

_lock = threading.Lock()  # handlers run in threads: one record, one whole line


def log(severity: str, message: str, **fields) -> None:
    record = {"severity": severity, "message": message, "time": time.time(), **fields}
    line = json.dumps(record, default=str) + "\n"
    with _lock:
        sys.stderr.write(line)
        sys.stderr.flush()


def info(message: str, **fields) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields) -> None:
    log("ERROR", message, **fields)
