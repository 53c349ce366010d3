"""The stand-in's behaviour, independent of sockets: routing, faults, the request log, the admin API."""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

from infra.local.standin import iam, operations, seeding
from infra.local.standin.apis import APIS
from infra.local.standin.core import (
    DEFAULT_ACTOR,
    Api,
    ApiError,
    Collection,
    Handler,
    Json,
    Response,
    Route,
    bad,
    clone,
    json_response,
    not_found,
    parse_body,
)
from infra.local.standin.faults import Faults
from infra.local.standin.store import Clock, Store

LOGGED_BODY_CHARS = 4096
_VERSION_PREFIX = re.compile(r"^/v\d+(?:(?:alpha|beta)\d*)?/")


def routes(apis: Iterable[Api] = APIS) -> list[Route]:
    """Every route the stand-in serves, in matching order."""
    return [r for api in apis for r in api.routes]



# Behaviours Google's documents leave open, with the stand-in's default first. Each names its sources.
SETTINGS: dict[str, tuple[str, ...]] = {
    # Cloud Run v2 services.patch without updateMask: "replace" (the whole service is the body;
    # Terraform's google_cloud_run_v2_service relies on it) or "implied" (AIP-134,
    # https://google.aip.dev/134: an omitted mask means "the fields set on the wire", so a field
    # set to its default, e.g. invokerIamDisabled=false, is left as it was). run.v2.json only says
    # "Optional. The list of fields to be updated."
    "run_patch_without_mask": ("replace", "implied"),
}

class App:
    """The stand-in's behaviour: `handle(method, path, query, body)` -> Response. Thread-safe."""

    def __init__(self, *, seed: Json | None = None, log_size: int = 2000, fault_seed: int = 0,
                 apis: tuple[Api, ...] = APIS) -> None:
        self.apis = apis
        self.collections: list[Collection] = seeding.collections(apis)
        self.clock = Clock()
        tables = [t for api in apis for t in (*(c.key for c in api.collections), *api.tables)]
        self.store = Store(self.clock, tables, [c.key for c in self.collections])
        self.baseline = clone(seed) if seed else None
        self.faults = Faults(fault_seed)
        self.log: collections.deque[Json] = collections.deque(maxlen=log_size)
        self.log_lock = threading.Lock()  # readers copy the deque while handler threads append
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (r.method, r.regex(), r.handler) for r in routes(apis)
        ]
        if seed:
            self.seed(clone(seed))

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, body: bytes) -> Response:
        """Answer one request: admin calls directly, API calls through faults, routing and the log."""
        if path.startswith("/_standin/") or path == "/_standin":
            try:
                return self.admin(method, path, body)
            except ApiError as e:
                return json_response(e.code, e.payload())
        arrived, started = time.time(), time.perf_counter()
        fired: list[int] = []
        resp: Response | None = None
        pending = 0
        try:
            for fault in self.faults.matching(method, path):
                fired.append(fault.id)
                pending = max(pending, fault.pending_polls)
                if fault.delay_ms:
                    time.sleep(fault.delay_ms / 1000)
                if fault.move_etag:
                    self._move_etag(path)
                if resp is None and fault.drop:
                    resp = Response(0, drop=True)
                if resp is None and fault.status:
                    err = ApiError(fault.status, fault.message or f"injected fault {fault.id}",
                                   fault.rpc_status)
                    resp = json_response(fault.status, err.payload())
            if resp is None:
                resp = self.api(method, path, query, body)
                if pending and resp.status == 200:
                    resp = operations.pend(self.store, resp, pending)
        except ApiError as e:
            resp = json_response(e.code, e.payload())
        entry: Json = {
            "method": method, "path": path, "query": unquote(query), "status": resp.status,
            "time": arrived, "durationMs": round((time.perf_counter() - started) * 1000, 3),
        }
        if fired:
            entry["faults"] = fired
        if method != "GET" and body:
            entry["body"] = body[:LOGGED_BODY_CHARS].decode("utf-8", "replace")
        with self.log_lock:
            self.log.append(entry)
        return resp

    def api(self, method: str, path: str, query: str, raw: bytes) -> Response:
        # A repeated parameter (Asset Inventory's assetTypes) arrives as its values joined by commas.
        params = {k: ",".join(v) for k, v in parse_qs(query, keep_blank_values=True).items()}
        for verb, regex, handler in self.routes:
            if verb == method and (m := regex.match(path)):
                body = parse_body(raw)
                with self.store.lock:
                    return handler(self.store, m.groupdict(), params, body)
        raise ApiError(501, f"The stand-in does not implement {method} {path}", "UNIMPLEMENTED")

    # -- faults --------------------------------------------------------------------------------

    def _move_etag(self, path: str) -> None:
        """Simulate another writer just before this request: the target's etag moves."""
        name = _VERSION_PREFIX.sub("", path)
        name, _, verb = name.partition(":")
        with self.store.lock:
            if verb in ("getIamPolicy", "setIamPolicy"):
                if self.store.resource_exists(name):
                    policy = dict(iam.policy(self.store, name))
                    policy["etag"] = iam.policy_etag(self.store)
                    iam.put_policy(self.store, name, policy)
                return
            kind = self._collection_of(name)
            if kind is not None and kind.move_etag is not None:
                kind.move_etag(self.store, name)

    def _collection_of(self, name: str) -> Collection | None:
        return next((c for c in self.collections if name in self.store.tables[c.key]), None)

    # -- admin ---------------------------------------------------------------------------------

    def admin(self, method: str, path: str, raw: bytes) -> Response:
        route = (method, path.rstrip("/"))
        if route == ("GET", "/_standin/health"):
            return Response(200, b"ok", "text/plain")
        if route == ("POST", "/_standin/reset"):
            self.reset()
            return json_response(200, {"ok": True})
        if route == ("POST", "/_standin/seed"):
            return json_response(200, self.seed(parse_body(raw)))
        if route == ("GET", "/_standin/state"):
            return json_response(200, self.state())
        if route == ("GET", "/_standin/requests"):
            with self.log_lock:
                entries = list(self.log)
            return json_response(200, {"requests": entries})
        if route == ("DELETE", "/_standin/requests"):
            with self.log_lock:
                self.log.clear()
            return json_response(200, {"ok": True})
        if route == ("POST", "/_standin/faults"):
            return json_response(200, self.faults.add(parse_body(raw)).to_json())
        if route == ("GET", "/_standin/faults"):
            return json_response(200, {"faults": self.faults.to_json()})
        if route == ("DELETE", "/_standin/faults"):
            self.faults.clear()
            return json_response(200, {"ok": True})
        if route == ("POST", "/_standin/mutate"):
            return json_response(200, self.mutate(parse_body(raw)))
        if route in (("GET", "/_standin/settings"), ("POST", "/_standin/settings")):
            body = parse_body(raw) if method == "POST" else {}
            with self.store.lock:
                for key, value in body.items():
                    allowed = SETTINGS.get(key)
                    if allowed is None:
                        bad(f"settings: unknown setting {key!r}; expected one of {sorted(SETTINGS)}")
                    if value not in allowed:
                        bad(f"settings.{key}: expected one of {list(allowed)}, found {value!r}")
                    self.store.settings[key] = value
                return json_response(200, dict(self.store.settings))
        if route in (("GET", "/_standin/clock"), ("POST", "/_standin/clock")):
            body = parse_body(raw) if method == "POST" else {}
            unknown = set(body) - {"advance_seconds"}
            if unknown:
                bad(f"clock: unknown field(s) {sorted(unknown)}; expected advance_seconds")
            step = body.get("advance_seconds", 0)
            if not isinstance(step, int | float) or step < 0:
                bad(f"clock.advance_seconds: expected a number >= 0 (the clock only moves forward), "
                    f"found {step!r}")
            with self.store.lock:
                self.clock.offset += step
                return json_response(200, {"now": self.store.now(), "offsetSeconds": self.clock.offset})
        raise ApiError(404, f"No admin endpoint {method} {path}; see infra/local/standin/__init__.py",
                       "NOT_FOUND")

    def reset(self) -> None:
        self.faults.reset()
        with self.store.lock:
            self.store.clear()
            self.clock.offset = 0.0
            if self.baseline:
                self.seed(clone(self.baseline))
        with self.log_lock:
            self.log.clear()

    def state(self) -> Json:
        return seeding.state(self.store, self.apis)

    def seed(self, data: Json) -> Json:
        return seeding.seed(self.store, self.apis, data)

    def mutate(self, spec: Json) -> Json:
        """A concurrent writer (someone else): change a resource or its policy and move the etag."""
        allowed = {"resource", "actor", "patch", "iam_add", "iam_remove", "delete"}
        unknown = set(spec) - allowed
        if unknown:
            bad(f"mutate: unknown field(s) {sorted(unknown)}; expected some of {sorted(allowed)}")
        name = spec.get("resource")
        actor = str(spec.get("actor") or DEFAULT_ACTOR)
        if not ({"patch", "iam_add", "iam_remove", "delete"} & set(spec)):
            bad("mutate: expected at least one of patch, iam_add, iam_remove, delete")
        s = self.store
        with s.lock:
            kind = self._collection_of(name) if isinstance(name, str) else None
            if kind is None:
                not_found(str(name))
            if spec.get("delete"):
                deletable = [c.key for c in self.collections if c.delete is not None]
                if kind.delete is None:
                    bad(f"mutate.delete: {kind.key} cannot be deleted this way (the API keeps them); "
                        f"only {', '.join(deletable)} can")
                kind.delete(s, name)
                return {"resource": None, "policy": None}
            if "patch" in spec:
                patch = spec["patch"]
                if not isinstance(patch, dict):
                    bad(f"mutate.patch: expected a JSON merge patch object, found {type(patch).__name__}")
                kind.patch(s, name, patch, actor)
            for op in ("iam_add", "iam_remove"):
                if op in spec:
                    self._mutate_iam(name, op, spec[op])
            return clone({"resource": kind.view(s, name), "policy": iam.policy(s, name)})

    def _mutate_iam(self, name: str, op: str, spec: Any) -> None:
        s = self.store
        if not isinstance(spec, dict) or not spec.get("role") or not spec.get("member"):
            bad(f"mutate.{op}: expected {{\"role\": ..., \"member\": ...}}, found {spec!r}")
        policy = clone(iam.policy(s, name))
        policy.pop("etag", None)
        bindings = policy.setdefault("bindings", [])
        cond = spec.get("condition")
        target = next((b for b in bindings if b["role"] == spec["role"] and b.get("condition") == cond), None)
        if op == "iam_add":
            if target is None:
                target = {"role": spec["role"], "members": []}
                if cond:
                    target["condition"] = cond
                    policy["version"] = 3
                bindings.append(target)
            if spec["member"] not in target["members"]:
                target["members"].append(spec["member"])
        elif target is not None and spec["member"] in target["members"]:
            target["members"].remove(spec["member"])
        new = iam.normalize_policy(policy)
        new["etag"] = iam.policy_etag(s)
        iam.put_policy(s, name, new)
