"""A CMEK key version disabled: every dataset, model and result encrypted with it becomes
unreadable at once. Re-enable it, and page someone."""

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
class Params:
    # Look up the Cloud Run services whose encryption key is this key, for the alert.
    find_dependents: bool = True
    # Key names (patterns) whose versions may be disabled on purpose, e.g. retired keys.
    allow_disable: tuple[str, ...] = ()
    # At most this many Cloud Run services are read when looking for dependents.
    max_services_scanned: int = 500


def check(view: KeyVersionView, params: Params) -> Finding[KeyVersionView] | None:
    """The version is DISABLED, and its key is not one `allow_disable` names."""
    if view.state != "DISABLED" or matches_any(view.key, params.allow_disable):
        return None
    observed = {"state": "DISABLED", "key": view.key, "version": view.version}
    return finding(RULE, view, observed=observed, detail=view)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Enable the version again (update_crypto_key_version, mask `state`) if it is still DISABLED.

    IAM permissions: cloudkms.cryptoKeyVersions.get, cloudkms.cryptoKeyVersions.update.
    """
    from shared.actions.kms import reenable_version

    return reenable_version(finding, ctx)


def enrich(finding: Finding, params: Params, ctx: ActionContext) -> dict[str, Any]:
    """The key, the version's state now, and the Cloud Run services that use the key.

    IAM permissions: cloudkms.cryptoKeyVersions.get, run.services.list.
    """
    from shared.actions.kms import version_facts

    return version_facts(finding, ctx, find_dependents=params.find_dependents, max_services=params.max_services_scanned)


RULE = Rule(
    id="kms_version_disabled",
    title="CMEK key version disabled",
    severity=Severity.CRITICAL,
    kind=KEY_VERSION,
    triggers=((KMS, "UpdateCryptoKeyVersion"),),
    action=Action.RESTORE,
    actions=(Action.RESTORE, Action.ALERT),
    permissions={
        "restore": ("cloudkms.cryptoKeyVersions.get", "cloudkms.cryptoKeyVersions.update", "run.services.list"),
        "alert": ("run.services.list",),
    },
    check=check,
    params=Params,
    remediate=remediate,
    enrich=enrich,
    why=(
        "Data encrypted with a disabled CMEK key cannot be accessed, and new instances of services using it do not start "
        "(https://cloud.google.com/kms/docs/cmek)."
    ),
)
