"""A CMEK key version scheduled for destruction: once its destroy time passes, the data it
protects is gone for good (seed 001). It can be restored until then."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.model import Action, Finding, Severity
from shared.rules import KMS, Rule, finding
from shared.views.kms import KEY_VERSION, KeyVersionView

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord


@dataclass(frozen=True)
class Params:
    find_dependents: bool = True
    # After restore (which leaves the version DISABLED), enable it again.
    reenable_after_restore: bool = True
    # At most this many Cloud Run services are read when looking for dependents.
    max_services_scanned: int = 500


def check(view: KeyVersionView, params: Params) -> Finding[KeyVersionView] | None:
    """The version is scheduled for destruction (or destroyed)."""
    if view.state not in ("DESTROY_SCHEDULED", "DESTROYED"):
        return None
    observed: dict[str, object] = {"state": view.state, "key": view.key, "version": view.version}
    if view.destroy_time:
        observed["destroy_time"] = view.destroy_time
    return finding(RULE, view, observed=observed, detail=view)


def remediate(finding: Finding[KeyVersionView], params: Params, ctx: ActionContext) -> ActionRecord:
    """Restore the version (→ DISABLED) while its destroy time is ahead, then enable it again
    when `reenable_after_restore`: the audit entry does not record the state it had before.

    IAM permissions: cloudkms.cryptoKeyVersions.get, cloudkms.cryptoKeyVersions.restore,
    cloudkms.cryptoKeyVersions.update.
    """
    from shared.actions.kms import restore_version

    return restore_version(finding, ctx, reenable=params.reenable_after_restore)


def enrich(finding: Finding[KeyVersionView], params: Params, ctx: ActionContext) -> dict[str, Any]:
    """The key, the destroy time and how long is left, and the Cloud Run services that use the key.

    IAM permissions: cloudkms.cryptoKeyVersions.get, run.services.list.
    """
    from shared.actions.kms import version_facts

    destroy_time = finding.detail.destroy_time if finding.detail else ""
    return version_facts(
        finding, ctx, find_dependents=params.find_dependents, max_services=params.max_services_scanned,
        destroy_time=destroy_time,
    )


RULE = Rule(
    id="kms_version_destroy_scheduled",
    title="CMEK key version scheduled for destruction",
    severity=Severity.CRITICAL,
    kind=KEY_VERSION,
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
    check=check,
    params=Params,
    remediate=remediate,
    enrich=enrich,
    why=(
        "Data encrypted with a destroyed key version can never be decrypted; a scheduled destruction can be cancelled by a restore "
        "(https://cloud.google.com/kms/docs/destroy-restore)."
    ),
)
