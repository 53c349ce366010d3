"""Listing with Cloud Asset Inventory v1: SearchAllResources and SearchAllIamPolicies, page by page.

Each API has its own client-side rate limit (`sweep.qps`, default 2 calls/s per API per process:
the published quotas are 400 calls/min per consumer project and 1,500 (resources) / 3,000 (IAM)
per organization, https://cloud.google.com/asset-inventory/docs/quota), so a sweep of a large
organization never takes the quota the real-time path or other tools need.

Errors: 429 and 5xx (and dropped connections, timeouts) are retried with exponential backoff and
jitter; a 403 or 404 on a scope ends the listing of that scope with `ScopeNotSwept`, which the sweep
reports as a part of the scope that was not swept (never as compliant); a 400 is a bug in the
request and raises. IAM: cloudasset.assets.searchAllResources and cloudasset.assets.searchAllIamPolicies
on the scope (roles/cloudasset.viewer).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

ASSET_ENDPOINT_ENV = "RAMPART_ASSET_ENDPOINT"
SCOPE_RE = re.compile(r"^(projects/[a-z][-a-z0-9]{4,28}[a-z0-9]|projects/\d{1,20}|folders/\d{1,20}|organizations/\d{1,20})$")
# What the rules read from a resource record: its identity, when it changed, and its data.
READ_MASK = "name,assetType,project,location,createTime,updateTime,versionedResources"
RESOURCES, IAM = "resources", "iam"


def _rule_asset_types() -> tuple[str, ...]:
    from shared.sweep.evaluate import resource_types_for

    return resource_types_for(None)


class ScopeNotSwept(Exception):
    """A scope (or the rest of it) cannot be listed: permission denied, not found, or retries spent."""

    def __init__(self, scope: str, kind: str, reason: str) -> None:
        super().__init__(f"{scope} ({kind}): {reason}")
        self.scope = scope
        self.kind = kind
        self.reason = reason


def check_scope(scope: str) -> str:
    """`scope` if it names a project, folder or organization; ValueError otherwise."""
    if not SCOPE_RE.match(scope):
        raise ValueError(f"scope: expected projects/PROJECT_ID, folders/NUMBER or organizations/NUMBER, found {scope[:80]!r}")
    return scope


class RateLimiter:
    """At most `qps` calls per second, spread evenly (a token bucket of one): thread-safe."""

    def __init__(self, qps: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if qps <= 0:
            raise ValueError(f"qps: expected a positive number, found {qps!r}")
        self.interval = 1.0 / qps
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def wait(self) -> float:
        """Block until the next call may go; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            at = max(now, self._next)
            self._next = at + self.interval
        delay = at - now
        if delay > 0:
            self._sleep(delay)
        return delay


@dataclass(slots=True)
class Page:
    """One page of results, as plain camelCase JSON dicts."""

    scope: str
    kind: str  # RESOURCES | IAM
    index: int  # 0, 1, ... within (scope, kind)
    results: list[dict[str, Any]]
    retries: int = 0


@dataclass(slots=True)
class ListerStats:
    calls: dict[str, int] = field(default_factory=lambda: {RESOURCES: 0, IAM: 0})
    retries: int = 0
    waited_seconds: float = 0.0


class AssetLister:
    """Pages of Asset Inventory results for a scope; one client, one rate limiter per API."""

    def __init__(self, *, qps: float = 2.0, page_size: int = 500, max_retries: int = 5,
                 backoff_seconds: float = 1.0, max_backoff_seconds: float = 30.0, client: Any = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.page_size = page_size
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.limits = {RESOURCES: RateLimiter(qps, sleep=sleep), IAM: RateLimiter(qps, sleep=sleep)}
        self.stats = ListerStats()
        self._client = client
        self._sleep = sleep
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The AssetServiceClient (REST), created on first use; `RAMPART_ASSET_ENDPOINT` points it elsewhere."""
        with self._lock:
            if self._client is None:
                from google.cloud import asset_v1

                from shared import clients

                # The same REST / endpoint-override / credentials choice as every other client.
                self._client = asset_v1.AssetServiceClient(**clients._options(ASSET_ENDPOINT_ENV))
            return self._client

    def pages(self, scope: str, kind: str, asset_types: tuple[str, ...] | None = None,
              start_token: str = "", start_index: int = 0) -> Iterator[tuple[Page, str]]:
        """(page, token of the page after it or "") for every page of `scope`, from `start_token`.
        Raises ScopeNotSwept when the scope cannot be listed (after the pages it could list)."""
        check_scope(scope)
        # By default every asset type a rule judges; IAM policies of any type (the rules pick theirs).
        types = asset_types or (_rule_asset_types() if kind == RESOURCES else ())
        token, index = start_token, start_index
        while True:
            results, token, retries = self._call(scope, kind, types, token)
            yield Page(scope, kind, index, results, retries), token
            index += 1
            if not token:
                return

    def _call(self, scope: str, kind: str, types: tuple[str, ...], token: str) -> tuple[list[dict[str, Any]], str, int]:
        from google.api_core import exceptions as gexc
        from google.cloud import asset_v1
        from google.protobuf.json_format import MessageToDict

        from shared.actions import error_message, transient_types

        client = self.client()
        retries = 0
        while True:
            self.stats.waited_seconds += self.limits[kind].wait()
            with self._lock:
                self.stats.calls[kind] += 1
            try:
                if kind == RESOURCES:
                    req = asset_v1.SearchAllResourcesRequest(scope=scope, asset_types=list(types), page_size=self.page_size,
                                                             page_token=token, read_mask=READ_MASK)
                    resp = client.search_all_resources(request=req, retry=None, timeout=60.0)
                else:
                    req = asset_v1.SearchAllIamPoliciesRequest(scope=scope, asset_types=list(types), page_size=self.page_size,
                                                               page_token=token)
                    resp = client.search_all_iam_policies(request=req, retry=None, timeout=60.0)
                page = next(iter(resp.pages))  # the pager's first page is this call's response
                results = [MessageToDict(type(r).pb(r)) for r in page.results]
                return results, page.next_page_token, retries
            except transient_types() as exc:
                if retries >= self.max_retries:
                    raise ScopeNotSwept(scope, kind, f"gave up after {retries + 1} attempts: {type(exc).__name__}") from None
                delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** retries) * random.uniform(0.5, 1.0)
                retries += 1
                with self._lock:
                    self.stats.retries += 1
                from shared import log

                log.warning("rampart.sweep.list_retry", scope=scope, kind=kind, attempt=retries,
                            error=type(exc).__name__, retry_in_s=round(delay, 2))
                self._sleep(delay)
            except gexc.GoogleAPICallError as exc:  # 403 on the scope, 404, 400: a retry will not help
                raise ScopeNotSwept(scope, kind, f"{type(exc).__name__}: {error_message(exc)}") from None

