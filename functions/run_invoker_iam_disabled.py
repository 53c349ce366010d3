"""The Cloud Run invoker IAM check turned off (`invoker-iam-disabled` / `invokerIamDisabled`):
the service answers unauthenticated requests whatever its IAM policy says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_QUARANTINE, RUN_UPDATE
from shared.rules import RUN_SERVICE_WRITES, Rule, finding
from shared.views.run import SERVICE, ServiceView

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    pass


def check(view: ServiceView, params: Params) -> Finding | None:
    """The invoker IAM check is off."""
    if not view.invoker_iam_disabled:
        return None
    observed = {"invoker_iam_disabled": True}
    return finding(RULE, view, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Turn the live invoker IAM check back on, or quarantine the service.

    IAM permissions: RULE.permissions[ctx.action] (revert: shared.permissions.RUN_UPDATE, i.e.
    run.services.get/update, run.operations.get, iam.serviceAccounts.actAs; quarantine adds RUN_IAM).
    """
    from shared.actions import run

    return run.dispatch(
        finding, ctx, rule=RULE, params=params,
        revert=lambda: run.revert_invoker_check(finding, ctx),
    )


RULE = Rule(
    id="run_invoker_iam_disabled",
    title="Cloud Run invoker IAM check disabled",
    severity=Severity.CRITICAL,
    kind=SERVICE,
    triggers=RUN_SERVICE_WRITES,
    action=Action.REVERT,
    actions=(Action.REVERT, Action.QUARANTINE, Action.ALERT),
    permissions={
        "revert": RUN_UPDATE,
        "quarantine": RUN_QUARANTINE,
    },
    check=check,
    params=Params,
    remediate=remediate,
    why=(
        "With the invoker IAM check disabled, anyone who reaches the service can call it "
        "(https://cloud.google.com/run/docs/securing/managing-access#invoker_check)."
    ),
)
