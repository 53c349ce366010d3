"""The admin client (urllib, stdlib only) that tests, the demo and the bench use to drive the stand-in."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from infra.local.standin.core import Json
from infra.local.standin.seeding import load_seed


class StandinError(RuntimeError):
    """An admin call failed; carries the HTTP status and the stand-in's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"stand-in answered {status}: {message}")
        self.status = status
        self.message = message


class StandinAdmin:
    """Drive the stand-in's /_standin/ API: seed, reset, inspect state and requests, inject faults."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not re.match(r"^http://(127\.\d+\.\d+\.\d+|\[::1\]):\d+/?$", url):
            raise ValueError(f"expected the stand-in's loopback URL http://127.0.0.1:PORT, found {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        # No proxies: an HTTP(S)_PROXY in the environment must not capture loopback admin calls.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            payload = e.read().decode("utf-8", "replace")
            try:
                message = json.loads(payload)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = payload
            raise StandinError(e.code, message) from None
        if not ctype.startswith("application/json"):
            return raw.decode()
        return json.loads(raw) if raw else None

    def health(self) -> bool:
        try:
            return self._call("GET", "/_standin/health") == "ok"
        except (OSError, StandinError):
            return False

    def reset(self) -> None:
        self._call("POST", "/_standin/reset")

    def seed(self, data: Json) -> Json:
        return self._call("POST", "/_standin/seed", data)

    def seed_file(self, path: str | Path) -> Json:
        return self.seed(load_seed(path))

    def log_entries(self, entries: list[Json]) -> Json:
        """Hand audit entries to the Cloud Logging stand-in, as Cloud Logging holds what a sink
        forwards (one it would not hold, with no logName or insertId, is left out)."""
        from infra.local.standin.logging_v2_entries import entry_name

        named = [dict(e, name=n) for e in entries if isinstance(e, dict) and (n := entry_name(e))]
        return self.seed({"logEntries": named})

    def state(self) -> Json:
        return self._call("GET", "/_standin/state")

    def requests(self, method: str | None = None, path: str | None = None) -> list[Json]:
        """The request log, optionally only one method and paths matching a regex."""
        log = self._call("GET", "/_standin/requests")["requests"]
        rx = re.compile(path) if path else None
        return [r for r in log if (method is None or r["method"] == method)
                and (rx is None or rx.search(r["path"]))]

    def clear_requests(self) -> None:
        self._call("DELETE", "/_standin/requests")

    def fault(self, method: str = "*", path: str = ".*", *, count: int | None = 1, skip: int = 0,
              status: int | None = None, rpc_status: str | None = None, message: str | None = None,
              delay_ms: int = 0, move_etag: bool = False, drop: bool = False,
              probability: float = 1.0, seed: int | None = None, pending_polls: int = 0) -> Json:
        spec: Json = {"method": method, "path": path, "count": count, "skip": skip, "status": status,
                      "delay_ms": delay_ms, "move_etag": move_etag, "drop": drop,
                      "probability": probability}
        if pending_polls:
            spec["pending_polls"] = pending_polls
        if rpc_status is not None:
            spec["rpc_status"] = rpc_status
        if message is not None:
            spec["message"] = message
        if seed is not None:
            spec["seed"] = seed
        return self._call("POST", "/_standin/faults", spec)

    def faults(self) -> list[Json]:
        return self._call("GET", "/_standin/faults")["faults"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/_standin/faults")

    def mutate(self, resource: str, *, patch: Json | None = None, iam_add: Json | None = None,
               iam_remove: Json | None = None, delete: bool = False, actor: str | None = None) -> Json:
        spec: Json = {"resource": resource}
        for key, value in (("patch", patch), ("iam_add", iam_add), ("iam_remove", iam_remove),
                           ("actor", actor)):
            if value is not None:
                spec[key] = value
        if delete:
            spec["delete"] = True
        return self._call("POST", "/_standin/mutate", spec)

    def settings(self, **values: str) -> Json:
        """Switch a behaviour the discovery documents leave open (SETTINGS in app.py); none: read them."""
        return self._call("POST", "/_standin/settings", values) if values else self._call("GET", "/_standin/settings")

    def advance_clock(self, seconds: float) -> Json:
        return self._call("POST", "/_standin/clock", {"advance_seconds": seconds})

