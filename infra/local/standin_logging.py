"""The stand-in's Cloud Logging API v2 `entries.list`, over the audit entries the local pipeline
publishes: what Rampart asks to confirm an audit entry before a write the live state alone cannot
justify (shared/audit_confirm.py).

Checked against the logging.v2 discovery document (googleapiclient discovery_cache
`logging.v2.json`, method `logging.entries.list`): `POST /v2/entries:list`, body
`ListLogEntriesRequest {resourceNames[], filter, orderBy, pageSize, pageToken}`, answer
`ListLogEntriesResponse {entries[], nextPageToken}`; entries are LogEntry JSON as written.
The google-cloud-logging 3.17 HTTP client (`Client(_use_grpc=False)`) sends exactly that.

The filter language is Logging's; this stand-in evaluates the subset Rampart writes (comparisons
joined by AND) and answers 400 INVALID_ARGUMENT to anything else rather than guess:
    insertId="X"   logName="X"   timestamp>="T"   timestamp<="T"   timestamp="T"   log_id("X")
`resourceNames` must name `projects/P` (or folders/organizations); an entry is returned when its
logName is under one of them.

How entries get here: `LocalStack.publish` (what a log sink does) also posts each entry to
`POST /_standin/logging/entries {"entries": [LogEntry...]}`, as Cloud Logging holds an entry before
its sink forwards it. `DELETE /_standin/logging/entries` forgets them (the stand-in's reset does too).
An entry posted only to Pub/Sub, never here, is what a forged delivery looks like.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from typing import Any

Json = dict[str, Any]
MAX_ENTRIES = 50_000

_CLAUSE = re.compile(
    r'\s*(?:(?P<field>insertId|logName|timestamp)\s*(?P<op>>=|<=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"'
    r'|log_id\(\s*"(?P<log_id>(?:[^"\\]|\\.)*)"\s*\))\s*'
)
_PARENT = re.compile(r"^(projects|folders|organizations|billingAccounts)/[^/]+$")


class FilterError(ValueError):
    """A filter this stand-in does not evaluate (or Logging would refuse)."""


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _time(value: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"invalid timestamp {value!r}") from None


def compile_filter(text: str) -> Callable[[Json], bool]:
    """A predicate over LogEntry JSON for `text` (the subset in the module docstring)."""
    tests: list[Callable[[Json], bool]] = []
    for part in re.split(r"\s+AND\s+", text.strip()) if text.strip() else []:
        m = _CLAUSE.fullmatch(part)
        if not m:
            raise FilterError(f"unsupported filter clause {part[:80]!r}")
        if m["log_id"] is not None:
            suffix = "/logs/" + _unquote(m["log_id"]).replace("/", "%2F")
            tests.append(lambda e, s=suffix: str(e.get("logName", "")).endswith(s)
                         and str(e.get("logName", "")).count("/logs/") == 1)
            continue
        field, op, value = m["field"], m["op"], _unquote(m["value"])
        if field == "timestamp":
            bound = _time(value)
            compare = {"=": lambda a, b: a == b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}[op]
            tests.append(lambda e, c=compare, b=bound: _entry_time(e) is not None and c(_entry_time(e), b))
        elif op == "=":
            tests.append(lambda e, f=field, v=value: e.get(f) == v)
        else:
            raise FilterError(f"{field} supports = only here")
    return lambda entry: all(t(entry) for t in tests)


def _entry_time(entry: Json) -> dt.datetime | None:
    ts = entry.get("timestamp")
    if not isinstance(ts, str):
        return None
    try:
        return _time(ts)
    except FilterError:
        return None


class LoggingStandin:
    """The entries Cloud Logging would hold, and `entries.list` over them. Thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[Json] = []

    def clear(self) -> None:
        with self.lock:
            self.entries = []

    def add(self, entries: list[Any]) -> int:
        ok = [e for e in entries if isinstance(e, dict)]
        with self.lock:
            self.entries.extend(ok)
            del self.entries[:-MAX_ENTRIES]
        return len(ok)

    def entries_list(self, body: Json) -> tuple[int, Json]:
        """`entries.list`: (HTTP status, JSON body)."""
        names = body.get("resourceNames")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and _PARENT.match(n) for n in names):
            return 400, _error(400, "resourceNames: expected one or more of projects/P, folders/F, organizations/O",
                               "INVALID_ARGUMENT")
        try:
            match = compile_filter(str(body.get("filter") or ""))
        except FilterError as exc:
            return 400, _error(400, f"filter: {exc}", "INVALID_ARGUMENT")
        size = body.get("pageSize") or 50
        start = int(body.get("pageToken") or 0) if str(body.get("pageToken") or "0").isdigit() else 0
        prefixes = tuple(f"{n}/logs/" for n in names)
        with self.lock:
            found = [e for e in self.entries if str(e.get("logName", "")).startswith(prefixes) and match(e)]
        if str(body.get("orderBy") or "").lower().startswith("timestamp desc"):
            found.reverse()
        page = found[start:start + int(size)]
        out: Json = {"entries": page}
        if start + int(size) < len(found):
            out["nextPageToken"] = str(start + int(size))
        return 200, out

    def admin(self, method: str, body: Json) -> tuple[int, Json]:
        if method == "POST":
            entries = body.get("entries")
            if not isinstance(entries, list):
                return 400, _error(400, "expected {\"entries\": [LogEntry, ...]}", "INVALID_ARGUMENT")
            return 200, {"added": self.add(entries)}
        if method == "DELETE":
            self.clear()
            return 200, {"ok": True}
        if method == "GET":
            with self.lock:
                return 200, {"entries": list(self.entries)}
        return 405, _error(405, f"{method} not allowed on /_standin/logging/entries", "INVALID_ARGUMENT")


def _error(code: int, message: str, status: str) -> Json:
    return {"error": {"code": code, "message": message, "status": status}}
