"""A Cloud Run service deployed outside the approved regions: the HIPAA seed allows only
the listed US regions for workloads that may hold PHI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.event import AuditEvent
from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_QUARANTINE
from shared.rules import RUN_SERVICE_WRITES, Rule, finding, service_view

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    # None: the policy's global `approved_regions`.
    approved_regions: tuple[str, ...] | None = None


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    view = service_view(event)
    if view is None or not view.location:
        return None
    approved = params.approved_regions or ()
    if view.location in approved:
        return None
    observed = {"region": view.location, "approved_regions": list(approved)}
    return finding(RULE, event, resource=view.name, location=view.location, project=view.project, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Quarantine the service if the live one is outside the approved regions.

    IAM permissions: shared.permissions.RUN_QUARANTINE (run.services.get/update/getIamPolicy/
    setIamPolicy, run.operations.get, iam.serviceAccounts.actAs on the service's identity).
    """
    from shared import run_actions

    return run_actions.dispatch(finding, ctx, violates=run_actions.still_fails(evaluate, params))


RULE = Rule(
    id="run_unapproved_region",
    title="Cloud Run service deployed outside the approved regions",
    severity=Severity.HIGH,
    resource_type="run.service",
    triggers=RUN_SERVICE_WRITES,
    action=Action.QUARANTINE,
    actions=(Action.QUARANTINE, Action.ALERT),
    permissions={
        "quarantine": RUN_QUARANTINE,
    },
    evaluate=evaluate,
    params=Params,
    why=(
        "A service's customer data is stored in its region; deploy only where the policy's approved_regions allow "
        "(https://cloud.google.com/run/docs/locations)."
    ),
)
