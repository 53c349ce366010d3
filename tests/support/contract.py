"""Check stand-in routes and JSON bodies against a Google API discovery document (any API).

The documents ship in google-api-python-client (a test-only dependency), under
`googleapiclient/discovery_cache/documents/<api>.<version>.json`. `Discovery("run.v2.json")` loads
one; `check_route`, `check_request`, `check_response` and `check_error` return a list of
violations (empty = conforms), each saying where, what was expected and what was found.

The walker is JSON-schema style over the document's `schemas`: objects accept only the properties
they define (or anything their `additionalProperties` allows), arrays check every item, strings
check `enum` values and the protobuf JSON `format`s (int64/uint64 as decimal strings,
google-datetime, google-duration, google-fieldmask, byte), integers and numbers must be numbers,
and an `Any` (an object whose values are `type: any`) carrying `@type` is checked against the
message its type URL names when the document defines it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from infra.local.standin.core import Route

Json = dict[str, Any]

# google.rpc.Code names and the HTTP status each maps to (google/rpc/code.proto; AIP-193).
RPC_CODE_HTTP = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
    "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
# System parameters every Google REST API accepts (cloud.google.com/apis/docs/system-parameters);
# `$alt` is the alias the GAPIC REST transports send (`$alt=json;enum-encoding=int`).
SYSTEM_QUERY_ALIASES = frozenset({"$alt"})
_INT64 = re.compile(r"^-?\d+$")
_UINT64 = re.compile(r"^\d+$")
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_FIELDMASK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(,[A-Za-z_][A-Za-z0-9_.]*)*$|^\*$|^$")


def documents_dir() -> Path:
    spec = find_spec("googleapiclient")
    if spec is None or spec.origin is None:
        raise RuntimeError("expected google-api-python-client (requirements-dev.txt) for its discovery "
                           "documents, found it not installed; run `make venv`")
    return Path(spec.origin).parent / "discovery_cache" / "documents"


@dataclass(frozen=True)
class Method:
    id: str
    http_method: str
    path: str
    flat_path: str
    parameters: Json
    request: str | None
    response: str | None


class Discovery:
    """One discovery document: its methods by id, its schemas, and the checks against them."""

    def __init__(self, name: str) -> None:
        path = documents_dir() / name
        if not path.is_file():
            raise FileNotFoundError(f"expected the discovery document {path}, found no such file")
        self.name = name
        self.doc: Json = json.loads(path.read_text())
        self.schemas: dict[str, Json] = self.doc["schemas"]
        self.system_parameters: Json = self.doc.get("parameters", {})
        self.methods: dict[str, Method] = {m.id: m for m in self._walk(self.doc)}

    @staticmethod
    def _walk(node: Json) -> Iterator[Method]:
        for m in node.get("methods", {}).values():
            yield Method(m["id"], m["httpMethod"], m["path"], m.get("flatPath", m["path"]), m.get("parameters", {}),
                         (m.get("request") or {}).get("$ref"), (m.get("response") or {}).get("$ref"))
        for child in node.get("resources", {}).values():
            yield from Discovery._walk(child)

    # -- routes --------------------------------------------------------------------------------

    def check_route(self, route: Route) -> list[str]:
        """(a) the route's verb and path template are the discovery method's."""
        where = f"{route.method} {route.template} ({route.discovery_id or 'no discovery id'})"
        method = self.methods.get(route.discovery_id)
        if method is None:
            return [f"{where}: expected a method id defined in {self.name}, found none by that id"]
        problems = []
        if method.http_method != route.method:
            problems.append(f"{where}: expected HTTP {method.http_method}, found {route.method}")
        if method.flat_path != route.flat_path() and not self._same_path_by_patterns(method, route):
            problems.append(f"{where}: expected path {method.flat_path} (or {method.path} with its parameter "
                            f"patterns), found {route.flat_path()}")
        return problems

    @staticmethod
    def _same_path_by_patterns(method: Method, route: Route) -> bool:
        """For methods whose flatPath cannot name the segments (`v1/{v1Id}/{v1Id1}/assets` for a
        parent that may be a project, folder or organization): the `path` form is the same and each
        variable's segment pattern is the parameter's `pattern` (`[^/]+` being `*`)."""
        if method.path != route.path():
            return False
        for var, segments in route.variables().items():
            pattern = (method.parameters.get(var) or {}).get("pattern", "")
            if pattern.removeprefix("^").removesuffix("$").replace("[^/]+", "*") != segments:
                return False
        return True

    # -- requests and responses ----------------------------------------------------------------

    def check_request(self, method_id: str, query: dict[str, list[str]], body: Any) -> list[str]:
        """(b) a request's query parameters and body use only what the method defines."""
        method = self.methods[method_id]
        problems: list[str] = []
        for key, values in query.items():
            if key in SYSTEM_QUERY_ALIASES:
                continue
            param = method.parameters.get(key) or self.system_parameters.get(key)
            if param is None or param.get("location") == "path":
                problems.append(f"{method_id} query {key!r}: expected one of "
                                f"{sorted(k for k, p in method.parameters.items() if p.get('location') == 'query')}"
                                f", found an unknown parameter")
                continue
            for v in values:
                problems += self._scalar(param, v, f"{method_id} query {key}", from_query=True)
        if method.request is None:
            if body not in (None, {}):
                problems.append(f"{method_id} request: expected no body, found {_short(body)}")
        elif body is not None:
            problems += self.check(body, {"$ref": method.request}, f"{method_id} request",
                                   int_enums=True)
        return problems

    def check_response(self, method_id: str, body: Any) -> list[str]:
        method = self.methods[method_id]
        if method.response is None:
            return [] if body in (None, {}) else [f"{method_id} response: expected no body, found {_short(body)}"]
        return self.check(body, {"$ref": method.response}, f"{method_id} response")

    def check_error(self, http_status: int, body: Any) -> list[str]:
        """(c) an error body is the JSON form of google.rpc.Status: {"error": {code, message, status,
        details}}, code = the HTTP status, status = the google.rpc.Code name that maps to it."""
        where = f"error {http_status}"
        if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
            return [f"{where}: expected {{\"error\": {{...}}}}, found {_short(body)}"]
        err = dict(body["error"])
        problems = []
        status = err.pop("status", None)
        if RPC_CODE_HTTP.get(status) != http_status:
            problems.append(f"{where}.status: expected a google.rpc.Code name that maps to HTTP "
                            f"{http_status}, found {status!r}")
        if err.get("code") != http_status:
            problems.append(f"{where}.code: expected {http_status} (the HTTP status), found {err.get('code')!r}")
        if not err.get("message"):
            problems.append(f"{where}.message: expected a developer-facing message, found none")
        problems += self.check(err, {"$ref": self.status_schema()}, where)
        return problems

    def status_schema(self) -> str:
        for name in ("GoogleRpcStatus", "Status"):
            if name in self.schemas:
                return name
        raise KeyError(f"expected a google.rpc.Status schema in {self.name}, found none")

    def operation_schema(self) -> str:
        """The google.longrunning.Operation schema's name; "" for an API with no long-running
        methods (orgpolicy.v2.json defines none)."""
        for name in ("GoogleLongrunningOperation", "Operation"):
            if name in self.schemas and "done" in self.schemas[name].get("properties", {}):
                return name
        return ""

    def has_status_schema(self) -> bool:
        return any(name in self.schemas for name in ("GoogleRpcStatus", "Status"))

    # -- the walker ----------------------------------------------------------------------------

    def check(self, value: Any, schema: Json, where: str, *, int_enums: bool = False) -> list[str]:
        """Violations of `schema` by `value`. `int_enums`: the GAPIC REST clients send enums as
        numbers (`enum-encoding=int`); discovery lists names only, so a request's number is
        accepted as a number (the stand-in's proto tables, checked against the protos, map it)."""
        if "$ref" in schema:
            return self.check(value, self.schemas[schema["$ref"]], where, int_enums=int_enums)
        kind = schema.get("type")
        if kind == "any":
            return []
        if kind == "object":
            return self._object(value, schema, where, int_enums)
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected an array, found {_short(value)}"]
            out: list[str] = []
            for i, item in enumerate(value):
                out += self.check(item, schema.get("items", {}), f"{where}[{i}]", int_enums=int_enums)
            return out
        return self._scalar(schema, value, where, int_enums=int_enums)

    def _object(self, value: Any, schema: Json, where: str, int_enums: bool) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: expected an object, found {_short(value)}"]
        props: Json = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out: list[str] = []
        if extra is not None and extra.get("type") == "any" and not props:
            return self._any(value, where, int_enums)
        for key, item in value.items():
            if key in props:
                out += self.check(item, props[key], f"{where}.{key}", int_enums=int_enums)
            elif extra is not None:
                out += self.check(item, extra, f"{where}[{key!r}]", int_enums=int_enums)
            else:
                out.append(f"{where}.{key}: expected one of the fields {sorted(props)} "
                           f"(schema {schema.get('id', '?')}), found an unknown field")
        return out

    def _any(self, value: Json, where: str, int_enums: bool) -> list[str]:
        """A protobuf Any in JSON: "@type" names the message; the other keys are its fields."""
        type_url = value.get("@type")
        if type_url is None:
            return []
        if not isinstance(type_url, str) or not type_url.startswith("type.googleapis.com/"):
            return [f"{where}.@type: expected a type URL type.googleapis.com/<message>, found {type_url!r}"]
        schema = self.schema_for_type(type_url.split("/", 1)[1])
        if schema is None:
            return []  # a message the document does not define (e.g. google.rpc.ErrorInfo in some)
        rest = {k: v for k, v in value.items() if k != "@type"}
        return self.check(rest, {"$ref": schema}, f"{where}<{type_url}>", int_enums=int_enums)

    def schema_for_type(self, message: str) -> str | None:
        """The schema id of a proto message: `google.cloud.run.v2.Service` is GoogleCloudRunV2Service
        in documents that prefix ids with the package, or Service in those that do not."""
        prefixed = "".join(p[:1].upper() + p[1:] for p in message.split("."))
        for name in (prefixed, message.rsplit(".", 1)[-1]):
            if name in self.schemas:
                return name
        return None

    def _scalar(self, schema: Json, value: Any, where: str, *, from_query: bool = False,
                int_enums: bool = False) -> list[str]:
        kind, fmt = schema.get("type"), schema.get("format")
        if from_query and kind == "boolean":
            return [] if value in ("true", "false", "True", "False", "1", "0") else [
                f"{where}: expected a boolean, found {value!r}"]
        if from_query and kind == "integer":
            return [] if re.match(r"^-?\d+$", value) else [f"{where}: expected an integer, found {value!r}"]
        if kind == "boolean":
            return [] if isinstance(value, bool) else [f"{where}: expected a boolean, found {_short(value)}"]
        if kind in ("integer", "number"):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if kind == "integer":
                ok = ok and float(value).is_integer()
            return [] if ok else [f"{where}: expected a JSON {kind} ({fmt}), found {_short(value)}"]
        if kind != "string":
            return [f"{where}: schema type {kind!r} is not handled by the checker"]
        if "enum" in schema:
            if int_enums and isinstance(value, int) and not isinstance(value, bool):
                return [] if 0 <= value < 1 << 31 else [f"{where}: expected an enum number, found {value}"]
            return [] if value in schema["enum"] else [
                f"{where}: expected one of {schema['enum']}, found {_short(value)}"]
        if not isinstance(value, str):
            return [f"{where}: expected a string ({fmt or 'plain'}), found {_short(value)}"]
        checks = {"int64": _INT64, "uint64": _UINT64, "google-datetime": _DATETIME,
                  "google-duration": _DURATION, "google-fieldmask": _FIELDMASK}
        if fmt in checks and not checks[fmt].match(value):
            return [f"{where}: expected a {fmt} string, found {value!r}"]
        if fmt == "byte" and not _is_base64(value):
            return [f"{where}: expected base64 (format byte), found {value!r}"]
        return []


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_" if "-" in value or "_" in value else None,
                         validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@functools.cache
def discovery(name: str) -> Discovery:
    """One parsed document per name per test session (they are large)."""
    return Discovery(name)
