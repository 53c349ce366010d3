"""A Cloud Run service without a customer-managed encryption key, or with one in another
location: regulated data must stay under keys the team controls (seed 001), in the same region."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.event import AuditEvent
from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_QUARANTINE
from shared.rules import RUN_SERVICE_WRITES, Rule, finding, kms_parts, service_view

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    require_cmek: bool = True
    require_same_location: bool = True


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    view = service_view(event)
    if view is None:
        return None
    key = view.encryption_key
    if not key:
        if not params.require_cmek:
            return None
        observed = {"encryption_key": "(none: Google default encryption)", "required": "a Cloud KMS key"}
    else:
        parts = kms_parts(key)
        if not params.require_same_location or parts is None or parts["location"] == view.location:
            return None
        observed = {"encryption_key": key, "key_location": parts["location"], "service_location": view.location}
    return finding(RULE, event, resource=view.name, location=view.location, project=view.project, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Quarantine the service if the live one still lacks a CMEK key in its region.

    Only quarantine is offered (when the team chooses it): there is no safe automatic revert.

    IAM permissions: shared.permissions.RUN_QUARANTINE (run.services.get/update/getIamPolicy/
    setIamPolicy, run.operations.get, iam.serviceAccounts.actAs on the service's identity).
    """
    from shared import run_actions

    return run_actions.dispatch(finding, ctx, violates=run_actions.still_fails(evaluate, params))


RULE = Rule(
    id="run_cmek_missing",
    title="Cloud Run service without a customer-managed encryption key in its region",
    severity=Severity.HIGH,
    resource_type="run.service",
    triggers=RUN_SERVICE_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT, Action.QUARANTINE),
    permissions={
        "quarantine": RUN_QUARANTINE,
    },
    evaluate=evaluate,
    params=Params,
    why=(
        "Customer-managed keys give you control over the key's location, rotation and access "
        "(https://cloud.google.com/run/docs/securing/using-cmek)."
    ),
)
