"""Cloud Run ingress opened to the internet (`all`), where the HIPAA seed requires
`internal-and-cloud-load-balancing`: direct public access bypasses the load balancer and Cloud Armor."""

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
    # Ingress values that are compliant (v2 enum names).
    allowed: tuple[str, ...] = ("INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_NONE")
    # What a revert sets ingress to: the seed's `--ingress=internal-and-cloud-load-balancing`.
    revert_to: str = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"


def check(view: ServiceView, params: Params) -> Finding | None:
    """Ingress is not one of `params.allowed`."""
    if view.ingress in params.allowed:
        return None
    observed = {"ingress": view.ingress, "required": params.revert_to}
    return finding(RULE, view, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Revert live ingress to `params.revert_to`, or quarantine the service.

    IAM permissions: RULE.permissions[ctx.action] (revert: shared.permissions.RUN_UPDATE, i.e.
    run.services.get/update, run.operations.get, iam.serviceAccounts.actAs; quarantine adds RUN_IAM).
    """
    from shared.actions import run

    return run.dispatch(
        finding, ctx, rule=RULE, params=params,
        revert=lambda: run.revert_ingress(finding, ctx, allowed=params.allowed, target=params.revert_to),
    )


RULE = Rule(
    id="run_ingress_open",
    title="Cloud Run ingress opened to all traffic",
    severity=Severity.HIGH,
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
        "Ingress `all` lets anyone on the internet reach the service; internal-and-cloud-load-balancing blocks direct access "
        "(https://cloud.google.com/run/docs/securing/ingress)."
    ),
)
