"""Structured JSON logs on stdout, in the shape Cloud Logging ingests from Cloud Run.

One line per entry with `severity` and `message`; Cloud Logging lifts the other
keys into `jsonPayload`. Nothing here prints environment variables, request
bodies or secrets: callers pass only named, safe fields, and fields whose names
the HIPAA seed lists as PHI are refused outright.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, TextIO

# The HIPAA seed's PHI-safe logging rule: these field names never reach a log line.
PHI_FIELDS = frozenset({"ssn", "dob", "name", "address", "phone", "email", "diagnosis", "mrn"})

_lock = threading.Lock()
_stream: TextIO | None = None  # None means sys.stdout, looked up at write time


def set_stream(stream: TextIO | None) -> None:
    """Send log lines to `stream` (tests, the CLI's --quiet); None restores stdout."""
    global _stream
    _stream = stream


def emit(severity: str, message: str, **fields: Any) -> None:
    """Write one structured log line. `severity` is a Cloud Logging severity name."""
    blocked = PHI_FIELDS.intersection(fields)
    if blocked:
        raise ValueError(f"refusing to log PHI field(s) {sorted(blocked)}; log an internal id instead")
    entry = {"severity": severity, "message": message, **fields}
    line = json.dumps(entry, default=str, separators=(",", ":"))
    out = _stream or sys.stdout
    with _lock:
        out.write(line + "\n")
        out.flush()


def info(message: str, **fields: Any) -> None:
    emit("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    emit("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    emit("ERROR", message, **fields)
