"""A member outside the organization holds a role on a Cloud Run service, function, job or worker
pool, a CMEK key or key ring, or a project, folder or organization: anyone the policy's
`trusted_domains` / `trusted_projects` do not name, consumer accounts (gmail.com) always,
federated identities, and members of a kind IAM does not document (fail closed). A conditional
grant is still a grant. Public members on a service, function or key are their own rules'
findings (run_public_invoker, function_public_invoker, kms_public_member), not this one's."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.members import Trust, outsider_reason
from shared.model import Action, Finding, Outcome, Severity
from shared.permissions import FUNCTION_IAM, KMS_IAM, PROJECT_IAM, RUN_IAM, RUN_WORKLOAD_IAM
from shared.rules import (
    FUNCTION_SET_IAM,
    HIERARCHY_SET_IAM,
    KMS_SET_IAM,
    RUN_SET_IAM,
    RUN_WORKLOAD_SET_IAM,
    Rule,
    finding,
    matches_any,
)
from shared.views.iam import PolicyView
from shared.views.scope import HIERARCHY, POLICY, scope_of

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord

# An allow policy holds at most 1,500 principals (IAM quotas and limits); a "policy" with more is
# not one IAM would accept, and judging a million members would stall the function.
MAX_PRINCIPALS = 1500

# Where a public member is another rule's finding.
_PUBLIC_HAS_ITS_RULE = frozenset({"run.service", "run.function", "kms.cryptoKey", "kms.keyRing"})


@dataclass(frozen=True)
class Params:
    # None: the policy's top-level trusted_domains / trusted_projects.
    trusted_domains: tuple[str, ...] | None = None
    trusted_projects: tuple[str, ...] | None = None
    # Members always allowed (shell patterns), e.g. a partner's service account under contract.
    allowed_members: tuple[str, ...] = ()
    # Roles on which an outsider is a finding; "*" means any role.
    roles: tuple[str, ...] = ("*",)


def trust_for(project: str, params: Params) -> Trust:
    """The policy's trust, plus the project the judged policy is in: its own service accounts
    (`SA@PROJECT.iam...`, `PROJECT@appspot...`, and `NUMBER-compute@developer...` when the project
    is named by number) are part of it, not outsiders to it. A folder or organization has none."""
    own = (project,) if project else ()
    return Trust(tuple(params.trusted_domains or ()), tuple(params.trusted_projects or ()) + own)


def outsiders_in(view: PolicyView, params: Params) -> list[dict[str, str]]:
    """The (role, member, reason) grants of `view` to outsiders, as this rule judges them."""
    scope = scope_of(view.name)
    trust = trust_for("" if scope in ("folder", "organization") else view.project, params)
    out = []
    seen: dict[str, str | None] = {}
    for b in view.bindings:
        if "*" not in params.roles and b.role not in params.roles:
            continue
        for m in b.members:
            if m not in seen:
                if len(seen) >= MAX_PRINCIPALS:
                    break
                seen[m] = outsider_reason(m, trust)
            reason = seen[m]
            if reason is None or matches_any(m, params.allowed_members):
                continue
            if reason == "public" and scope in _PUBLIC_HAS_ITS_RULE:
                continue
            grant = {"role": b.role, "member": m, "reason": reason}
            if b.condition is not None:
                grant["condition"] = b.condition.title or b.condition.expression
            out.append(grant)
    return sorted(out, key=lambda g: (g["role"], g["member"]))


def check(view: PolicyView, params: Params) -> Finding | None:
    """Some binding of the policy (conditional or not) grants a role to an outsider."""
    scope = scope_of(view.name)
    if not scope:
        return None
    found = outsiders_in(view, params)
    if not found:
        return None
    observed = {"outsiders": found, "scope": scope}
    f: Finding[Any] = finding(RULE, view, observed=observed, title=f"{RULE.title} ({scope})")
    if scope in HIERARCHY:
        # A folder or organization is in no project; say which, so exemptions and alerts can name it.
        f = dataclasses.replace(f, project=view.project or view.name, location=view.location or "global")
    return dataclasses.replace(f, resource_type=scope)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Remove exactly the flagged outsiders' grants (conditional ones too) from the live policy of
    a project, Cloud Run service, job, worker pool or function, key or key ring, if the same test
    still flags them there; keep everything else (etag-guarded). Folders and organizations: alert,
    a human decides.

    IAM permissions: resourcemanager.projects.getIamPolicy/.setIamPolicy (projects),
    run.services.getIamPolicy/.setIamPolicy (services; run.jobs., run.workerPools. likewise),
    cloudfunctions.functions.getIamPolicy/.setIamPolicy (functions), cloudkms.*.getIamPolicy/
    .setIamPolicy (keys and key rings).
    """
    from shared.actions import iam, record

    scope = scope_of(finding.resource)
    if scope not in ("project", "run.service", "run.job", "run.workerPool", "run.function", "kms.cryptoKey", "kms.keyRing"):
        return record(finding, ctx, Outcome.ALERTED, reason=f"no automatic fix for a {scope}'s policy: a human decides")
    trust = trust_for(finding.project, params)  # a project or a resource in one (the rest returned above)
    flagged = {(str(g["role"]), str(g["member"])) for g in finding.observed.get("outsiders", [])}

    def still_bad(g: iam.Grant) -> bool:
        return ((g.role, g.member) in flagged and outsider_reason(g.member, trust) is not None
                and not matches_any(g.member, params.allowed_members))

    return iam.edit_policy(finding, ctx, iam.remove_grants(still_bad), undo_verb="add")


RULE = Rule(
    id="iam_outsider_member",
    title="Role granted to a member outside the organization",
    severity=Severity.CRITICAL,
    kind=POLICY,
    triggers=RUN_SET_IAM + FUNCTION_SET_IAM + RUN_WORKLOAD_SET_IAM + KMS_SET_IAM + HIERARCHY_SET_IAM,
    action=Action.REVERT,
    actions=(Action.REVERT, Action.ALERT),
    permissions={"revert": PROJECT_IAM + RUN_IAM + RUN_WORKLOAD_IAM + FUNCTION_IAM + KMS_IAM},
    check=check,
    params=Params,
    remediate=remediate,
    why="Only identities of your organization should hold roles; domain-restricted sharing is the preventive form (https://cloud.google.com/resource-manager/docs/organization-policy/restricting-domains).",
)
