"""A CMEK key version scheduled for destruction: once its destroy time passes, the data it
protects is gone for good. It can be restored until then."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.model import Action, Finding, Severity
from shared.rules import KMS, Rule, finding, matches_any
from shared.views.kms import KEY_VERSION, KeyVersionView

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord


@dataclass(frozen=True)
class AllowDestroy:
    """Keys whose versions may be destroyed on purpose (crypto-shredding), on someone's authority."""

    keys: tuple[str, ...]  # key name patterns
    owner: str
    reason: str

    def __post_init__(self) -> None:
        if not self.keys or not self.owner.strip() or not self.reason.strip():
            raise ValueError("allow_destroy entries need keys (patterns), an owner and a reason")


@dataclass(frozen=True)
class Params:
    find_dependents: bool = True
    # After restore (which leaves the version DISABLED), enable it again, but only when Cloud
    # Logging shows the version ENABLED just before its destruction was scheduled, and the key is
    # not one kms_version_disabled.allow_disable names.
    reenable_after_restore: bool = True
    # At most this many Cloud Run services are read when looking for dependents.
    max_services_scanned: int = 500
    # Destruction that is meant: versions of these keys are left to be destroyed.
    allow_destroy: tuple[AllowDestroy, ...] = ()
    # kms_version_disabled's allow_disable (None: taken from that rule when the policy loads).
    allow_disable: tuple[str, ...] | None = None


def allowed_destroy(key: str, params: Params) -> AllowDestroy | None:
    return next((a for a in params.allow_destroy if matches_any(key, a.keys)), None)


def check(view: KeyVersionView, params: Params) -> Finding[KeyVersionView] | None:
    """The version is scheduled for destruction (or destroyed)."""
    if view.state not in ("DESTROY_SCHEDULED", "DESTROYED") or allowed_destroy(view.key, params) is not None:
        return None
    observed: dict[str, object] = {"state": view.state, "key": view.key, "version": view.version}
    if view.destroy_time:
        observed["destroy_time"] = view.destroy_time
    return finding(RULE, view, observed=observed, detail=view)


def remediate(finding: Finding[KeyVersionView], params: Params, ctx: ActionContext) -> ActionRecord:
    """Restore the version (→ DISABLED) while it is DESTROY_SCHEDULED, then enable it again only
    when Cloud Logging's history shows it ENABLED just before the destruction was scheduled (the
    entry does not record the state before), `reenable_after_restore` is on and `allow_disable`
    does not cover the key.

    IAM permissions: cloudkms.cryptoKeyVersions.get, cloudkms.cryptoKeyVersions.restore,
    cloudkms.cryptoKeyVersions.update, logging.logEntries.list.
    """
    from shared.actions.kms import restore_version

    reenable, why = _reenable(finding, params, ctx)
    return restore_version(finding, ctx, reenable=reenable, why=why)


def _reenable(finding: Finding[KeyVersionView], params: Params, ctx: ActionContext) -> tuple[bool, str]:
    """Whether to enable the version after restoring it, and why (for the record)."""
    import datetime as dt

    from shared.audit_confirm import Unconfirmed, history
    from shared.kms_trust import state_before_destroy

    key = finding.detail.key if finding.detail else finding.resource.split("/cryptoKeyVersions/")[0]
    if not params.reenable_after_restore:
        return False, "left DISABLED after restore (reenable_after_restore is false)"
    if params.allow_disable and matches_any(key, params.allow_disable):
        return False, "left DISABLED after restore: kms_version_disabled.allow_disable names its key"
    until = dt.datetime.fromtimestamp(ctx.clock(), dt.UTC).isoformat().replace("+00:00", "Z")
    try:
        state, evidence = state_before_destroy(history(finding.project, finding.resource, until=until), finding.resource)
    except Unconfirmed as exc:
        return False, f"left DISABLED after restore: its history cannot be read ({exc})"
    if state != "ENABLED":
        return False, f"left DISABLED after restore: Cloud Logging does not show it ENABLED before ({evidence})"
    return True, f"re-enabled after restore: Cloud Logging shows it ENABLED before its destruction ({evidence})"


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
            "cloudkms.cryptoKeyVersions.update", "run.services.list", "logging.logEntries.list",
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
