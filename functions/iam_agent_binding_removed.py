"""A Google service agent lost `cryptoKeyEncrypterDecrypter` at project, folder or organization
level (the grant CMEK services inherit on every key below). Re-adding it under a condition is
not the binding that was removed: only an unconditional grant counts (a condition can be always
false). kms_agent_binding_removed is the same judgement on a key or key ring."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.model import Action, Finding, Outcome, Severity
from shared.permissions import PROJECT_IAM
from shared.rules import ENCRYPTER_DECRYPTER, HIERARCHY_SET_IAM, Rule, finding, matches_any
from shared.views.iam import PolicyView
from shared.views.scope import HIERARCHY, POLICY, scope_of

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord


@dataclass(frozen=True)
class Params:
    role: str = ENCRYPTER_DECRYPTER
    # Members whose loss of the role is a violation (shell patterns): Google service agents.
    protected_members: tuple[str, ...] = (
        "serviceAccount:service-*@gcp-sa-*.iam.gserviceaccount.com",
        "serviceAccount:service-*@compute-system.iam.gserviceaccount.com",
        "serviceAccount:service-*@gs-project-accounts.iam.gserviceaccount.com",
        "serviceAccount:service-*@serverless-robot-prod.iam.gserviceaccount.com",
    )
    # Project, folder or organization name pattern → members that must always hold the role
    # there. Checked where the source shows the whole policy (a live read, an asset record).
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)


def check(view: PolicyView, params: Params) -> Finding | None:
    """A protected member held the role unconditionally before the change (where the source knows
    the prior policy), or `params.required` names it here (where the source shows the whole
    policy), and it does not hold it now; a conditional grant does not count."""
    scope = scope_of(view.name)
    if scope not in HIERARCHY:
        return None
    before: set[str] = set()
    if view.prior is not None:
        before |= {m for b in view.prior if b.role == params.role and b.condition is None
                   for m in b.members if matches_any(m, params.protected_members)}
    if view.complete:
        for pattern, members in params.required.items():
            if matches_any(view.name, (pattern,)):
                before.update(members)
    missing = before - view.members(params.role, conditional=False)
    if not missing:
        return None
    conditional = sorted(missing & view.members(params.role))
    observed = {"role": params.role, "missing_members": sorted(missing), "scope": scope}
    if conditional:
        observed["regranted_only_under_a_condition"] = conditional
    f: Finding[Any] = finding(RULE, view, observed=observed, title=f"{RULE.title} ({scope})")
    return dataclasses.replace(f, resource_type=scope, project=view.project or view.name, location=view.location or "global")


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Give the members the role back, unconditionally, on the live project policy (etag-guarded;
    every other binding and condition kept). Folders and organizations: alert.

    IAM permissions: resourcemanager.projects.getIamPolicy/.setIamPolicy.
    """
    from shared.actions import iam, record

    if scope_of(finding.resource) != "project":
        return record(finding, ctx, Outcome.ALERTED, reason="no automatic fix above a project: a human decides")
    role = str(finding.observed.get("role") or params.role)
    members = list(finding.observed.get("missing_members", []))
    return iam.edit_policy(finding, ctx, iam.add_members(role, members), undo_verb="remove")


RULE = Rule(
    id="iam_agent_binding_removed",
    title="Service agent lost encrypter/decrypter above the key",
    severity=Severity.CRITICAL,
    kind=POLICY,
    triggers=HIERARCHY_SET_IAM,
    action=Action.RESTORE,
    actions=(Action.RESTORE, Action.ALERT),
    permissions={"restore": PROJECT_IAM},
    check=check,
    params=Params,
    remediate=remediate,
    why="The service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter, here inherited from above the key (https://cloud.google.com/kms/docs/cmek).",
)
