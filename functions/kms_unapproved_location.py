"""A key ring created outside the approved locations: the seed requires the key ring's
location to match the (approved-region) resources it encrypts."""

from __future__ import annotations

from dataclasses import dataclass

from shared.model import Action, Finding, Severity
from shared.rules import KMS, Rule, finding
from shared.views.kms import KEY_RING, KeyRingView


@dataclass(frozen=True)
class Params:
    # None: the policy's global `approved_regions`.
    approved_regions: tuple[str, ...] | None = None


def check(view: KeyRingView, params: Params) -> Finding | None:
    """The key ring's location is not approved."""
    approved = params.approved_regions or ()
    if view.location in approved:
        return None
    observed = {"location": view.location, "approved_regions": list(approved)}
    return finding(RULE, view, observed=observed)


RULE = Rule(
    id="kms_unapproved_location",
    title="KMS key ring created outside the approved locations",
    severity=Severity.HIGH,
    kind=KEY_RING,
    triggers=((KMS, "CreateKeyRing"),),
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why=(
        "A key ring cannot be moved after it is created; keep keys in the approved locations, near the data "
        "(https://cloud.google.com/kms/docs/create-key-ring)."
    ),
)
