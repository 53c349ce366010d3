"""An organization policy constraint that guards what Rampart guards relaxed or deleted (Org Policy
v2 Create/Update/DeletePolicy, Resource Manager v1 SetOrgPolicy/ClearOrgPolicy): with the
guardrail gone, every new service may be public, unencrypted or anywhere, and Rampart becomes
the only line. Critical alert. Restored only to the policy's declared `baseline`: neither the
entry nor the live state says what the policy was before (a DeletePolicy logs only the name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.model import Action, Finding, Outcome, Severity
from shared.rules import Rule, finding
from shared.views.orgpolicy import CRM, ORG_POLICY, ORGPOLICY, OrgPolicyView, rules_of_spec

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord


@dataclass(frozen=True)
class Params:
    constraints: tuple[str, ...] = (
        "run.allowedIngress", "run.allowedVPCEgress", "gcp.restrictNonCmekServices", "gcp.restrictCmekCryptoKeyProjects",
        "gcp.resourceLocations", "iam.allowedPolicyMemberDomains", "cloudkms.minimumDestroyScheduledDuration",
        "cloudkms.disableBeforeDestroy",
    )
    # Constraint → the Org Policy v2 spec it must have (e.g. {"rules": [{"enforce": true}]}): what
    # a restore writes. A constraint without one is alerted only.
    baseline: dict[str, dict[str, Any]] = field(default_factory=dict)


def check(view: OrgPolicyView, params: Params) -> Finding | None:
    """A watched constraint's policy deleted, reset, allowing all, not enforced, conditional, or
    with its values changed by a write (which may widen them: the prior values are not known); in
    a state read, values other than the declared baseline."""
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
        baseline = params.baseline.get(view.constraint)
        if view.written:
            how.append("allowed values changed")
        elif baseline is not None and rules_of_spec(baseline) != view.rules:
            # A state (a sweep's record, a live read) with values is a finding only where the
            # values are not the declared baseline: its prior values are no question there.
            how.append("allowed values differ from the baseline")
    if not how:
        return None
    observed = {"constraint": view.constraint, "parent": view.parent, "how": how,
                "allowed_values": list(view.allowed_values)[:20]}
    return finding(RULE, view, observed=observed, title=f"{RULE.title}: {view.constraint}")


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Put the constraint's policy back to `params.baseline`, if one is declared for it.

    IAM permissions: orgpolicy.policy.get, orgpolicy.policies.create, orgpolicy.policies.update.
    """
    from shared.actions import record
    from shared.guardrail_actions import restore_policy

    constraint = str(finding.observed.get("constraint", ""))
    if constraint not in params.baseline:
        return record(finding, ctx, Outcome.ALERTED, reason=f"no baseline for {constraint}: what to restore is not certain")
    return restore_policy(finding, ctx, baseline=params.baseline[constraint])


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
    action=Action.RESTORE,
    actions=(Action.RESTORE, Action.ALERT),
    permissions={"restore": ("orgpolicy.policy.get", "orgpolicy.policies.create", "orgpolicy.policies.update")},
    check=check,
    params=Params,
    remediate=remediate,
    why="Organization policy constraints are the preventive guardrails for ingress, egress, CMEK and locations (https://cloud.google.com/resource-manager/docs/organization-policy/overview).",
)
