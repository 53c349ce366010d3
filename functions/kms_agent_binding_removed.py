"""The encrypter/decrypter binding of a protected member (a service agent) removed from a
CMEK key or key ring: the service can no longer read its own data (seed 001, step 3)."""

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


@dataclass(frozen=True)
class Params:
    role: str = ENCRYPTER_DECRYPTER
    # Members whose removal is a violation (shell patterns): Google service agents by default.
    protected_members: tuple[str, ...] = (
        "serviceAccount:service-*@gcp-sa-*.iam.gserviceaccount.com",
        "serviceAccount:service-*@compute-system.iam.gserviceaccount.com",
        "serviceAccount:service-*@gs-project-accounts.iam.gserviceaccount.com",
        "serviceAccount:service-*@serverless-robot-prod.iam.gserviceaccount.com",  # Cloud Run's agent
    )
    # Key or key ring name pattern → members that must always hold the role there. Checked
    # against the new policy when the entry carries no policyDelta.
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)


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
    """Put the removed members back in the role's unconditional binding on the key or key ring,
    keeping every other binding, condition and the policy version (etag-guarded).

    IAM permissions: cloudkms.cryptoKeys.getIamPolicy/.setIamPolicy on a key,
    cloudkms.keyRings.getIamPolicy/.setIamPolicy on a key ring.
    """
    from shared.actions.kms import restore_members

    missing = finding.detail or Missing(params.role, ())
    return restore_members(finding, ctx, role=missing.role, members=list(missing.members))


RULE = Rule(
    id="kms_agent_binding_removed",
    title="Service agent lost encrypter/decrypter on a CMEK key",
    severity=Severity.CRITICAL,
    kind=POLICY,
    triggers=KMS_SET_IAM,
    action=Action.RESTORE,
    actions=(Action.RESTORE, Action.ALERT),
    permissions={
        "restore": KMS_IAM,
    },
    check=check,
    params=Params,
    remediate=remediate,
    why=(
        "The service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on the key to use its data "
        "(https://cloud.google.com/run/docs/securing/using-cmek)."
    ),
)
