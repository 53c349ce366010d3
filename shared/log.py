"""Structured JSON logs on stdout, in the shape Cloud Logging ingests from Cloud Run.

One line per entry with `severity` and `message`; Cloud Logging lifts the other
keys into `jsonPayload`. Nothing here prints environment variables, request
bodies or secrets: callers pass only named, safe fields, and fields whose names
the HIPAA seed lists as PHI are refused outright.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

# The HIPAA seed's PHI-safe logging rule: these field names never reach a log line.
PHI_FIELDS = frozenset({"ssn", "dob", "name", "address", "phone", "email", "diagnosis", "mrn"})

_lock = threading.Lock()
_stream: TextIO | None = None  # None means sys.stdout, looked up at write time


def set_stream(stream: TextIO | None) -> None:
    """Send log lines to `stream` (tests, the CLI's --quiet); None restores stdout."""
    global _stream
    _stream = stream


@contextlib.contextmanager
def captured(stream: TextIO | None = None) -> Iterator[TextIO]:
    """Send log lines to `stream` (a new StringIO if None) for the block, then back to where they
    went before; yields the stream."""
    previous = _stream
    out = stream if stream is not None else io.StringIO()
    set_stream(out)
    try:
        yield out
    finally:
        set_stream(previous)


def emit(severity: str, message: str, **fields: Any) -> None:
    """Write one structured log line. `severity` is a Cloud Logging severity name."""
    blocked = PHI_FIELDS.intersection(fields)
    if blocked:
        raise ValueError(f"refusing to log PHI field(s) {sorted(blocked)}; log an internal id instead")
    entry = {"severity": severity, "message": message, **fields}
    line = json.dumps(entry, default=str, separators=(",", ":"))
    if len(line) > MAX_LINE_CHARS:
        line = _shrunk(entry, len(line))
    out = _stream or sys.stdout
    with _lock:
        out.write(line + "\n")
        out.flush()


# Cloud Logging refuses an entry over 256 KB; a record of a hostile event (a policy delta with a
# million members, say) must still land, shortened, rather than be dropped whole.
MAX_LINE_CHARS = 200_000
_KEEP_ITEMS = 20
_KEEP_CHARS = 2_000


def _clip(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _KEEP_CHARS else value[:_KEEP_CHARS] + f"…[{len(value) - _KEEP_CHARS} more chars]"
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k)[:200]: _clip(v) for k, v in items[:_KEEP_ITEMS * 5]}
        if len(items) > _KEEP_ITEMS * 5:
            out["…"] = f"{len(items) - _KEEP_ITEMS * 5} more keys"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        out_list = [_clip(v) for v in seq[:_KEEP_ITEMS]]
        if len(seq) > _KEEP_ITEMS:
            out_list.append(f"…{len(seq) - _KEEP_ITEMS} more")
        return out_list
    return value


def _shrunk(entry: dict[str, Any], size: int) -> str:
    """The entry with long lists and strings cut (saying how much), or, if that is still too
    long, its severity and message with the names of the fields left out."""
    clipped = {k: _clip(v) for k, v in entry.items()}
    clipped["log_truncated_from_chars"] = size
    line = json.dumps(clipped, default=str, separators=(",", ":"))
    if len(line) <= MAX_LINE_CHARS:
        return line
    slim = {"severity": entry["severity"], "message": str(entry["message"])[:_KEEP_CHARS],
            "log_truncated_from_chars": size, "fields_left_out": sorted(str(k)[:200] for k in entry)[:_KEEP_ITEMS * 5]}
    return json.dumps(slim, default=str, separators=(",", ":"))


def info(message: str, **fields: Any) -> None:
    emit("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    emit("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    emit("ERROR", message, **fields)
