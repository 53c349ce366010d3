"""A CMEK key version disabled: every dataset, model and result encrypted with it becomes
unreadable at once (seed 001). Re-enable it, and page someone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.event import AuditEvent, pick, pick_str
from shared.model import Action, Finding, Severity
from shared.rules import KMS, Rule, finding, kms_parts, matches_any, update_mask_text

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord

_DISABLED = ("DISABLED", 2)


@dataclass(frozen=True)
class Params:
    # Look up the Cloud Run services whose encryption key is this key, for the alert.
    find_dependents: bool = True
    # Key names (patterns) whose versions may be disabled on purpose, e.g. retired keys.
    allow_disable: tuple[str, ...] = ()
    # At most this many Cloud Run services are read when looking for dependents.
    max_services_scanned: int = 500


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    state = pick(event.request, "cryptoKeyVersion", "state")
    if state not in _DISABLED:
        return None
    mask = update_mask_text(event.request)
    if mask and "state" not in mask.split(","):
        return None  # state in the body but not in the mask: nothing changed it
    name = pick_str(event.request, "cryptoKeyVersion", "name") or event.resource_name
    parts = kms_parts(name)
    if parts is None or not parts["version"]:
        return None
    key = name.rsplit("/cryptoKeyVersions/", 1)[0]
    if matches_any(key, params.allow_disable):
        return None
    observed = {"state": "DISABLED", "key": key, "version": parts["version"]}
    return finding(RULE, event, resource=name, location=parts["location"], project=parts["project"], observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Enable the version again (update_crypto_key_version, mask `state`) if it is still DISABLED.

    IAM permissions: cloudkms.cryptoKeyVersions.get, cloudkms.cryptoKeyVersions.update.
    """
    from shared.kms_actions import reenable_version

    return reenable_version(finding, ctx)


def enrich(finding: Finding, params: Params, ctx: ActionContext) -> dict[str, Any]:
    """The key, the version's state now, and the Cloud Run services that use the key.

    IAM permissions: cloudkms.cryptoKeyVersions.get, run.services.list.
    """
    from shared.kms_actions import version_facts

    return version_facts(finding, ctx, find_dependents=params.find_dependents, max_services=params.max_services_scanned)


RULE = Rule(
    id="kms_version_disabled",
    title="CMEK key version disabled",
    severity=Severity.CRITICAL,
    resource_type="kms.cryptoKeyVersion",
    triggers=((KMS, "UpdateCryptoKeyVersion"),),
    action=Action.RESTORE,
    actions=(Action.RESTORE, Action.ALERT),
    permissions={
        "restore": ("cloudkms.cryptoKeyVersions.get", "cloudkms.cryptoKeyVersions.update", "run.services.list"),
        "alert": ("run.services.list",),
    },
    evaluate=evaluate,
    params=Params,
    why=(
        "Data encrypted with a disabled CMEK key cannot be accessed, and new instances of services using it do not start "
        "(https://cloud.google.com/kms/docs/cmek)."
    ),
)
