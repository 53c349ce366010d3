"""An organization policy constraint that guards what Rampart guards relaxed or deleted (Org Policy
v2 Create/Update/DeletePolicy, Resource Manager v1 SetOrgPolicy/ClearOrgPolicy): with the
guardrail gone, every new service may be public, unencrypted or anywhere, and Rampart becomes
the only line. Critical alert. Not restored: neither the entry nor the live state says what the
policy was before (a DeletePolicy logs only the name), so no restore is certain."""

from __future__ import annotations

from dataclasses import dataclass

from shared.model import Action, Finding, Severity
from shared.rules import Rule, finding
from shared.views.orgpolicy import CRM, ORG_POLICY, ORGPOLICY, OrgPolicyView


@dataclass(frozen=True)
class Params:
    constraints: tuple[str, ...] = (
        "run.allowedIngress", "run.allowedVPCEgress", "gcp.restrictNonCmekServices", "gcp.restrictCmekCryptoKeyProjects",
        "gcp.resourceLocations", "iam.allowedPolicyMemberDomains", "cloudkms.minimumDestroyScheduledDuration",
        "cloudkms.disableBeforeDestroy",
    )


def check(view: OrgPolicyView, params: Params) -> Finding | None:
    """A watched constraint's policy deleted, reset, allowing all, not enforced, conditional, or
    with its values changed (which may widen them: the prior values are not known)."""
    if view.constraint not in params.constraints:
        return None
    how: list[str] = []
    if view.deleted:
        how.append("deleted")
    if view.reset:
        how.append("reset to the constraint's default")
    if view.allow_all:
        how.append("allows all values")
    if view.enforce is False:
        how.append("not enforced")
    if view.conditional:
        how.append("enforced only under a condition")
    if view.inherit_from_parent is False and not (view.deny_all or view.enforce or view.allowed_values or view.denied_values):
        how.append("stops inheriting and sets nothing")
    if view.allowed_values and not how:
        how.append("allowed values changed")
    if not how:
        return None
    observed = {"constraint": view.constraint, "parent": view.parent, "how": how,
                "allowed_values": list(view.allowed_values)[:20]}
    return finding(RULE, view, observed=observed, title=f"{RULE.title}: {view.constraint}")


_V2 = "google.cloud.orgpolicy.v2.OrgPolicy."

RULE = Rule(
    id="org_policy_relaxed",
    title="Organization policy guardrail relaxed or deleted",
    severity=Severity.CRITICAL,
    kind=ORG_POLICY,
    triggers=(
        (ORGPOLICY, _V2 + "CreatePolicy"), (ORGPOLICY, _V2 + "UpdatePolicy"), (ORGPOLICY, _V2 + "DeletePolicy"),
        (CRM, "SetOrgPolicy"), (CRM, "ClearOrgPolicy"),
    ),
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why="Seed 000/001: the org policy constraints enforce ingress, egress, CMEK and locations before Rampart has to.",
)
