"""The encrypter/decrypter binding of a protected member (a service agent) removed from a
CMEK key or key ring: the service can no longer read its own data (seed 001, step 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.event import AuditEvent
from shared.model import Action, Finding, Severity
from shared.permissions import KMS_IAM
from shared.rules import (
    ENCRYPTER_DECRYPTER,
    KMS_SET_IAM,
    Rule,
    finding,
    iam_delta,
    iam_resource,
    kms_parts,
    kms_type,
    matches_any,
)

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord


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


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    resource = iam_resource(event)
    parts = kms_parts(resource)
    if parts is None or parts["version"]:
        return None
    delta = iam_delta(event)
    removed = {m for r, m in delta.removed if r == params.role and matches_any(m, params.protected_members)}
    present = {m for r, m in delta.policy if r == params.role}
    for pattern, members in params.required.items():
        if matches_any(resource, (pattern,)) and (delta.policy or not delta.from_delta):
            removed.update(m for m in members if m not in present)
    if delta.from_delta:
        removed -= {m for r, m in delta.added if r == params.role}
    if not removed:
        return None
    observed = {"role": params.role, "removed_members": sorted(removed), "from_delta": delta.from_delta}
    rule = RULE
    return finding(
        rule, event, resource=resource, location=parts["location"], project=parts["project"], observed=observed,
        title=f"{rule.title} ({kms_type(parts).split('.')[1]})", resource_type=kms_type(parts),
    )


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Put the removed members back in the role's unconditional binding on the key or key ring,
    keeping every other binding, condition and the policy version (etag-guarded).

    IAM permissions: cloudkms.cryptoKeys.getIamPolicy/.setIamPolicy on a key,
    cloudkms.keyRings.getIamPolicy/.setIamPolicy on a key ring.
    """
    from shared.kms_actions import restore_members

    role = str(finding.observed.get("role") or params.role)
    return restore_members(finding, ctx, role=role, members=list(finding.observed.get("removed_members", [])))


RULE = Rule(
    id="kms_agent_binding_removed",
    title="Service agent lost encrypter/decrypter on a CMEK key",
    severity=Severity.CRITICAL,
    resource_type="kms.cryptoKey",
    triggers=KMS_SET_IAM,
    action=Action.RESTORE,
    actions=(Action.RESTORE, Action.ALERT),
    permissions={
        "restore": KMS_IAM,
    },
    evaluate=evaluate,
    params=Params,
    why=(
        "The service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on the key to use its data "
        "(https://cloud.google.com/run/docs/securing/using-cmek)."
    ),
)
