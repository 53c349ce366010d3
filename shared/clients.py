"""Google Cloud clients for Run and KMS: built on first use, cached, shared across threads.

The client libraries cost about 0.5 s each to import, so they are imported inside the factory
functions, never at module import (cold starts stay fast for functions that never touch them).
Transport is always REST, so tests against the local stand-in and production take the same code
path. `RAMPART_RUN_ENDPOINT` / `RAMPART_KMS_ENDPOINT` point a client elsewhere (the stand-in at
http://127.0.0.1:PORT, or an https:// endpoint such as a regional or Private Service Connect
one). Only the loopback stand-in gets AnonymousCredentials; every https:// endpoint, and the
default one, uses Application Default Credentials.

What callers must know about these clients over REST (checked against the stand-in):
  * errors map by HTTP status only: 400 BadRequest (never FailedPrecondition), 403 Forbidden
    (never PermissionDenied), 409 Conflict (never Aborted), 504 GatewayTimeout; the google.rpc
    status is in `exc.response.json()["error"]["status"]`;
  * timeouts and dropped connections raise `requests.exceptions.Timeout` / `ConnectionError`,
    not google.api_core exceptions;
  * KMS get/update/destroy/restore retry 503 by default, Run get_service too (1 s first backoff);
    update_service and the IAM calls do not retry;
  * setIamPolicy without an update_mask writes only bindings and etag (IAM's default mask).
"""

from __future__ import annotations

import os
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud.kms_v1 import KeyManagementServiceClient
    from google.cloud.run_v2 import ServicesClient

RUN_ENDPOINT_ENV = "RAMPART_RUN_ENDPOINT"
KMS_ENDPOINT_ENV = "RAMPART_KMS_ENDPOINT"
_ENDPOINT_RE = re.compile(r"^(http://127\.0\.0\.1:\d{1,5}|https://[A-Za-z0-9.\-]+(:\d{1,5})?)/?$")

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def endpoint_override(env: str) -> str | None:
    """The endpoint named by `env`, validated, without a trailing slash; None when unset."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return None
    if not _ENDPOINT_RE.match(raw):
        raise ValueError(
            f"{env}: expected http://127.0.0.1:PORT (the local stand-in) or https://HOST[:PORT], "
            f"found {raw!r}"
        )
    return raw.rstrip("/")


def _cached(name: str, build: Any) -> Any:
    client = _clients.get(name)
    if client is None:
        with _lock:
            client = _clients.get(name)
            if client is None:  # checked again: another thread may have built it meanwhile
                client = _clients[name] = build()
    return client


def options_for(env: str) -> dict[str, Any]:
    """Constructor keywords shared by every client: REST, plus the endpoint `env` names when set."""
    endpoint = endpoint_override(env)
    if endpoint is None:
        return {"transport": "rest"}
    from google.api_core.client_options import ClientOptions

    options: dict[str, Any] = {"transport": "rest", "client_options": ClientOptions(api_endpoint=endpoint)}
    if endpoint.startswith("http://"):  # the local stand-in: no credentials to present
        from google.auth.credentials import AnonymousCredentials

        options["credentials"] = AnonymousCredentials()
    return options


def run_services() -> ServicesClient:
    """The Cloud Run Admin API v2 ServicesClient (REST)."""

    def build() -> ServicesClient:
        from google.cloud.run_v2 import ServicesClient

        return ServicesClient(**options_for(RUN_ENDPOINT_ENV))

    return _cached("run_services", build)


def kms() -> KeyManagementServiceClient:
    """The Cloud KMS API v1 KeyManagementServiceClient (REST)."""

    def build() -> KeyManagementServiceClient:
        from google.cloud.kms_v1 import KeyManagementServiceClient

        return KeyManagementServiceClient(**options_for(KMS_ENDPOINT_ENV))

    return _cached("kms", build)


_LIBRARIES = {
    "run": ("google.cloud.run_v2", "shared.actions.run", "shared.actions.quarantine"),
    "kms": ("google.cloud.kms_v1", "shared.actions.kms"),
}


def preload(*products: str) -> None:
    """Import the client libraries of `products` ("run", "kms") now, e.g. from a warm-up thread,
    so the first remediation does not wait ~0.5 s for each. Builds no client."""
    import importlib

    for product in products:
        for module in _LIBRARIES[product]:
            importlib.import_module(module)
    importlib.import_module("shared.actions").transient_types()  # requests, google.auth, api_core exceptions


def reset() -> None:
    """Forget every cached client (tests change the endpoint environment between cases)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        transport = getattr(client, "transport", None)
        if transport is not None:
            transport.close()  # release pooled keep-alive connections to a stand-in about to go
