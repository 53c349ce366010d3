"""Cloud Run function remediation, through the Cloud Functions v2 API that owns the function.

A function made with that API rewrites its Cloud Run service from the Function resource on every
deploy (see infra/local/standin/cloudfunctions_v2.py), so a fix made on the service would be
undone by the next `gcloud functions deploy`; one made on the function sticks, and a deploy
that does not name the setting (gcloud puts `--ingress-settings` in the update mask only when it
is given) keeps it. Writes carry an update mask naming only the field fixed, so nothing else the
owner set is touched. Functions have no etag: the re-read just before the write, and the mask,
are what keep a concurrent change from being lost.

Over REST (shared.clients.functions_rest): the google-cloud-functions library would load into
every cold start. The update is a long-running operation, polled until done or until
`ctx.operation_timeout` (a failed remediation, then).

IAM permissions: cloudfunctions.functions.get, cloudfunctions.functions.update,
cloudfunctions.operations.get, and iam.serviceAccounts.actAs on the function's runtime service
account (an update redeploys its Cloud Run service).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable
from typing import Any

from shared.actions import ActionContext, read_timeout, record, rest_call
from shared.model import ActionRecord, Change, Finding, Outcome

_V1_INGRESS = {"ALLOW_ALL": "all", "ALLOW_INTERNAL_ONLY": "internal-only", "ALLOW_INTERNAL_AND_GCLB": "internal-and-gclb"}
POLL_SECONDS = 0.5


def call(method: str, path: str, ctx: ActionContext, **kw: Any) -> Any:
    """One Cloud Functions v2 REST call (`path` after /v2/)."""
    from shared import clients

    return rest_call(clients.functions_rest(), method, f"v2/{path}", read_timeout(ctx.operation_timeout), **kw)


def wait(op: dict[str, Any], ctx: ActionContext) -> dict[str, Any] | None:
    """The long-running operation's result (the Function), polled; None if not done in time."""
    deadline = ctx.clock() + ctx.operation_timeout
    while not op.get("done"):
        if ctx.clock() >= deadline:
            return None
        time.sleep(POLL_SECONDS)
        op = call("GET", op["name"], ctx)
    if op.get("error"):
        from google.api_core import exceptions as gexc

        err = op["error"]
        raise gexc.from_grpc_status(_grpc_code(err.get("code", 2)), str(err.get("message", "operation failed")))
    return op.get("response") or {}


def _grpc_code(code: Any) -> Any:
    import grpc

    return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)


def facts(fn: dict[str, Any]) -> dict[str, Any]:
    from shared.views.functions import from_live

    v = from_live(fn)
    if v is None:
        return {}
    return {"ingress": v.ingress, "service_account": v.service_account or "(default)", "service": v.run_service}


def revert_ingress(finding: Finding, ctx: ActionContext, *, allowed: Iterable[str], target: str) -> ActionRecord:
    """Set the live function's ingress to `target` if it is not one of `allowed`."""
    from shared.views.functions import from_live

    fn = call("GET", finding.resource, ctx)
    view = from_live(fn)
    before = facts(fn)
    if view is None or view.ingress in tuple(allowed):
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, reason="live ingress already allowed")
    change = Change("serviceConfig.ingressSettings", view.ingress, target)
    if ctx.dry_run:
        return record(finding, ctx, Outcome.DRY_RUN, changes=[change], before=before, after={**before, "ingress": target})
    op = call("PATCH", finding.resource, ctx, params={"updateMask": "serviceConfig.ingressSettings"},
              json={"serviceConfig": {"ingressSettings": target}})
    done = wait(op, ctx)
    if done is None:
        return record(finding, ctx, Outcome.FAILED, changes=[change], before=before, attempts=1,
                      reason=f"update operation did not finish within {ctx.operation_timeout:g}s")
    parts = finding.resource.split("/")
    undo = (f"gcloud functions deploy {shlex.quote(parts[-1])} --region={parts[3]} --project={parts[1]} "
            f"--ingress-settings={_V1_INGRESS.get(view.ingress, 'all')}  # add an exemption for this function "
            "to the policy first, or Rampart reverts the undo")
    return record(finding, ctx, Outcome.REMEDIATED, changes=[change], before=before, after=facts(done), attempts=1, undo=undo)
