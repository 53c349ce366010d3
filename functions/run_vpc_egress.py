"""Cloud Run VPC egress not `private-ranges-only`, or no VPC access on a service that must
reach private backends (Cloud SQL, Redis) through a connector, as the HIPAA seed deploys it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_QUARANTINE
from shared.rules import RUN_SERVICE_WRITES, Rule, RuntimeView, finding, matches_any
from shared.views.run import SERVICE

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    allowed_egress: tuple[str, ...] = ("PRIVATE_RANGES_ONLY",)
    # Service names (projects/*/locations/*/services/* patterns) that must have VPC access.
    require_vpc_access_for: tuple[str, ...] = ()


def check(view: RuntimeView, params: Params) -> Finding | None:
    """VPC egress not allowed, or no VPC access where `require_vpc_access_for` asks for it."""
    if view.has_vpc_access:
        if view.vpc_egress in params.allowed_egress:
            return None
        observed = {"vpc_egress": view.vpc_egress, "required": list(params.allowed_egress), "connector": view.vpc_connector}
        return finding(RULE, view, observed=observed)
    if params.require_vpc_access_for and matches_any(view.name, params.require_vpc_access_for):
        observed = {"vpc_access": "none", "required": "a VPC connector or Direct VPC egress, private-ranges-only"}
        return finding(RULE, view, observed=observed)
    return None


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Quarantine the service if the live one still has non-private VPC egress.

    Only quarantine is offered (when the team chooses it): there is no safe automatic revert.

    IAM permissions: shared.permissions.RUN_QUARANTINE (run.services.get/update/getIamPolicy/
    setIamPolicy, run.operations.get, iam.serviceAccounts.actAs on the service's identity).
    """
    from shared.actions import run

    return run.dispatch(finding, ctx, rule=RULE, params=params)


RULE = Rule(
    id="run_vpc_egress",
    title="Cloud Run VPC egress is not private-ranges-only",
    severity=Severity.MEDIUM,
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
        "With --vpc-egress=private-ranges-only only private traffic goes through the VPC network "
        "(https://cloud.google.com/run/docs/configuring/networking-best-practices)."
    ),
)
