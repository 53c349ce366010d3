"""Cloud Run function remediation, through the Cloud Functions v2 API that owns the function.

A function made with that API rewrites its Cloud Run service from the Function resource on every
deploy (see infra/local/standin/cloudfunctions_v2.py), so a fix made on the service would be
undone by the next `gcloud functions deploy`; one made on the function sticks, and a deploy
that does not name the setting (gcloud puts `--ingress-settings` in the update mask only when it
is given) keeps it. Writes carry an update mask naming only the field fixed, so nothing else the
owner set is touched. Functions have no etag: the re-read just before the write, and the mask,
are what keep a concurrent change from being lost.

IAM permissions: cloudfunctions.functions.get, cloudfunctions.functions.update,
cloudfunctions.operations.get, and iam.serviceAccounts.actAs on the function's runtime service
account (an update redeploys its Cloud Run service).
"""

from __future__ import annotations

import concurrent.futures
import shlex
from collections.abc import Iterable
from typing import Any

from shared.actions import ActionContext, read_timeout, record
from shared.model import ActionRecord, Change, Finding, Outcome

_V1_INGRESS = {"ALLOW_ALL": "all", "ALLOW_INTERNAL_ONLY": "internal-only", "ALLOW_INTERNAL_AND_GCLB": "internal-and-gclb"}


def _client() -> Any:
    from shared import clients

    return clients.functions()


def facts(fn: Any) -> dict[str, Any]:
    from shared.views.function import from_live

    v = from_live(fn)
    if v is None:
        return {}
    return {"ingress": v.ingress, "service_account": v.service_account or "(default)", "service": v.service}


def revert_ingress(finding: Finding, ctx: ActionContext, *, allowed: Iterable[str], target: str) -> ActionRecord:
    """Set the live function's ingress to `target` if it is not one of `allowed`."""
    from google.cloud import functions_v2
    from google.protobuf import field_mask_pb2

    from shared.views.function import from_live

    client = _client()
    fn = client.get_function(name=finding.resource, retry=None, timeout=read_timeout(ctx.operation_timeout))
    view = from_live(fn)
    before = facts(fn)
    if view is None or view.ingress in tuple(allowed):
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, reason="live ingress already allowed")
    change = Change("serviceConfig.ingressSettings", view.ingress, target)
    if ctx.dry_run:
        return record(finding, ctx, Outcome.DRY_RUN, changes=[change], before=before, after={**before, "ingress": target})
    patch = functions_v2.Function(
        name=finding.resource,
        service_config=functions_v2.ServiceConfig(ingress_settings=functions_v2.ServiceConfig.IngressSettings[target]),
    )
    op = client.update_function(
        function=patch, update_mask=field_mask_pb2.FieldMask(paths=["service_config.ingress_settings"]),
        retry=None, timeout=read_timeout(ctx.operation_timeout),
    )
    try:
        done = op.result(timeout=ctx.operation_timeout)
    except concurrent.futures.TimeoutError:
        return record(finding, ctx, Outcome.FAILED, changes=[change], before=before, attempts=1,
                      reason=f"update operation did not finish within {ctx.operation_timeout:g}s")
    parts = finding.resource.split("/")
    undo = (f"gcloud functions deploy {shlex.quote(parts[-1])} --region={parts[3]} --project={parts[1]} "
            f"--ingress-settings={_V1_INGRESS.get(view.ingress, 'all')}  # add an exemption for this function "
            "to the policy first, or Rampart reverts the undo")
    return record(finding, ctx, Outcome.REMEDIATED, changes=[change], before=before, after=facts(done), attempts=1, undo=undo)
