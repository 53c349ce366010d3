"""Google Cloud clients for Run and KMS: built on first use, cached, shared across threads.

The client libraries cost about 0.5 s each to import, so they are imported inside the factory
functions, never at module import (cold starts stay fast for functions that never touch them).
Transport is always REST, so tests against the local stand-in and production take the same code
path. `RAMPART_RUN_ENDPOINT`, `RAMPART_KMS_ENDPOINT`, `RAMPART_FUNCTIONS_ENDPOINT`,
`RAMPART_RESOURCE_MANAGER_ENDPOINT`, `RAMPART_LOGGING_ENDPOINT`, `RAMPART_ORGPOLICY_ENDPOINT` point a client
at the local stand-in, and only there: every `RAMPART_*_ENDPOINT` must name a loopback host
(http://127.0.0.1:PORT, http://localhost:PORT, http://[::1]:PORT), or the function refuses to
start (`check_endpoints`). A client sends its access token to whatever endpoint it is given, so
an override naming another host would hand Rampart's token, and with it write access to every
service and key in scope, to that host. Loopback endpoints get AnonymousCredentials; the default
endpoints use Application Default Credentials.

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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud.kms_v1 import KeyManagementServiceClient
    from google.cloud.resourcemanager_v3 import ProjectsClient
    from google.cloud.run_v2 import ServicesClient

RUN_ENDPOINT_ENV = "RAMPART_RUN_ENDPOINT"
KMS_ENDPOINT_ENV = "RAMPART_KMS_ENDPOINT"
FUNCTIONS_ENDPOINT_ENV = "RAMPART_FUNCTIONS_ENDPOINT"
RESOURCE_MANAGER_ENDPOINT_ENV = "RAMPART_RESOURCE_MANAGER_ENDPOINT"
LOGGING_ENDPOINT_ENV = "RAMPART_LOGGING_ENDPOINT"
ORGPOLICY_ENDPOINT_ENV = "RAMPART_ORGPOLICY_ENDPOINT"
_ENDPOINT_ENV_RE = re.compile(r"^RAMPART_[A-Z0-9_]+_ENDPOINT$")
_ENDPOINT_RE = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}/?$")

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def endpoint_override(env: str) -> str | None:
    """The endpoint named by `env`, validated, without a trailing slash; None when unset."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return None
    return _loopback(env, raw).rstrip("/")


def _loopback(name: str, raw: str) -> str:
    if not _ENDPOINT_RE.match(raw):
        shown = "".join(c for c in raw if c.isprintable())[:120]
        raise ValueError(
            f"{name}: expected a loopback endpoint, http://127.0.0.1:PORT (the local stand-in), found {shown!r}: "
            "an endpoint override receives Rampart's access token, so only loopback is accepted"
        )
    return raw


def check_endpoints(environ: dict[str, str] | None = None) -> None:
    """Refuse to start with any RAMPART_*_ENDPOINT that is not loopback (ValueError naming it)."""
    env = os.environ if environ is None else environ
    for name in sorted(env):
        if _ENDPOINT_ENV_RE.match(name) and env[name].strip():
            _loopback(name, env[name].strip())


def _cached(name: str, build: Any) -> Any:
    client = _clients.get(name)
    if client is None:
        with _lock:
            client = _clients.get(name)
            if client is None:  # checked again: another thread may have built it meanwhile
                client = build()
                _skip_environment_lookups(client)
                _clients[name] = client
    return client


def requests_environment(environ: Mapping[str, str] | None = None, home: str | None = None) -> tuple[bool, str | None]:
    """What `requests` would take from this process's environment on every call, as
    (fixed, ca_bundle). `fixed` is False when there is a proxy variable (`*_proxy`, any case), a
    `NETRC` variable or a ~/.netrc or ~/_netrc: those depend on the URL, so they stay `requests`'
    to apply. Otherwise the only thing it can take is the CA bundle (`REQUESTS_CA_BUNDLE`, else
    `CURL_CA_BUNDLE`, else None), the same for every call."""
    env = os.environ if environ is None else environ
    if any(k.lower().endswith("_proxy") and v for k, v in env.items()) or "NETRC" in env:
        return False, None
    base = home if home is not None else os.path.expanduser("~")
    if any(os.path.exists(os.path.join(base, f)) for f in (".netrc", "_netrc")):
        return False, None
    return True, env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or None


def _skip_environment_lookups(client: Any) -> None:
    """Settle once, on a new client's requests session, what `requests` would otherwise look up in
    the environment on every call: with `trust_env` on, it scans the whole environment for proxies
    twice and stats ~/.netrc per call, ~0.2 ms of CPU of each ~1 ms REST call (bench/knee.py). When
    that can only find a CA bundle (`requests_environment`), the session verifies with that bundle
    and `trust_env` goes off: the same requests, sent the same way. A process with a proxy or a
    .netrc keeps `requests`' default, and so does a session whose `verify` is not the default
    (the environment would override it). Cloud Run fixes the environment at deploy, so looking
    once per client is enough."""
    session = client[0] if isinstance(client, tuple) else getattr(getattr(client, "transport", None), "_session", None)
    if session is None or not hasattr(session, "trust_env") or session.verify is not True:
        return
    fixed, ca_bundle = requests_environment()
    if fixed:
        if ca_bundle:
            session.verify = ca_bundle
        session.trust_env = False


def _options(env: str) -> dict[str, Any]:
    """Constructor keywords shared by both clients: REST, plus the override when one is set."""
    endpoint = endpoint_override(env)
    if endpoint is None:
        return {"transport": "rest"}
    from google.api_core.client_options import ClientOptions

    options: dict[str, Any] = {"transport": "rest", "client_options": ClientOptions(api_endpoint=endpoint)}
    from google.auth.credentials import AnonymousCredentials

    options["credentials"] = AnonymousCredentials()  # loopback only: no token leaves the machine
    return options


def run_services() -> ServicesClient:
    """The Cloud Run Admin API v2 ServicesClient (REST)."""

    def build() -> ServicesClient:
        from google.cloud.run_v2 import ServicesClient

        return ServicesClient(**_options(RUN_ENDPOINT_ENV))

    return _cached("run_services", build)


def run_revisions() -> Any:
    """The Cloud Run Admin API v2 RevisionsClient (REST): the revisions a service's traffic serves."""

    def build() -> Any:
        from google.cloud.run_v2 import RevisionsClient

        return RevisionsClient(**_options(RUN_ENDPOINT_ENV))

    return _cached("run_revisions", build)


def run_jobs() -> Any:
    """The Cloud Run Admin API v2 JobsClient (REST): a job read in full by the sweep."""

    def build() -> Any:
        from google.cloud.run_v2 import JobsClient

        return JobsClient(**_options(RUN_ENDPOINT_ENV))

    return _cached("run_jobs", build)


def run_worker_pools() -> Any:
    """The Cloud Run Admin API v2 WorkerPoolsClient (REST): a worker pool read in full by the sweep."""

    def build() -> Any:
        from google.cloud.run_v2 import WorkerPoolsClient

        return WorkerPoolsClient(**_options(RUN_ENDPOINT_ENV))

    return _cached("run_worker_pools", build)


def kms() -> KeyManagementServiceClient:
    """The Cloud KMS API v1 KeyManagementServiceClient (REST)."""

    def build() -> KeyManagementServiceClient:
        from google.cloud.kms_v1 import KeyManagementServiceClient

        return KeyManagementServiceClient(**_options(KMS_ENDPOINT_ENV))

    return _cached("kms", build)


def projects() -> ProjectsClient:
    """The Resource Manager API v3 ProjectsClient (REST), for project-level IAM."""

    def build() -> ProjectsClient:
        from google.cloud.resourcemanager_v3 import ProjectsClient

        return ProjectsClient(**_options(RESOURCE_MANAGER_ENDPOINT_ENV))

    return _cached("projects", build)


def rest(env: str, default_base: str) -> tuple[Any, str]:
    """(session, base URL) for a Google REST API that has no REST-capable client library here
    (Cloud Logging's speaks gRPC only; Org Policy's is not installed; Cloud Functions' would load
    into every cold start, see functions_rest) and that a fix needs only
    two calls of. The stand-in gets a plain session; anything else Application Default Credentials."""

    def build() -> tuple[Any, str]:
        endpoint = endpoint_override(env)
        if endpoint is not None and endpoint.startswith("http://"):
            import requests

            return requests.Session(), endpoint
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        return AuthorizedSession(credentials), endpoint or default_base

    return _cached(f"rest:{env}", build)


def logging_rest() -> tuple[Any, str]:
    return rest(LOGGING_ENDPOINT_ENV, "https://logging.googleapis.com")


def functions_rest() -> tuple[Any, str]:
    """The Cloud Functions API v2 over REST. Not google-cloud-functions: its package owns
    `google/cloud/functions/__init__.py`, which functions-framework's own
    `google.cloud.functions.context` import then runs, loading the v1 client, api_core and grpc
    into every cold start (about +1.3 s measured here)."""
    return rest(FUNCTIONS_ENDPOINT_ENV, "https://cloudfunctions.googleapis.com")


def orgpolicy_rest() -> tuple[Any, str]:
    return rest(ORGPOLICY_ENDPOINT_ENV, "https://orgpolicy.googleapis.com")


_LIBRARIES = {
    "run": ("google.cloud.run_v2", "shared.actions.run", "shared.actions.quarantine"),
    "kms": ("google.cloud.kms_v1", "shared.actions.kms"),
    "function": ("requests",),
    "iam": ("google.cloud.resourcemanager_v3",),
}


def preload(*products: str) -> None:
    """Import the client libraries of `products` ("run", "kms", "function") now, e.g. from a warm-up thread,
    so the first remediation does not wait ~0.5 s for each. Builds no client."""
    import importlib

    for product in products:
        for module in _LIBRARIES.get(product, ()):  # products with no client library of their own: nothing
            importlib.import_module(module)
    importlib.import_module("shared.actions").transient_types()  # requests, google.auth, api_core exceptions


def reset() -> None:
    """Forget every cached client (tests change the endpoint environment between cases)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        if isinstance(client, tuple):  # a REST session and its base URL
            client[0].close()
            continue
        transport = getattr(client, "transport", None)
        if transport is not None:
            transport.close()  # release pooled keep-alive connections to a stand-in about to go
