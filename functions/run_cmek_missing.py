"""A Cloud Run service without a customer-managed encryption key, or with one in another
location: regulated data must stay under keys the team controls, in the same region."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_QUARANTINE
from shared.rules import RUN_SERVICE_WRITES, Rule, RuntimeView, finding
from shared.views.names import kms_name
from shared.views.run import SERVICE

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    require_cmek: bool = True
    require_same_location: bool = True


def check(view: RuntimeView, params: Params) -> Finding | None:
    """No CMEK key, or (with `require_same_location`) a key in another location."""
    key = view.encryption_key
    if not key:
        if not params.require_cmek:
            return None
        observed = {"encryption_key": "(none: Google default encryption)", "required": "a Cloud KMS key"}
    else:
        parts = kms_name(key)
        if not params.require_same_location or parts is None or parts.location == view.location:
            return None
        observed = {"encryption_key": key, "key_location": parts.location, "service_location": view.location}
    return finding(RULE, view, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Quarantine the service if the live one still lacks a CMEK key in its region.

    Only quarantine is offered (when the team chooses it): there is no safe automatic revert.

    IAM permissions: shared.permissions.RUN_QUARANTINE (run.services.get/update/getIamPolicy/
    setIamPolicy, run.operations.get, iam.serviceAccounts.actAs on the service's identity).
    """
    from shared.actions import run

    return run.dispatch(finding, ctx, rule=RULE, params=params)


RULE = Rule(
    id="run_cmek_missing",
    title="Cloud Run service without a customer-managed encryption key in its region",
    severity=Severity.HIGH,
    kind=SERVICE,
    triggers=RUN_SERVICE_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT, Action.QUARANTINE),
    permissions={
        "quarantine": RUN_QUARANTINE,
    },
    check=check,
    params=Params,
    remediate=remediate,
    why=(
        "Customer-managed keys give you control over the key's location, rotation and access "
        "(https://cloud.google.com/run/docs/securing/using-cmek)."
    ),
)
