"""The stand-in's shared vocabulary: errors in google.rpc shape, routes, API registrations, JSON helpers.

Nothing here knows a particular Google API; `run_v2.py`, `cloudkms_v1.py` and later modules build on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from infra.local.standin.store import Store

Json = dict[str, Any]

DEFAULT_CALLER = "standin-caller@standin.invalid"
DEFAULT_ACTOR = "someone-else@example.com"

RPC_BY_HTTP = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# A resource-name segment never holds "/" or ":" (":" starts a custom verb).
SEG = r"[^/:]+"
DURATION_RE = re.compile(r"^(-?\d+)(\.\d{1,9})?s$")
TIMESTAMP_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

class ApiError(Exception):
    """An error answered in google.rpc JSON shape: {"error": {"code", "message", "status"}}."""

    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or RPC_BY_HTTP.get(code, "UNKNOWN")

    def payload(self) -> Json:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def bad(message: str) -> NoReturn:
    raise ApiError(400, message, "INVALID_ARGUMENT")


def precondition(message: str) -> NoReturn:
    raise ApiError(400, message, "FAILED_PRECONDITION")


def not_found(name: str) -> NoReturn:
    raise ApiError(404, f"Resource '{name}' was not found", "NOT_FOUND")


# ---------------------------------------------------------------------------------------------
# Responses, routes and API registrations
# ---------------------------------------------------------------------------------------------

@dataclass
class Response:
    """What the HTTP layer writes back; `drop` closes the connection without an answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False


def json_response(status: int, obj: Any) -> Response:
    return Response(status, json.dumps(obj, separators=(",", ":")).encode())


# handler(store, path variables, query parameters, JSON body) -> Response; called under store.lock.
Handler = Callable[["Store", dict[str, str], dict[str, str], Json], Response]

_TEMPLATE_VAR = re.compile(r"\{(\w+)=([^}]+)\}")


@dataclass(frozen=True)
class Route:
    """One REST method: HTTP verb, google.api.http path template, discovery method id, handler.

    The template is the one in the API's proto annotation and discovery `path`, e.g.
    `/v2/{name=projects/*/locations/*/services/*}:getIamPolicy`; `*` is one name segment.
    `discovery_id` (e.g. `run.projects.locations.services.getIamPolicy`) names the method in the
    API's discovery document; the contract tests check verb and path against it.
    """

    method: str
    template: str
    discovery_id: str
    handler: Handler = field(compare=False)

    def regex(self) -> re.Pattern[str]:
        def var(m: re.Match[str]) -> str:
            return f"(?P<{m.group(1)}>{m.group(2).replace('*', SEG)})"

        pattern = _TEMPLATE_VAR.sub(var, self.template)
        return re.compile(f"^{pattern}$")

    def variables(self) -> dict[str, str]:
        """Path variable -> its segment pattern, e.g. {"name": "projects/*/locations/*/services/*"}."""
        return dict(_TEMPLATE_VAR.findall(self.template))

    def path(self) -> str:
        """The discovery document's `path` form: `v2/{+name}:getIamPolicy`."""
        return _TEMPLATE_VAR.sub(lambda m: "{+" + m.group(1) + "}", self.template).lstrip("/")

    def flat_path(self) -> str:
        """The discovery document's `flatPath` form: every `*` becomes `{<previous literal segment>Id}`,
        numbered from the second in a row (`v1/*/*` is `v1/{v1Id}/{v1Id1}`)."""
        plain = _TEMPLATE_VAR.sub(lambda m: m.group(2), self.template).lstrip("/")
        out: list[str] = []
        literal, run = "", 0
        for part in plain.split("/"):
            star, _, verb = part.partition(":")
            if star == "*":
                part = "{" + literal + "Id" + (str(run) if run else "") + "}" + (":" + verb if verb else "")
                run += 1
            else:
                literal, run = part, 0
            out.append(part)
        return "/".join(out)


@dataclass(frozen=True)
class Collection:
    """A kind of resource an API module keeps in the store (also a key of the seed format).

    `seed(store, index, entry)` validates and stores one seed entry (its name already matched
    `name_re`); `view(store, name)` is the resource as GET answers it; `patch(store, name, merge_patch,
    actor)` is a concurrent writer's change (the admin `mutate` call); `move_etag(store, name)` and
    `delete(store, name)` exist only for kinds that have an etag or can be deleted that way.
    """

    key: str
    name_re: re.Pattern[str]
    seed: Callable[[Store, int, Json], None]
    view: Callable[[Store, str], Json]
    patch: Callable[[Store, str, Json, str], None]
    move_etag: Callable[[Store, str], None] | None = None
    delete: Callable[[Store, str], None] | None = None


@dataclass(frozen=True)
class Api:
    """One Google REST API the stand-in serves; registered in `infra/local/standin/apis.py`.

    `discovery` is the file name of its discovery document in google-api-python-client
    (`googleapiclient/discovery_cache/documents/`); `tables` are extra private store tables.
    """

    name: str
    discovery: str
    routes: tuple[Route, ...]
    collections: tuple[Collection, ...] = ()
    tables: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Small JSON helpers
# ---------------------------------------------------------------------------------------------

def clone(obj: Any) -> Any:
    """Deep copy of plain JSON data (a JSON round trip beats copy.deepcopy on these shapes)."""
    return json.loads(json.dumps(obj))


def parse_body(raw: bytes) -> Json:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        bad(f"Invalid JSON payload received: {e}")
    if not isinstance(body, dict):
        bad(f"Invalid JSON payload received: expected an object, found {type(body).__name__}")
    return body


def camel(path: str) -> str:
    """update_mask paths may come snake_case (hand-built requests) or camelCase (the clients)."""
    return ".".join(re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), p) for p in path.split("."))


def mask_paths(raw: str | None) -> list[str] | None:
    if raw is None or raw.strip() == "":
        return None
    return [camel(p.strip()) for p in raw.split(",") if p.strip()]


def get_path(obj: Json, parts: list[str]) -> tuple[bool, Any]:
    node: Any = obj
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            return False, None
        node = node[p]
    return True, node


def set_path(obj: Json, parts: list[str], value: Any) -> None:
    node = obj
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = node[p] = {}
        node = nxt
    node[parts[-1]] = value


def del_path(obj: Json, parts: list[str]) -> None:
    node: Any = obj
    for p in parts[:-1]:
        node = node.get(p) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def merge_patch(target: Json, patch: Json) -> Json:
    """RFC 7396 JSON merge patch: objects merge, null deletes, anything else replaces."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            merge_patch(target[k], v)
        else:
            target[k] = clone(v)
    return target


def as_bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def page(names: list[str], params: dict[str, str]) -> tuple[list[str], str | None]:
    """One page of a list (pageToken is the offset); returns the page and the next token."""
    try:
        start = int(params.get("pageToken") or 0)
        size = int(params.get("pageSize") or 0)
    except ValueError:
        bad(f"pageToken/pageSize: expected integers, found {params.get('pageToken')!r}/"
            f"{params.get('pageSize')!r}")
    end = start + size if size > 0 else len(names)
    return names[start:end], (str(end) if end < len(names) else None)


# ---------------------------------------------------------------------------------------------
# Enums: stored and returned as names; the clients send numbers (`$alt=json;enum-encoding=int`)
# ---------------------------------------------------------------------------------------------

def enum(*pairs: tuple[int, str]) -> dict[int, str]:
    return dict(pairs)


def seq(*names: str) -> dict[int, str]:
    return dict(enumerate(names))


def normalize_enums(obj: Json, table: dict[str, dict[int, str]]) -> None:
    """Turn integer enums into names and reject unknown values, in place. Keys are JSON paths;
    lists along the path are walked."""
    for path, names in table.items():
        _normalize_at(obj, path.split("."), names, path)


def _normalize_at(node: Any, parts: list[str], names: dict[int, str], path: str) -> None:
    if isinstance(node, list):
        for item in node:
            _normalize_at(item, parts, names, path)
        return
    if not isinstance(node, dict) or parts[0] not in node:
        return
    if len(parts) > 1:
        _normalize_at(node[parts[0]], parts[1:], names, path)
        return
    value = node[parts[0]]
    if isinstance(value, list):
        node[parts[0]] = [_enum_name(v, names, path) for v in value]
    else:
        node[parts[0]] = _enum_name(value, names, path)


def _enum_name(value: Any, names: dict[int, str], path: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value in names:
            return names[value]
    elif isinstance(value, str) and value in names.values():
        return value
    bad(f"Invalid value at '{path}': expected one of {sorted(names.values())} or its number, "
        f"found {value!r}")


# ---------------------------------------------------------------------------------------------
# Durations and timestamps (protobuf JSON forms)
# ---------------------------------------------------------------------------------------------

def parse_duration(value: Any, what: str) -> float:
    m = DURATION_RE.match(value) if isinstance(value, str) else None
    if not m:
        bad(f"Invalid value at '{what}': expected a duration like \"86400s\", found {value!r}")
    return float(m.group(1) + (m.group(2) or ""))


def parse_timestamp(value: Any, what: str) -> float:
    m = TIMESTAMP_RE.match(value) if isinstance(value, str) else None
    if not m:
        bad(f"Invalid value at '{what}': expected an RFC 3339 timestamp, found {value!r}")
    frac = (m.group(2) or "")[:7]  # fromisoformat takes at most microseconds
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + zone).timestamp()


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
