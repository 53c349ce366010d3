"""A key ring created outside the approved locations: the seed requires the key ring's
location to match the (approved-region) resources it encrypts."""

from __future__ import annotations

from dataclasses import dataclass

from shared.event import AuditEvent, pick_str
from shared.model import Action, Finding, Severity
from shared.rules import KMS, Rule, finding, kms_parts


@dataclass(frozen=True)
class Params:
    # None: the policy's global `approved_regions`.
    approved_regions: tuple[str, ...] | None = None


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    name = event.resource_name
    if not kms_parts(name):
        parent, ring = pick_str(event.request, "parent"), pick_str(event.request, "keyRingId")
        name = f"{parent}/keyRings/{ring}" if parent and ring else name
    parts = kms_parts(name)
    if parts is None:
        return None
    approved = params.approved_regions or ()
    if parts["location"] in approved:
        return None
    observed = {"location": parts["location"], "approved_regions": list(approved)}
    return finding(RULE, event, resource=name, location=parts["location"], project=parts["project"], observed=observed)


RULE = Rule(
    id="kms_unapproved_location",
    title="KMS key ring created outside the approved locations",
    severity=Severity.HIGH,
    resource_type="kms.keyRing",
    triggers=((KMS, "CreateKeyRing"),),
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    evaluate=evaluate,
    params=Params,
    why=(
        "A key ring cannot be moved after it is created; keep keys in the approved locations, near the data "
        "(https://cloud.google.com/kms/docs/create-key-ring)."
    ),
)
