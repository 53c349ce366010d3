"""The Cloud Run invoker IAM check turned off (`invoker-iam-disabled` / `invokerIamDisabled`):
the service answers unauthenticated requests whatever its IAM policy says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.event import AuditEvent
from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_QUARANTINE, RUN_UPDATE
from shared.rules import RUN_SERVICE_WRITES, Rule, finding, service_view

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    pass


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    view = service_view(event)
    if view is None or not view.invoker_iam_disabled:
        return None
    observed = {"invoker_iam_disabled": True, "api": view.api}
    return finding(RULE, event, resource=view.name, location=view.location, project=view.project, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Turn the live invoker IAM check back on, or quarantine the service.

    IAM permissions: RULE.permissions[ctx.action] (revert: shared.permissions.RUN_UPDATE, i.e.
    run.services.get/update, run.operations.get, iam.serviceAccounts.actAs; quarantine adds RUN_IAM).
    """
    from shared import run_actions

    return run_actions.dispatch(
        finding, ctx, violates=run_actions.still_fails(evaluate, params),
        revert=lambda: run_actions.revert_invoker_check(finding, ctx),
    )


RULE = Rule(
    id="run_invoker_iam_disabled",
    title="Cloud Run invoker IAM check disabled",
    severity=Severity.CRITICAL,
    resource_type="run.service",
    triggers=RUN_SERVICE_WRITES,
    action=Action.REVERT,
    actions=(Action.REVERT, Action.QUARANTINE, Action.ALERT),
    permissions={
        "revert": RUN_UPDATE,
        "quarantine": RUN_QUARANTINE,
    },
    evaluate=evaluate,
    params=Params,
    why=(
        "With the invoker IAM check disabled, anyone who reaches the service can call it "
        "(https://cloud.google.com/run/docs/securing/managing-access#invoker_check)."
    ),
)
