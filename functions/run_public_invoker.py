"""`allUsers` or `allAuthenticatedUsers` granted on a Cloud Run service: anyone on the internet
can call it, where the HIPAA seed requires `--no-allow-unauthenticated`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_IAM, RUN_QUARANTINE
from shared.rules import RUN_SET_IAM, Rule, finding
from shared.views.iam import POLICY, PUBLIC_MEMBERS, PolicyView

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    # Roles on which a public member is a violation; "*" means any role.
    roles: tuple[str, ...] = ("*",)


def check(view: PolicyView, params: Params) -> Finding | None:
    """The service's policy grants a public member a role in `params.roles`."""
    if view.resource_type != "run.service":
        return None
    any_role = "*" in params.roles
    public = [(r, m) for r, m in view.grants(PUBLIC_MEMBERS) if any_role or r in params.roles]
    if not public:
        return None
    observed = {"public_members": [{"role": r, "member": m} for r, m in public]}
    return finding(RULE, view, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Remove exactly the public grants on `params.roles` from the live policy, or quarantine.

    IAM permissions: RULE.permissions[ctx.action] (revert: shared.permissions.RUN_IAM;
    quarantine: RUN_QUARANTINE, which adds run.services.get/update, run.operations.get and
    iam.serviceAccounts.actAs).
    """
    from shared.actions import run

    return run.dispatch(
        finding, ctx, rule=RULE, params=params,
        revert=lambda: run.revert_public_invoker(finding, ctx, roles=params.roles),
    )


RULE = Rule(
    id="run_public_invoker",
    title="Cloud Run service made publicly invokable",
    severity=Severity.CRITICAL,
    kind=POLICY,
    triggers=RUN_SET_IAM,
    action=Action.REVERT,
    actions=(Action.REVERT, Action.QUARANTINE, Action.ALERT),
    permissions={
        "revert": RUN_IAM,
        "quarantine": RUN_QUARANTINE,
    },
    check=check,
    params=Params,
    remediate=remediate,
    why=(
        "allUsers or allAuthenticatedUsers as invoker makes the service public; keep IAM authentication "
        "(https://cloud.google.com/run/docs/authenticating/public)."
    ),
)
