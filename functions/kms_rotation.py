"""Automatic rotation removed from a CMEK key, or its period lengthened past the policy's
maximum: a key that never rotates concentrates every byte ever written under one version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.event import AuditEvent, pick, pick_dict, pick_str
from shared.model import Action, Finding, Severity
from shared.rules import KMS, Rule, duration_seconds, finding, kms_parts, update_mask_text

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    max_rotation_days: int = 90


def _mask(event: AuditEvent) -> set[str]:
    mask = update_mask_text(event.request)
    return {m.strip() for m in mask.split(",")} if mask else set()


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    key = pick_dict(event.request, "cryptoKey")
    if event.method == "CreateCryptoKey":
        purpose = pick(key, "purpose")
        if isinstance(purpose, int) and not isinstance(purpose, bool):  # the enum as a number
            purpose = "ENCRYPT_DECRYPT" if purpose == 1 else "other"
        if isinstance(purpose, str) and purpose not in ("", "ENCRYPT_DECRYPT", "1"):
            return None  # only symmetric keys rotate automatically
        name = f"{pick_str(event.request, 'parent')}/cryptoKeys/{pick_str(event.request, 'cryptoKeyId')}"
    else:
        mask = _mask(event)
        if mask and not mask & {"rotationPeriod", "rotation_period", "rotation_schedule.rotation_period"}:
            return None
        name = pick_str(key, "name") or event.resource_name
    parts = kms_parts(name)
    if parts is None:
        return None
    seconds = duration_seconds(pick(key, "rotationPeriod"))
    limit = params.max_rotation_days * 86400
    if seconds is not None and seconds <= limit:
        return None
    observed = {
        "rotation_period_days": round(seconds / 86400, 1) if seconds is not None else None,
        "max_rotation_days": params.max_rotation_days,
    }
    return finding(RULE, event, resource=name, location=parts["location"], project=parts["project"], observed=observed)


def enrich(finding: Finding, params: Params, ctx: ActionContext) -> dict[str, Any]:
    """The key's live rotation period and next rotation time (one read; failures reported).

    IAM permissions: cloudkms.cryptoKeys.get.
    """
    from shared.kms_actions import key_rotation_facts

    return key_rotation_facts(finding.resource, ctx)


RULE = Rule(
    id="kms_rotation",
    title="CMEK key rotation removed or too long",
    severity=Severity.MEDIUM,
    resource_type="kms.cryptoKey",
    triggers=((KMS, "CreateCryptoKey"), (KMS, "UpdateCryptoKey")),
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    evaluate=evaluate,
    params=Params,
    why=(
        "Rotating symmetric keys on a schedule limits how much data one key version protects "
        "(https://cloud.google.com/kms/docs/key-rotation)."
    ),
)
