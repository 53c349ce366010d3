"""The event model: every way an audit-log entry reaches Rampart, parsed once into `AuditEvent`.

Deliveries accepted (outermost first), per tests/data/corpus/FORMAT_NOTES.md §5:
- a Pub/Sub push body `{"message": {"data": <base64 LogEntry>, ...}, "subscription": ...}`;
- a CloudEvent `google.cloud.pubsub.topic.v1.messagePublished` (its `data` is a push body);
- a CloudEvent `google.cloud.audit.log.v1.written` (its `data` is the LogEntry; no `@type`);
- a gen1 `PubsubMessage` `{"@type": ...PubsubMessage, "data": <base64>}`;
- a bare LogEntry, a JSON array of them, or JSON Lines (`iter_documents`).

This is the only module that digs into raw dicts. It imports nothing beyond the
standard library, so parsing stays cheap on the cold path.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Container, Iterator, Mapping
from typing import Any, NamedTuple, overload

# A LogEntry is at most 256 KiB; base64 adds a third. Anything far past that is not ours.
MAX_ENTRY_BYTES = 512 * 1024
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # replay files

AUDIT_WRITTEN = "google.cloud.audit.log.v1.written"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


class BadInput(ValueError):
    """An input that is not an audit-log entry Rampart can read. `reason` is one line, no payload."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuditEvent(NamedTuple):
    """One Cloud Audit Log entry, typed and read-only. `request`/`response` stay raw dicts
    for rules to read through `pick()`; everything else is a plain field.

    A NamedTuple rather than a dataclass: it is defined on the cold path of every function
    instance, and costs a fifth as much to define.
    """

    service: str
    method: str
    resource_name: str
    project: str
    location: str
    principal: str
    insert_id: str
    timestamp: str
    log_kind: str  # activity | data_access | system_event | policy | "" (unknown)
    status_code: int
    status_message: str
    resource_type: str
    operation_id: str = ""
    operation_first: bool = False
    operation_last: bool = False
    user_agent: str = ""
    request: Mapping[str, Any] = {}
    response: Mapping[str, Any] = {}
    service_data: Mapping[str, Any] = {}
    resource_labels: Mapping[str, Any] = {}

    @property
    def key(self) -> tuple[str, str]:
        """The (serviceName, methodName) pair rules trigger on."""
        return (self.service, self.method)

    @property
    def event_id(self) -> str:
        return self.insert_id or self.operation_id or f"{self.method}@{self.timestamp}"


# ---------------------------------------------------------------------------
# Field access shared by rules: camelCase first, proto snake_case second.

_SNAKE_CACHE: dict[str, str] = {}
_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    s = _SNAKE_CACHE.get(name)
    if s is None:
        s = _CAMEL_RE.sub("_", name).lower()
        _SNAKE_CACHE[name] = s
    return s


def pick(obj: Any, *path: str, default: Any = None) -> Any:
    """Follow `path` through nested dicts, accepting camelCase or snake_case keys.

    Returns `default` when any step is missing or not a dict, so rules never raise on
    an unexpected shape.
    """
    cur = obj
    for key in path:
        # `type(...) is dict` first: json.loads gives plain dicts, and an ABC check costs ~10x more.
        if type(cur) is not dict and not isinstance(cur, Mapping):
            return default
        if key in cur:
            cur = cur[key]
            continue
        alt = _snake(key)
        if alt in cur:
            cur = cur[alt]
            continue
        return default
    return cur


def pick_dict(obj: Any, *path: str) -> Mapping[str, Any]:
    v = pick(obj, *path)
    return v if type(v) is dict or isinstance(v, Mapping) else {}


def pick_list(obj: Any, *path: str) -> list[Any]:
    v = pick(obj, *path)
    return v if isinstance(v, list) else []


def pick_str(obj: Any, *path: str) -> str:
    v = pick(obj, *path)
    return v if isinstance(v, str) else ""


# ---------------------------------------------------------------------------
# Unwrapping deliveries.


def _b64_json(data: Any, where: str) -> Any:
    if not isinstance(data, str | bytes):
        raise BadInput(f"{where}: expected base64 text, found {type(data).__name__}")
    if len(data) > MAX_ENTRY_BYTES * 4 // 3 + 4:
        raise BadInput(f"{where}: {len(data)} bytes of base64, over the {MAX_ENTRY_BYTES}-byte entry limit")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{where}: not valid base64") from None
    return _loads(raw, where)


def _loads(raw: str | bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise BadInput(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where}: not JSON ({exc.msg} at position {exc.pos})") from None
    except ValueError:
        # int() refuses more than sys.get_int_max_str_digits() digits (4300); json.loads says so with a plain ValueError.
        raise BadInput(f"{where}: a JSON number with too many digits to read") from None
    except RecursionError:
        raise BadInput(f"{where}: JSON nested too deeply") from None


_GOOGLE_EVENT_TYPE = re.compile(r"google(?:\.[A-Za-z0-9]+){2,10}")


def _type_name(ce_type: Any) -> str:
    """A CloudEvent type for a reason: quoted if it is a Google event type name, else only its
    size, since a structured event's `type` is payload (a reason never echoes payload)."""
    if isinstance(ce_type, str) and len(ce_type) <= 100 and _GOOGLE_EVENT_TYPE.fullmatch(ce_type):
        return repr(ce_type)
    if isinstance(ce_type, str):
        return f"(a {len(ce_type)}-character non-Google name)" if ce_type else "(empty)"
    return f"(a {type(ce_type).__name__})"


def unwrap(doc: Any, *, ce_type: str = "", depth: int = 0) -> Mapping[str, Any]:
    """Strip delivery envelopes from `doc` and return the LogEntry dict inside."""
    if depth > 4:
        raise BadInput("envelope nested more than 4 levels deep")
    if type(doc) is not dict and not isinstance(doc, Mapping):
        raise BadInput(f"expected a JSON object (LogEntry or envelope), found {type(doc).__name__}")
    if "protoPayload" in doc or "protopayload" in doc:
        return doc
    if "protopayload_auditlog" in doc:
        raise BadInput("a BigQuery log-export row, not a LogEntry: export with `gcloud logging read --format=json`")
    if "specversion" in doc:  # structured-mode CloudEvent
        t = doc.get("type")
        data = doc.get("data")
        if data is None and "data_base64" in doc:
            data = _b64_json(doc["data_base64"], "CloudEvent data_base64")
        return unwrap(data, ce_type=t if isinstance(t, str) else "", depth=depth + 1)
    msg = doc.get("message")
    if (type(msg) is dict or isinstance(msg, Mapping)) and "data" in msg:  # push body / messagePublished data
        return unwrap(_b64_json(msg["data"], "message.data"), depth=depth + 1)
    if isinstance(doc.get("data"), str) and ("attributes" in doc or "@type" in doc):  # gen1 PubsubMessage
        return unwrap(_b64_json(doc["data"], "PubsubMessage.data"), depth=depth + 1)
    if ce_type and ce_type not in (AUDIT_WRITTEN, PUBSUB_PUBLISHED):
        raise BadInput(f"CloudEvent type {_type_name(ce_type)} is not an audit-log delivery")
    if isinstance(msg, Mapping):
        raise BadInput("Pub/Sub message without data")
    raise BadInput("no protoPayload: not a Cloud Audit Log entry")


# ---------------------------------------------------------------------------
# LogEntry → AuditEvent.

_LOG_KIND_RE = re.compile(r"cloudaudit\.googleapis\.com(?:%2F|/)(\w+)$")
_PROJECT_RE = re.compile(r"^(?:projects|namespaces)/([^/]+)")
_LOCATION_RE = re.compile(r"/locations/([^/]+)")


def _str(entry: Mapping[str, Any], key: str, where: str, *, strict: bool = False) -> str:
    v = entry.get(key)
    if type(v) is str:
        return v
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if strict or isinstance(v, bool) or not isinstance(v, int | float):
        raise BadInput(f"{where}{key}: expected a string, found {type(v).__name__}")
    return str(v)


def _dict(entry: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    v = entry.get(key)
    if type(v) is dict:
        return v
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise BadInput(f"{where}{key}: expected an object, found {type(v).__name__}")
    return v


def from_entry(entry: Mapping[str, Any]) -> AuditEvent:
    """Build an `AuditEvent` from a LogEntry dict (raw, Eventarc, or Panther-normalized keys)."""
    return _from_entry(entry, None)  # type: ignore[return-value]  # None only for a `wanted` set


def _from_entry(entry: Mapping[str, Any], wanted: Container[tuple[str, str]] | None) -> AuditEvent | None:
    """Validate every field; build the event only if `wanted` is None or holds its (serviceName,
    methodName). Malformed input raises BadInput whether or not it is wanted."""
    if type(entry) is not dict and not isinstance(entry, Mapping):
        raise BadInput(f"expected a LogEntry object, found {type(entry).__name__}")
    pp = entry.get("protoPayload", entry.get("protopayload"))
    if type(pp) is not dict and not isinstance(pp, Mapping):
        raise BadInput(f"protoPayload: expected an object, found {type(pp).__name__}")
    p = "protoPayload."
    service = _str(pp, "serviceName", p, strict=True)
    method = _str(pp, "methodName", p, strict=True)
    if not method:
        raise BadInput("protoPayload.methodName is missing")
    resource_name = _str(pp, "resourceName", p, strict=True)
    status = _dict(pp, "status", p)
    code = status.get("code", 0)
    # gcloud YAML exports quote numbers. Only ASCII digits: "²".isdigit() is True but int("²")
    # raises, and so does int() of more than 4300 digits.
    if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) <= 18:
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        raise BadInput(f"protoPayload.status.code: expected an integer, found {type(code).__name__}")
    msg = status.get("message", "")
    auth = _dict(pp, "authenticationInfo", p)
    principal = auth.get("principalEmail") or ""
    if not isinstance(principal, str):
        raise BadInput("protoPayload.authenticationInfo.principalEmail: expected a string")
    resource = _dict(entry, "resource", "")
    labels = _dict(resource, "labels", "resource.")
    log_name = _str(entry, "logName", "") or _str(entry, "logname", "")
    op = _dict(entry, "operation", "")
    req_meta = _dict(pp, "requestMetadata", p)
    request = _dict(pp, "request", p)
    ts = entry.get("timestamp") or pp.get("timestamp") or ""
    if not isinstance(ts, str | int | float) or isinstance(ts, bool):
        # str() of an object would make it (at any size or depth) the Finding's timestamp and event id.
        raise BadInput(f"timestamp: expected a string, found {type(ts).__name__}")
    service_data = _dict(pp, "serviceData", p) or _dict(pp, "metadata", p)
    insert_id = _str(entry, "insertId", "") or _str(entry, "insertid", "")
    resource_type = _str(resource, "type", "resource.")
    operation_id = _str(op, "id", "operation.")
    user_agent = _str(req_meta, "callerSuppliedUserAgent", "requestMetadata.")
    response = _dict(pp, "response", p)
    if wanted is not None and (service, method) not in wanted:
        return None  # valid, and no rule wants it: the derived fields below are not worth their ~5 µs
    m = _LOG_KIND_RE.search(log_name)
    log_kind = m.group(1) if m else ""
    project = ""
    m = _PROJECT_RE.match(resource_name)
    if m:
        project = m.group(1)
    if not project or project == "_":
        lp = labels.get("project_id")
        project = lp if isinstance(lp, str) and lp else ""
    if not project:
        m = _PROJECT_RE.match(log_name)
        project = m.group(1) if m else ""

    location = ""
    m = _LOCATION_RE.search(resource_name)
    if m:
        location = m.group(1)
    if not location:
        loc = request.get("region") or labels.get("location")
        if not loc:
            cur = pick_list(pp, "resourceLocation", "currentLocations")
            loc = cur[0] if cur else ""
        location = loc if isinstance(loc, str) else ""

    # Positionally, in field order: a NamedTuple built by keyword costs 2 µs more, on every event.
    return _new_event((
        service,  # service
        method,  # method
        resource_name,  # resource_name
        project,  # project
        location,  # location
        principal,  # principal
        insert_id,  # insert_id
        ts if isinstance(ts, str) else str(ts),  # timestamp
        log_kind,  # log_kind
        code,  # status_code
        msg if isinstance(msg, str) else "",  # status_message
        resource_type,  # resource_type
        operation_id,  # operation_id
        op.get("first") is True,  # operation_first
        op.get("last") is True,  # operation_last
        user_agent,  # user_agent
        request,  # request
        response,  # response
        service_data,  # service_data
        labels,  # resource_labels
    ))


_new_event = AuditEvent._make


def parse(doc: Any, *, ce_type: str = "") -> AuditEvent:
    """Unwrap any accepted delivery (already JSON-decoded) into an `AuditEvent`."""
    return from_entry(unwrap(doc, ce_type=ce_type))


def parse_bytes(raw: bytes | str) -> AuditEvent:
    """Parse one JSON document (an HTTP body) into an `AuditEvent`."""
    if len(raw) > MAX_ENTRY_BYTES * 2:
        raise BadInput(f"body of {len(raw)} bytes is over the {MAX_ENTRY_BYTES * 2}-byte limit")
    return parse(_loads(raw, "body"))


@overload
def from_cloudevent(ce: Any) -> AuditEvent: ...


@overload
def from_cloudevent(ce: Any, *, wanted: Container[tuple[str, str]]) -> AuditEvent | None: ...


def from_cloudevent(ce: Any, *, wanted: Container[tuple[str, str]] | None = None) -> AuditEvent | None:
    """Parse a `cloudevents` CloudEvent as functions-framework hands it to a function.

    Binary-mode Eventarc deliveries put attributes in headers and the LogEntry in the body;
    functions-framework gives us both through the same object. With `wanted` (the
    (serviceName, methodName) pairs some rule triggers on), an entry that is valid but not
    wanted returns None without building the event: most of the audit stream, at half the cost.
    """
    try:
        ce_type = ce["type"]
    except (KeyError, TypeError):
        ce_type = ""
    data = ce.data if hasattr(ce, "data") else None
    if isinstance(data, bytes | str):
        if len(data) > MAX_ENTRY_BYTES * 2:
            raise BadInput(f"CloudEvent data of {len(data)} bytes is over the limit")
        data = _loads(data, "CloudEvent data")
    if data is None:
        raise BadInput(f"CloudEvent {_type_name(ce_type) if ce_type else '(no type)'} has no data")
    return _from_entry(unwrap(data, ce_type=ce_type if isinstance(ce_type, str) else ""), wanted)


# ---------------------------------------------------------------------------
# What to skip, and why. Config-free: ignored principals are the decision's business.


def skip_reason(event: AuditEvent) -> str | None:
    """Why this entry records no user change worth evaluating, or None if it may."""
    if event.status_code != 0:
        return "failed_call"
    if event.log_kind in ("system_event", "data_access"):
        return event.log_kind
    if event.method.startswith("/") or ".internal." in event.method:
        return "internal_method"
    if event.operation_first and not event.operation_last and event.service != "compute.googleapis.com":
        # The `last` record of the same operation follows. Compute Engine is the exception: its
        # first record carries the request body and its last only the request's @type (corpus:
        # compute/c7n-route-create.json, compute/c7n-autoscaler-insert.json).
        return "operation_first"
    if pick(event.request, "validateOnly") is True:
        return "validate_only"
    return None


# ---------------------------------------------------------------------------
# Replay input: a file of exported logs in any accepted shape.


def iter_documents(text: str) -> Iterator[Any | BadInput]:
    """Yield each JSON document in `text`: one object, a JSON array, or JSON Lines.

    A line that does not parse yields a `BadInput` (with its line number) instead of
    stopping the whole file.
    """
    for _, doc in iter_located(text):
        yield doc


def iter_located(text: str) -> Iterator[tuple[str, Any | BadInput]]:
    """`iter_documents`, each document with where it was: "line N" (JSON Lines), "item N" (an
    array), or "" (one document)."""
    if len(text) > MAX_DOCUMENT_BYTES:
        yield "", BadInput(f"input of {len(text)} bytes is over the {MAX_DOCUMENT_BYTES}-byte replay limit")
        return
    stripped = text.strip()
    if not stripped:
        return
    try:
        whole = json.loads(stripped)
    except (ValueError, RecursionError):
        # Not one document (or one we cannot read): read it line by line, so one bad line
        # (too deep, a 5000-digit number) is reported with its number and the rest still count.
        whole = None
    if whole is not None:
        if isinstance(whole, list):
            for n, item in enumerate(whole, 1):
                yield f"item {n}", item
        else:
            yield "", whole
        return
    # Only "\n" ends a line: str.splitlines() also splits on U+2028, U+2029 and U+0085, which
    # JSON allows raw inside strings.
    for n, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        where = f"line {n}"
        try:
            yield where, _loads(line, where)
        except BadInput as exc:
            yield where, exc
