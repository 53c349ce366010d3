"""Every rule Rampart has: the one registry. A rule's id is its module name in this package,
its key in the policy file and its test folder's name (tests/test_rule_naming.py checks all
three); its module's `RULE` carries its check, remediation and enrichment.

Rule modules load on first use: `TRIGGERS` below is a literal table, so deciding that an
event is irrelevant (most of an organization's audit stream) is one dictionary lookup and
imports nothing. A test checks that `RULE_IDS` and `TRIGGERS` equal what the rule modules
declare, and `main.py` makes one entry point per id from `RULE_IDS`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from shared.event import skip_reason

if TYPE_CHECKING:
    from shared.event import AuditEvent
    from shared.rules import Rule

RULE_IDS: tuple[str, ...] = (
    "run_ingress_open",
    "run_public_invoker",
    "run_invoker_iam_disabled",
    "run_default_service_account",
    "run_unapproved_region",
    "run_vpc_egress",
    "run_plaintext_secrets",
    "run_cmek_missing",
    "kms_version_disabled",
    "kms_version_destroy_scheduled",
    "kms_agent_binding_removed",
    "kms_public_member",
    "kms_unapproved_location",
    "kms_rotation",
)

_RUN_WRITE = (
    "run_ingress_open",
    "run_invoker_iam_disabled",
    "run_default_service_account",
    "run_unapproved_region",
    "run_vpc_egress",
    "run_plaintext_secrets",
    "run_cmek_missing",
)
_RUN = "run.googleapis.com"
_KMS = "cloudkms.googleapis.com"

# (serviceName, methodName) → ids of the rules it triggers.
TRIGGERS: dict[tuple[str, str], tuple[str, ...]] = {
    (_RUN, "google.cloud.run.v1.Services.CreateService"): _RUN_WRITE,
    (_RUN, "google.cloud.run.v1.Services.ReplaceService"): _RUN_WRITE,
    (_RUN, "google.cloud.run.v2.Services.CreateService"): _RUN_WRITE,
    (_RUN, "google.cloud.run.v2.Services.UpdateService"): _RUN_WRITE,
    (_RUN, "google.cloud.run.v1.Services.SetIamPolicy"): ("run_public_invoker",),
    (_RUN, "google.cloud.run.v2.Services.SetIamPolicy"): ("run_public_invoker",),
    (_KMS, "UpdateCryptoKeyVersion"): ("kms_version_disabled", "kms_version_destroy_scheduled"),
    (_KMS, "DestroyCryptoKeyVersion"): ("kms_version_destroy_scheduled",),
    (_KMS, "SetIamPolicy"): ("kms_agent_binding_removed", "kms_public_member"),
    (_KMS, "CreateKeyRing"): ("kms_unapproved_location",),
    (_KMS, "CreateCryptoKey"): ("kms_rotation",),
    (_KMS, "UpdateCryptoKey"): ("kms_rotation",),
}

_loaded: dict[str, Rule] = {}


def rule(rule_id: str) -> Rule:
    """The `Rule` of `rule_id`, importing its module on first use."""
    r = _loaded.get(rule_id)
    if r is None:
        if rule_id not in RULE_IDS:
            raise KeyError(f"unknown rule {rule_id!r}; expected one of: {', '.join(RULE_IDS)}")
        r = importlib.import_module(f"functions.{rule_id}").RULE
        _loaded[rule_id] = r
    return r


def all_rules() -> tuple[Rule, ...]:
    return tuple(rule(i) for i in RULE_IDS)


def triage(event: AuditEvent) -> tuple[str, ...] | str:
    """The ids of the rules an entry may concern, or the reason to skip it. Config-free and
    import-free: main.py runs it once per delivery, before the policy is loaded."""
    rule_ids = TRIGGERS.get((event.service, event.method))
    if not rule_ids:
        return "no_rule_for_method"
    return skip_reason(event) or rule_ids


def rules_for_asset(asset_type: str) -> tuple[Rule, ...]:
    """The rules that judge Cloud Asset Inventory records of `asset_type` (imports every rule:
    for a sweep, not for the per-entry path)."""
    return tuple(r for r in all_rules() if asset_type in r.asset_types)
