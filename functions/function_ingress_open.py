"""A Cloud Run function (Cloud Functions v2 API) open to all traffic: `ingressSettings` ALLOW_ALL,
which is also what a deploy without `--ingress-settings` gets. The HIPAA seed wants traffic only
through the load balancer (`internal-and-cloud-load-balancing`). Reverted through the Cloud
Functions API, where the fix survives the next deploy (a fix on the Cloud Run service would not)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.model import Action, Finding, Severity
from shared.permissions import FUNCTION_UPDATE
from shared.rules import FUNCTION_WRITES, Rule, finding
from shared.views.functions import FUNCTION, FunctionView

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord


@dataclass(frozen=True)
class Params:
    # Ingress settings that are compliant (Cloud Functions v2 enum names).
    allowed: tuple[str, ...] = ("ALLOW_INTERNAL_AND_GCLB", "ALLOW_INTERNAL_ONLY")
    # What a revert sets: the seed's internal-and-cloud-load-balancing.
    revert_to: str = "ALLOW_INTERNAL_AND_GCLB"


def check(view: FunctionView, params: Params) -> Finding | None:
    """Ingress is not one of `params.allowed` (unset is the API default, ALLOW_ALL)."""
    if view.ingress in params.allowed:
        return None
    return finding(RULE, view, observed={"ingress": view.ingress, "required": params.revert_to})


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Set the live function's ingress to `params.revert_to` through the Cloud Functions API,
    with an update mask of that one field.

    IAM permissions: shared.permissions.FUNCTION_UPDATE (cloudfunctions.functions.get/update,
    cloudfunctions.operations.get, iam.serviceAccounts.actAs on its runtime service account).
    """
    from shared.function_actions import revert_ingress

    return revert_ingress(finding, ctx, allowed=params.allowed, target=params.revert_to)


RULE = Rule(
    id="function_ingress_open",
    title="Cloud Run function open to all traffic",
    severity=Severity.HIGH,
    kind=FUNCTION,
    triggers=FUNCTION_WRITES,
    action=Action.REVERT,
    actions=(Action.REVERT, Action.ALERT),
    permissions={"revert": FUNCTION_UPDATE},
    check=check,
    params=Params,
    remediate=remediate,
    why="Ingress ALLOW_ALL lets anyone on the internet reach the function; ALLOW_INTERNAL_AND_GCLB keeps it behind the load balancer (https://cloud.google.com/functions/docs/networking/network-settings).",
)
