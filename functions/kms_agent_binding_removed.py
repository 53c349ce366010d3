"""The encrypter/decrypter binding of a protected member (a service agent) removed from a
CMEK key or key ring: the service can no longer read its own data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.model import Action, Finding, Severity
from shared.permissions import KMS_IAM
from shared.rules import ENCRYPTER_DECRYPTER, KMS_SET_IAM, Rule, finding, matches_any
from shared.views.iam import POLICY, PolicyView

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord


@dataclass(frozen=True)
class Missing:
    """For the remediation: the members to give `role` back."""

    role: str
    members: tuple[str, ...]


# Google service agents (shell patterns): the members whose loss of the role breaks CMEK.
SERVICE_AGENTS: tuple[str, ...] = (
    "serviceAccount:service-*@gcp-sa-*.iam.gserviceaccount.com",
    "serviceAccount:service-*@compute-system.iam.gserviceaccount.com",
    "serviceAccount:service-*@gs-project-accounts.iam.gserviceaccount.com",
    "serviceAccount:service-*@serverless-robot-prod.iam.gserviceaccount.com",  # Cloud Run's agent
)


@dataclass(frozen=True)
class Params:
    role: str = ENCRYPTER_DECRYPTER
    # Members whose removal is a violation (shell patterns): Google service agents by default.
    protected_members: tuple[str, ...] = SERVICE_AGENTS
    # Key or key ring name pattern → members that must always hold the role there. Checked
    # against the new policy when the entry carries no policyDelta.
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Projects (numbers: service agents are named by number) whose agents may be put back; None:
    # the policy's top-level trusted_projects. A member `required` names for the key always may.
    trusted_projects: tuple[str, ...] | None = None


def check(view: PolicyView, params: Params) -> Finding[Missing] | None:
    """A protected member lacks the role unconditionally on a key or key ring: one the prior
    policy gave it (where the source knows the prior policy: an entry with a delta), or one
    `params.required` names for this resource (where the source shows the whole policy)."""
    if view.resource_type not in ("kms.cryptoKey", "kms.keyRing"):
        return None
    expected: set[str] = set()
    if view.prior is not None:
        expected |= {
            m for b in view.prior if b.role == params.role and b.condition is None
            for m in b.members if matches_any(m, params.protected_members)
        }
    if view.complete:
        for pattern, members in params.required.items():
            if matches_any(view.name, (pattern,)):
                expected.update(members)
    missing = expected - view.members(params.role, conditional=False)
    if not missing:
        return None
    observed = {"role": params.role, "missing_members": sorted(missing)}
    return finding(
        RULE, view, observed=observed, title=f"{RULE.title} ({view.resource_type.split('.')[1]})",
        detail=Missing(params.role, tuple(sorted(missing))),
    )


def remediate(finding: Finding[Missing], params: Params, ctx: ActionContext) -> ActionRecord:
    """Put back, in the role's unconditional binding on the key or key ring (keeping every other
    binding, condition and the policy version, etag-guarded), only the members that Cloud
    Logging's copy of the entry shows removed, that are Google service agents of a trusted
    project (or `required` for the key). A grant is the one write here the live state cannot
    justify: the live policy does not say who was there before.

    IAM permissions: cloudkms.cryptoKeys.getIamPolicy/.setIamPolicy on a key,
    cloudkms.keyRings.getIamPolicy/.setIamPolicy on a key ring, logging.logEntries.list.
    """
    from shared.actions import record
    from shared.actions.kms import restore_members
    from shared.model import Outcome

    missing = finding.detail or Missing(params.role, ())
    members, refused = confirmed_members(finding, params, missing)
    note = "; ".join(refused)
    if not members:
        return record(finding, ctx, Outcome.FAILED, reason=f"not restored: {note}")
    rec = restore_members(finding, ctx, role=missing.role, members=members)
    if note:
        rec.reason = "; ".join(x for x in (rec.reason, f"not restored: {note}") if x)
    return rec


def confirmed_members(finding: Finding[Missing], params: Params, missing: Missing) -> tuple[list[str], list[str]]:
    """(members that may be put back, why each other one may not)."""
    from shared.audit_confirm import Unconfirmed, lookup
    from shared.kms_trust import restorable

    if not finding.event_id:
        return [], ["no audit entry to confirm who removed them (found by a sweep): a human decides"]
    try:
        held = lookup(finding.project, finding.event_id, finding.timestamp)
    except Unconfirmed as exc:
        return [], [f"the audit entry is not confirmed in Cloud Logging ({exc})"]
    again = RULE.evaluate(held, params)
    confirmed = set(again.detail.members) if again is not None and again.detail is not None else set()
    required = {m for pattern, ms in params.required.items() if matches_any(finding.resource, (pattern,)) for m in ms}
    ok, refused = [], []
    for member in missing.members:
        if member not in confirmed:
            refused.append(f"{member}: Cloud Logging's entry does not show it removed")
            continue
        why = restorable(member, trusted_projects=params.trusted_projects or (), required=required)
        if why:
            refused.append(f"{member}: {why}")
        else:
            ok.append(member)
    return ok, refused


RULE = Rule(
    id="kms_agent_binding_removed",
    title="Service agent lost encrypter/decrypter on a CMEK key",
    severity=Severity.CRITICAL,
    kind=POLICY,
    triggers=KMS_SET_IAM,
    action=Action.RESTORE,
    actions=(Action.RESTORE, Action.ALERT),
    permissions={
        "restore": (*KMS_IAM, "logging.logEntries.list"),
    },
    check=check,
    params=Params,
    remediate=remediate,
    why=(
        "The service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on the key to use its data "
        "(https://cloud.google.com/run/docs/securing/using-cmek)."
    ),
)
