"""Automatic rotation removed from a CMEK key, or its period lengthened past the policy's
maximum: a key that never rotates concentrates every byte ever written under one version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.model import Action, Finding, Severity
from shared.rules import KMS, Rule, finding
from shared.views.kms import KEY, KeyView

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    max_rotation_days: int = 90


def check(view: KeyView, params: Params) -> Finding | None:
    """A symmetric key's rotation period is missing or over `max_rotation_days` (judged only
    where the source states the period: an update whose mask leaves it out says nothing)."""
    if "purpose" in view.known and view.purpose != "ENCRYPT_DECRYPT":
        return None  # only symmetric keys rotate automatically
    if "rotation_period" not in view.known:
        return None
    seconds = view.rotation_period_seconds
    if seconds is not None and seconds <= params.max_rotation_days * 86400:
        return None
    observed = {
        "rotation_period_days": round(seconds / 86400, 1) if seconds is not None else None,
        "max_rotation_days": params.max_rotation_days,
    }
    return finding(RULE, view, observed=observed)


def enrich(finding: Finding, params: Params, ctx: ActionContext) -> dict[str, Any]:
    """The key's live rotation period and next rotation time (one read; failures reported).

    IAM permissions: cloudkms.cryptoKeys.get.
    """
    from shared.actions.kms import key_rotation_facts

    return key_rotation_facts(finding.resource, ctx)


RULE = Rule(
    id="kms_rotation",
    title="CMEK key rotation removed or too long",
    severity=Severity.MEDIUM,
    kind=KEY,
    triggers=((KMS, "CreateCryptoKey"), (KMS, "UpdateCryptoKey")),
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    enrich=enrich,
    why=(
        "Rotating symmetric keys on a schedule limits how much data one key version protects "
        "(https://cloud.google.com/kms/docs/key-rotation)."
    ),
)
