"""Cloud Run ingress opened to the internet (`all`), where the HIPAA seed requires
`internal-and-cloud-load-balancing`: direct public access bypasses the load balancer and Cloud Armor."""

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
    # Ingress values that are compliant (v2 enum names).
    allowed: tuple[str, ...] = ("INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_NONE")
    # What a revert sets ingress to: the seed's `--ingress=internal-and-cloud-load-balancing`.
    revert_to: str = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    view = service_view(event)
    if view is None or view.ingress in params.allowed:
        return None
    observed = {"ingress": view.ingress, "explicit": view.ingress_explicit, "api": view.api, "required": params.revert_to}
    return finding(RULE, event, resource=view.name, location=view.location, project=view.project, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Revert live ingress to `params.revert_to`, or quarantine the service.

    IAM permissions: RULE.permissions[ctx.action] (revert: shared.permissions.RUN_UPDATE, i.e.
    run.services.get/update, run.operations.get, iam.serviceAccounts.actAs; quarantine adds RUN_IAM).
    """
    from shared import run_actions

    return run_actions.dispatch(
        finding, ctx, violates=run_actions.still_fails(evaluate, params),
        revert=lambda: run_actions.revert_ingress(finding, ctx, allowed=params.allowed, target=params.revert_to),
    )


RULE = Rule(
    id="run_ingress_open",
    title="Cloud Run ingress opened to all traffic",
    severity=Severity.HIGH,
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
        "Ingress `all` lets anyone on the internet reach the service; internal-and-cloud-load-balancing blocks direct access "
        "(https://cloud.google.com/run/docs/securing/ingress)."
    ),
)
