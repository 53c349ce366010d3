"""A Cloud Run function made publicly invokable through the Cloud Functions API's own IAM policy
(`allUsers` / `allAuthenticatedUsers` on `roles/cloudfunctions.invoker` or any role). (A
`gcloud functions deploy --allow-unauthenticated` grants `run.invoker` on the function's Cloud
Run service instead: run_public_invoker's finding.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.members import PUBLIC
from shared.model import Action, Finding, Severity
from shared.permissions import FUNCTION_IAM
from shared.rules import FUNCTION_SET_IAM, Rule, finding
from shared.views.iam import POLICY, PolicyView
from shared.views.scope import scope_of

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord


@dataclass(frozen=True)
class Params:
    # Roles on which a public member is a violation; "*" means any role.
    roles: tuple[str, ...] = ("*",)


def check(view: PolicyView, params: Params) -> Finding | None:
    """The function's policy grants a public member a role in `params.roles` (conditional grants too)."""
    if scope_of(view.name) != "run.function":
        return None
    public = [(r, m) for r, m in view.grants(PUBLIC) if "*" in params.roles or r in params.roles]
    if not public:
        return None
    observed = {"public_members": [{"role": r, "member": m} for r, m in public]}
    return finding(RULE, view, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Remove exactly the flagged public grants from the function's live policy (etag-guarded).

    IAM permissions: shared.permissions.FUNCTION_IAM (cloudfunctions.functions.getIamPolicy/.setIamPolicy).
    """
    from shared.actions import iam

    flagged = {(str(g["role"]), str(g["member"])) for g in finding.observed.get("public_members", [])}
    return iam.edit_policy(finding, ctx, iam.remove_grants(lambda g: (g.role, g.member) in flagged and g.member in PUBLIC),
                           undo_verb="add")


RULE = Rule(
    id="function_public_invoker",
    title="Cloud Run function made publicly invokable",
    severity=Severity.CRITICAL,
    kind=POLICY,
    triggers=FUNCTION_SET_IAM,
    action=Action.REVERT,
    actions=(Action.REVERT, Action.ALERT),
    permissions={"revert": FUNCTION_IAM},
    check=check,
    params=Params,
    remediate=remediate,
    why="allUsers or allAuthenticatedUsers as invoker makes the function public; keep IAM authentication (https://cloud.google.com/functions/docs/securing/managing-access-iam).",
)
