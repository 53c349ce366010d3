"""Actions: the contract between the decision and a rule's remediation, and the error discipline.

The package: `engine` (the one conditional-write loop), `iam` (grants, conditions and IAM
policies of every resource kind), `run` (Cloud Run service reads, writes and reverts),
`quarantine` (isolate a service and release it), `kms` (key versions, facts for alerts).

A rule's `RULE` may carry:
- `remediate(finding, params, ctx) -> ActionRecord`, called in `enforce` and `dry-run` mode
  when the chosen action is not `alert`. It re-reads live state, acts only if the resource
  is still non-compliant, writes conditionally (etags), and returns a record whose outcome
  says what happened. In dry-run (`ctx.dry_run`) it computes the exact `changes` and writes
  nothing.
- `enrich(finding, params, ctx) -> dict`, called in every mode but `off`, returning extra,
  log-safe facts for the alert (e.g. the Cloud Run services that depend on a KMS key).

Errors: raise `TransientError` (or let a retryable google.api_core exception escape) for
what a redelivery may fix (429, 500, 503, deadlines); return a FAILED record for what it
will not (400, 403, 404 where it matters), which is then alerted and acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.model import Action, ActionRecord, Finding, Mode, Outcome


class TransientError(RuntimeError):
    """A failure worth a Pub/Sub redelivery: the function returns an error for it."""


@dataclass(frozen=True)
class ActionContext:
    mode: Mode  # ENFORCE or DRY_RUN when remediate() is called
    action: Action  # the action the policy chose for this rule (revert, quarantine, restore)
    max_attempts: int = 3  # writes retried on an etag conflict, each after a fresh read
    operation_timeout: float = 60.0  # seconds to await a long-running operation
    quarantine_label: str = "rampart-quarantine"
    clock: Callable[[], float] = field(default=time.time)

    @property
    def dry_run(self) -> bool:
        return self.mode is Mode.DRY_RUN


def transient_types() -> tuple[type[BaseException], ...]:
    """google.api_core exception types a redelivery may cure (imported on first use)."""
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    # Over REST, timeouts and dropped connections surface as `requests` exceptions, and token
    # refresh failures as google.auth TransportError: all worth a redelivery.
    return (
        requests.exceptions.RequestException,
        auth_exc.TransportError,
        gexc.TooManyRequests,
        gexc.InternalServerError,
        gexc.BadGateway,
        gexc.ServiceUnavailable,
        gexc.GatewayTimeout,
        gexc.DeadlineExceeded,
        gexc.RetryError,
        TimeoutError,
        ConnectionError,
    )


def record(finding: Finding, ctx: ActionContext, outcome: Outcome, **kw: Any) -> ActionRecord:
    """The record of one action on `finding`, in the mode it ran in."""
    return ActionRecord(finding=finding, mode=ctx.mode, outcome=outcome, **kw)


def failed(finding: Finding, ctx: ActionContext, reason: str, **extra: Any) -> ActionRecord:
    return record(finding, ctx, Outcome.FAILED, reason=reason, **extra)


def read_timeout(operation_timeout: float) -> float:
    """Seconds one read may take: the operation timeout, but never over 30."""
    return min(30.0, operation_timeout)


def rest_call(api: tuple[Any, str], method: str, path: str, timeout: float, **kw: Any) -> Any:
    """One call to a Google REST API on (session, base URL) (shared.clients.rest): `path` after
    the base, e.g. "v2/projects/P/sinks/S". An error status raises the google.api_core exception
    it maps to, as the client libraries do, so `run_remediation` classifies it the same way."""
    from google.api_core import exceptions as gexc

    session, base = api
    resp = session.request(method, f"{base}/{path}", timeout=timeout, **kw)
    if resp.status_code >= 400:
        raise gexc.from_http_response(resp)
    return resp.json() if resp.content else {}


def run_remediation(
    remediate: Callable[[Finding, Any, ActionContext], ActionRecord], finding: Finding, params: Any, ctx: ActionContext
) -> ActionRecord:
    """Call a rule's remediate() with the error discipline applied.

    Transient failures propagate as TransientError (redelivery); permanent google.api_core
    errors become a FAILED record with a one-line reason (alerted, acknowledged).
    """
    from google.api_core import exceptions as gexc

    start = time.perf_counter()
    try:
        rec = remediate(finding, params, ctx)
    except TransientError:
        raise
    except transient_types() as exc:
        raise TransientError(f"{finding.rule} on {finding.resource}: {type(exc).__name__}: {error_message(exc)}") from exc
    except gexc.NotFound as exc:
        rec = record(finding, ctx, Outcome.NOT_FOUND, reason=error_message(exc))
    except gexc.GoogleAPICallError as exc:
        rec = failed(finding, ctx, f"{type(exc).__name__}: {error_message(exc)}")
    rec.duration_ms = (time.perf_counter() - start) * 1000
    return rec


def error_message(exc: BaseException) -> str:
    """An API error's message on one line, at most 300 characters (for reasons and logs)."""
    msg = getattr(exc, "message", None) or str(exc)
    msg = " ".join(str(msg).split())
    return msg[:300]


# ---------------------------------------------------------------------------
# Conditional writes: a conflict, or a refusal that only looks like one.


def _rpc_status(exc: BaseException) -> str:
    """The google.rpc status name of an API error: from the JSON body over REST (the exception
    class reflects only the HTTP status there), else from the gRPC code."""
    try:
        status = exc.response.json()["error"]["status"]  # type: ignore[attr-defined]
    except (AttributeError, ValueError, KeyError, TypeError):
        status = None
    if isinstance(status, str):
        return status
    code = getattr(exc, "grpc_status_code", None)
    return str(getattr(code, "name", code or ""))


def is_conflict(exc: BaseException) -> bool:
    """True for a write refused because the resource changed since it was read."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.AlreadyExists):
        return False
    if isinstance(exc, gexc.Conflict | gexc.PreconditionFailed | gexc.FailedPrecondition):
        return True  # 409 ABORTED (AIP-154, IAM), 412, gRPC FAILED_PRECONDITION
    return isinstance(exc, gexc.BadRequest) and _rpc_status(exc) == "FAILED_PRECONDITION"
