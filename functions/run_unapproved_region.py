"""A Cloud Run service deployed outside the approved regions: the HIPAA seed allows only
the listed US regions for workloads that may hold PHI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_QUARANTINE
from shared.rules import RUN_SERVICE_WRITES, Rule, RuntimeView, finding
from shared.views.run import SERVICE

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    # None: the policy's global `approved_regions`.
    approved_regions: tuple[str, ...] | None = None


def check(view: RuntimeView, params: Params) -> Finding | None:
    """The service's region is not approved."""
    if not view.location:
        return None
    approved = params.approved_regions or ()
    if view.location in approved:
        return None
    observed = {"region": view.location, "approved_regions": list(approved)}
    return finding(RULE, view, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Quarantine the service if the live one is outside the approved regions.

    IAM permissions: shared.permissions.RUN_QUARANTINE (run.services.get/update/getIamPolicy/
    setIamPolicy, run.operations.get, iam.serviceAccounts.actAs on the service's identity).
    """
    from shared.actions import run

    return run.dispatch(finding, ctx, rule=RULE, params=params)


RULE = Rule(
    id="run_unapproved_region",
    title="Cloud Run service deployed outside the approved regions",
    severity=Severity.HIGH,
    kind=SERVICE,
    triggers=RUN_SERVICE_WRITES,
    action=Action.QUARANTINE,
    actions=(Action.QUARANTINE, Action.ALERT),
    permissions={
        "quarantine": RUN_QUARANTINE,
    },
    check=check,
    params=Params,
    remediate=remediate,
    why=(
        "A service's customer data is stored in its region; deploy only where the policy's approved_regions allow "
        "(https://cloud.google.com/run/docs/locations)."
    ),
)
