"""The stand-in's Cloud Logging API v2 `entries.list` (sinks are logging_v2.py's), over the audit entries the local pipeline
publishes: what Rampart asks to confirm an audit entry before a write the live state alone cannot
justify (shared/audit_confirm.py).

Checked against the logging.v2 discovery document (googleapiclient discovery_cache
`logging.v2.json`, method `logging.entries.list`): `POST /v2/entries:list`, body
`ListLogEntriesRequest {resourceNames[], filter, orderBy, pageSize, pageToken}`, answer
`ListLogEntriesResponse {entries[], nextPageToken}`; entries are LogEntry JSON as written.
The google-cloud-logging 3.17 HTTP client (`Client(_use_grpc=False)`) sends exactly that.

The filter language is Logging's; this stand-in evaluates the subset Rampart writes (comparisons
joined by AND) and answers 400 INVALID_ARGUMENT to anything else rather than guess:
    insertId="X"   logName="X"   timestamp (= < <= > >=) "T"   log_id("X")
    protoPayload.resourceName="X"   protoPayload.methodName="X"
`resourceNames` must name `projects/P` (or folders/organizations); an entry is returned when its
logName is under one of them.

How entries get here: they are the seed key `logEntries` (each LogEntry with `name` =
LOGNAME/entries/INSERTID added; `StandinAdmin.log_entries` adds it), and `LocalStack.publish` (what
a log sink does) seeds each entry it publishes, as Cloud Logging holds an entry before its sink
forwards it; the stand-in's reset forgets them. An entry published to Pub/Sub and never held here
is what a forged delivery looks like.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from infra.local.standin.core import Api, Collection, Json, Response, Route, bad, clone, json_response
from infra.local.standin.store import Store

MAX_ENTRIES = 50_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_CLAUSE = re.compile(
    r'\s*(?:(?P<field>insertId|logName|timestamp|protoPayload\.resourceName|protoPayload\.methodName)'
    r'\s*(?P<op>>=|<=|<|>|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"'
    r'|log_id\(\s*"(?P<log_id>(?:[^"\\]|\\.)*)"\s*\))\s*'
)
_PARENT = re.compile(r"^(projects|folders|organizations|billingAccounts)/[^/]+$")


class FilterError(ValueError):
    """A filter this stand-in does not evaluate (or Logging would refuse)."""


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


_TS = re.compile(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)?$")


def _time(value: str) -> dt.datetime:
    """RFC 3339 as Logging reads it (a zone-less value is UTC), to the microsecond."""
    m = _TS.match(value.strip())
    if not m:
        raise FilterError(f"invalid timestamp {value[:40]!r}")
    zone = m[4] or "Z"
    text = f"{m[1]}T{m[2]}.{(m[3] or '0')[:6].ljust(6, '0')}{'+00:00' if zone == 'Z' else zone}"
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


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
            compare = {"=": lambda a, b: a == b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
                       "<": lambda a, b: a < b, ">": lambda a, b: a > b}[op]
            tests.append(lambda e, c=compare, b=bound: _entry_time(e) is not None and c(_entry_time(e), b))
        elif op == "=" and field.startswith("protoPayload."):
            key = field.split(".", 1)[1]
            tests.append(lambda e, k=key, v=value: isinstance(e.get("protoPayload"), dict) and e["protoPayload"].get(k) == v)
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


ENTRIES = "logEntries"
ENTRY_NAME = re.compile(r"^(projects|folders|organizations|billingAccounts)/[^/]+/logs/[^/]+/entries/[^/]+$")


def entry_name(entry: Json) -> str | None:
    """The store key of a LogEntry (its logName and insertId), or None if Logging would not hold it."""
    log_name, insert_id = entry.get("logName"), entry.get("insertId")
    if not (isinstance(log_name, str) and isinstance(insert_id, str) and insert_id and "/" not in insert_id):
        return None
    name = f"{log_name}/entries/{insert_id}"
    return name if ENTRY_NAME.match(name) else None


def list_entries(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    """`logging.entries.list`: the held entries under `resourceNames` that match `filter`."""
    names = body.get("resourceNames")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and _PARENT.match(n) for n in names):
        bad("resourceNames: expected one or more of projects/P, folders/F, organizations/O")
    try:
        match = compile_filter(str(body.get("filter") or ""))
    except FilterError as exc:
        bad(f"filter: {exc}")
    size = body.get("pageSize") or 50
    if not isinstance(size, int) or not 0 < size <= 1000:
        bad(f"pageSize: expected 1..1000, found {size!r}")
    token = str(body.get("pageToken") or "0")
    start = int(token) if token.isdigit() else 0
    prefixes = tuple(f"{n}/logs/" for n in names)
    found = [clone(e) for e in store.tables[ENTRIES].values()
             if str(e.get("logName", "")).startswith(prefixes) and match(e)]
    # Logging's default order is timestamp ascending; orderBy may ask for "timestamp desc".
    found.sort(key=lambda e: _entry_time(e) or _EPOCH)
    if str(body.get("orderBy") or "").lower().startswith("timestamp desc"):
        found.reverse()
    out: Json = {"entries": found[start:start + size]}
    if start + size < len(found):
        out["nextPageToken"] = str(start + size)
    return json_response(200, out)


def _canonical_time(value: str) -> str:
    """Logging stores and returns timestamps as RFC 3339 UTC ("Z"), nanoseconds kept."""
    m = _TS.match(value.strip())
    if not m:
        bad(f"timestamp: expected RFC 3339, found {value[:40]!r}")
    if m[4] and m[4] != "Z":
        return _time(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{m[1]}T{m[2]}" + (f".{m[3]}" if m[3] else "") + "Z"


def _seed_entry(store: Store, index: int, entry: Json) -> None:
    name = entry.pop("name")
    for key in ("timestamp", "receiveTimestamp"):
        if isinstance(entry.get(key), str):
            entry[key] = _canonical_time(entry[key])
    if entry_name(entry) != name:
        bad(f"seed.{ENTRIES}[{index}].name: expected LOGNAME/entries/INSERTID of the entry, found {name!r}")
    table = store.tables[ENTRIES]
    table[name] = entry
    while len(table) > MAX_ENTRIES:
        table.pop(next(iter(table)))


def _view_entry(store: Store, name: str) -> Json:
    return dict(store.tables[ENTRIES][name], name=name)


def _patch_entry(store: Store, name: str, patch: Json, actor: str) -> None:
    bad("log entries are immutable: Cloud Logging has no method that changes one")


API = Api(
    name="logging_v2_entries",
    discovery="logging.v2.json",
    routes=(Route("POST", "/v2/entries:list", "logging.entries.list", list_entries),),
    collections=(Collection(ENTRIES, ENTRY_NAME, seed=_seed_entry, view=_view_entry, patch=_patch_entry),),
)
