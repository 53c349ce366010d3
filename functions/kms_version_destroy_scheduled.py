"""A CMEK key version scheduled for destruction: once its destroy time passes, the data it
protects is gone for good (seed 001). It can be restored until then."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.event import AuditEvent, pick, pick_str
from shared.model import Action, Finding, Severity
from shared.rules import KMS, Rule, finding, kms_parts

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord

_DANGEROUS = ("DESTROY_SCHEDULED", "DESTROYED", 3, 4)


@dataclass(frozen=True)
class Params:
    find_dependents: bool = True
    # After restore (which leaves the version DISABLED), enable it again.
    reenable_after_restore: bool = True
    # At most this many Cloud Run services are read when looking for dependents.
    max_services_scanned: int = 500


def evaluate(event: AuditEvent, params: Params) -> Finding | None:
    if event.method == "UpdateCryptoKeyVersion" and pick(event.request, "cryptoKeyVersion", "state") not in _DANGEROUS:
        return None
    name = pick_str(event.request, "name") or pick_str(event.request, "cryptoKeyVersion", "name") or event.resource_name
    parts = kms_parts(name)
    if parts is None or not parts["version"]:
        return None
    observed: dict[str, object] = {"state": "DESTROY_SCHEDULED", "key": name.rsplit("/cryptoKeyVersions/", 1)[0], "version": parts["version"]}
    destroy_time = pick_str(event.response, "destroyTime")
    if destroy_time:
        observed["destroy_time"] = destroy_time
    return finding(RULE, event, resource=name, location=parts["location"], project=parts["project"], observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Restore the version (→ DISABLED) while its destroy time is ahead, then enable it again
    when `reenable_after_restore`: the audit entry does not record the state it had before.

    IAM permissions: cloudkms.cryptoKeyVersions.get, cloudkms.cryptoKeyVersions.restore,
    cloudkms.cryptoKeyVersions.update.
    """
    from shared.kms_actions import restore_version

    return restore_version(finding, ctx, reenable=params.reenable_after_restore)


def enrich(finding: Finding, params: Params, ctx: ActionContext) -> dict[str, Any]:
    """The key, the destroy time and how long is left, and the Cloud Run services that use the key.

    IAM permissions: cloudkms.cryptoKeyVersions.get, run.services.list.
    """
    from shared.kms_actions import version_facts

    return version_facts(finding, ctx, find_dependents=params.find_dependents, max_services=params.max_services_scanned)


RULE = Rule(
    id="kms_version_destroy_scheduled",
    title="CMEK key version scheduled for destruction",
    severity=Severity.CRITICAL,
    resource_type="kms.cryptoKeyVersion",
    triggers=((KMS, "DestroyCryptoKeyVersion"), (KMS, "UpdateCryptoKeyVersion")),
    action=Action.RESTORE,
    actions=(Action.RESTORE, Action.ALERT),
    permissions={
        "restore": (
            "cloudkms.cryptoKeyVersions.get", "cloudkms.cryptoKeyVersions.restore",
            "cloudkms.cryptoKeyVersions.update", "run.services.list",
        ),
        "alert": ("run.services.list",),
    },
    evaluate=evaluate,
    params=Params,
    why=(
        "Data encrypted with a destroyed key version can never be decrypted; a scheduled destruction can be cancelled by a restore "
        "(https://cloud.google.com/kms/docs/destroy-restore)."
    ),
)
