"""`allUsers` or `allAuthenticatedUsers` granted on a Cloud Run service: anyone on the internet
can call it, where the HIPAA seed requires `--no-allow-unauthenticated`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.event import AuditEvent
from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_IAM, RUN_QUARANTINE
from shared.rules import (
    PUBLIC_MEMBERS,
    RUN_SET_IAM,
    Rule,
    finding,
    iam_delta,
    iam_resource,
    run_service_name,
)

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    # Roles on which a public member is a violation; "*" means any role.
    roles: tuple[str, ...] = ("*",)


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    delta = iam_delta(event)
    any_role = "*" in params.roles
    public = sorted({(r, m) for r, m in delta.added if m in PUBLIC_MEMBERS and (any_role or r in params.roles)})
    if not public:
        return None
    name, project, location = run_service_name(event)
    if iam_resource(event).startswith("projects/"):
        name = iam_resource(event)
    observed = {"public_members": [{"role": r, "member": m} for r, m in public], "from_delta": delta.from_delta}
    return finding(RULE, event, resource=name, location=location, project=project, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Remove exactly the public grants on `params.roles` from the live policy, or quarantine.

    IAM permissions: RULE.permissions[ctx.action] (revert: shared.permissions.RUN_IAM;
    quarantine: RUN_QUARANTINE, which adds run.services.get/update, run.operations.get and
    iam.serviceAccounts.actAs).
    """
    from shared import run_actions

    return run_actions.dispatch(
        finding, ctx, violates=lambda live: bool(run_actions.public_grants_in(live.public, params.roles)),
        revert=lambda: run_actions.revert_public_invoker(finding, ctx, roles=params.roles),
    )


RULE = Rule(
    id="run_public_invoker",
    title="Cloud Run service made publicly invokable",
    severity=Severity.CRITICAL,
    resource_type="run.service",
    triggers=RUN_SET_IAM,
    action=Action.REVERT,
    actions=(Action.REVERT, Action.QUARANTINE, Action.ALERT),
    permissions={
        "revert": RUN_IAM,
        "quarantine": RUN_QUARANTINE,
    },
    evaluate=evaluate,
    params=Params,
    why=(
        "allUsers or allAuthenticatedUsers as invoker makes the service public; keep IAM authentication "
        "(https://cloud.google.com/run/docs/authenticating/public)."
    ),
)
