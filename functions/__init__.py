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
    "function_ingress_open",
    "function_public_invoker",
    "function_default_service_account",
    "function_unapproved_region",
    "function_vpc_egress",
    "function_plaintext_secrets",
    "function_cmek_missing",
    "iam_outsider_member",
    "iam_agent_binding_removed",
    "iam_deny_policy",
    "run_workload_noncompliant",
    "kms_key_weakened",
    "org_policy_relaxed",
    "armor_policy_detached",
    "rampart_tamper",
    "run_traffic_revision",
)

_RUN_WRITE = (
    "run_ingress_open",
    "run_invoker_iam_disabled",
    "run_default_service_account",
    "run_unapproved_region",
    "run_vpc_egress",
    "run_plaintext_secrets",
    "run_cmek_missing",
    "run_traffic_revision",
)
_FUNCTION_WRITE = (
    "function_ingress_open",
    "function_default_service_account",
    "function_unapproved_region",
    "function_vpc_egress",
    "function_plaintext_secrets",
    "function_cmek_missing",
)
_RUN = "run.googleapis.com"
_KMS = "cloudkms.googleapis.com"
_FN = "cloudfunctions.googleapis.com"
_CRM = "cloudresourcemanager.googleapis.com"
_IAM = "iam.googleapis.com"
_ORGPOLICY = "orgpolicy.googleapis.com"
_COMPUTE = "compute.googleapis.com"
_LOGGING = "logging.googleapis.com"
_PUBSUB = "pubsub.googleapis.com"

# (serviceName, methodName) → ids of the rules it triggers (tests/test_rule_naming.py checks it equals
# what the rule modules declare).
TRIGGERS: dict[tuple[str, str], tuple[str, ...]] = {
    (_RUN, "google.cloud.run.v1.Services.CreateService"): _RUN_WRITE,
    (_RUN, "google.cloud.run.v1.Services.ReplaceService"): (*_RUN_WRITE, "rampart_tamper"),
    (_RUN, "google.cloud.run.v2.Services.CreateService"): _RUN_WRITE,
    (_RUN, "google.cloud.run.v2.Services.UpdateService"): (*_RUN_WRITE, "rampart_tamper"),
    (_RUN, "google.cloud.run.v1.Services.SetIamPolicy"): ("run_public_invoker", "iam_outsider_member", "rampart_tamper"),
    (_RUN, "google.cloud.run.v2.Services.SetIamPolicy"): ("run_public_invoker", "iam_outsider_member", "rampart_tamper"),
    (_KMS, "UpdateCryptoKeyVersion"): ("kms_version_disabled", "kms_version_destroy_scheduled"),
    (_KMS, "DestroyCryptoKeyVersion"): ("kms_version_destroy_scheduled",),
    (_KMS, "SetIamPolicy"): ("kms_agent_binding_removed", "kms_public_member", "iam_outsider_member"),
    (_KMS, "CreateKeyRing"): ("kms_unapproved_location",),
    (_KMS, "CreateCryptoKey"): ("kms_rotation", "kms_key_weakened"),
    (_KMS, "UpdateCryptoKey"): ("kms_rotation", "kms_key_weakened"),
    (_FN, "google.cloud.functions.v2.FunctionService.CreateFunction"): _FUNCTION_WRITE,
    (_FN, "google.cloud.functions.v2.FunctionService.UpdateFunction"): (*_FUNCTION_WRITE, "rampart_tamper"),
    (_FN, "google.cloud.functions.v2.FunctionService.SetIamPolicy"): ("function_public_invoker", "iam_outsider_member", "rampart_tamper"),
    (_FN, "google.cloud.functions.v1.CloudFunctionsService.SetIamPolicy"): ("function_public_invoker", "iam_outsider_member"),
    (_RUN, "google.cloud.run.v1.Jobs.SetIamPolicy"): ("iam_outsider_member",),
    (_RUN, "google.cloud.run.v2.Jobs.SetIamPolicy"): ("iam_outsider_member",),
    (_RUN, "google.cloud.run.v2.WorkerPools.SetIamPolicy"): ("iam_outsider_member",),
    (_CRM, "SetIamPolicy"): ("iam_outsider_member", "iam_agent_binding_removed", "rampart_tamper"),
    (_CRM, "google.cloud.resourcemanager.v3.Projects.SetIamPolicy"): ("iam_outsider_member", "iam_agent_binding_removed", "rampart_tamper"),
    (_CRM, "google.cloud.resourcemanager.v3.Folders.SetIamPolicy"): ("iam_outsider_member", "iam_agent_binding_removed", "rampart_tamper"),
    (_CRM, "google.cloud.resourcemanager.v3.Organizations.SetIamPolicy"): ("iam_outsider_member", "iam_agent_binding_removed", "rampart_tamper"),
    (_IAM, "google.iam.v2.Policies.CreatePolicy"): ("iam_deny_policy",),
    (_IAM, "google.iam.v2.Policies.UpdatePolicy"): ("iam_deny_policy",),
    (_RUN, "google.cloud.run.v1.Jobs.CreateJob"): ("run_workload_noncompliant",),
    (_RUN, "google.cloud.run.v1.Jobs.ReplaceJob"): ("run_workload_noncompliant",),
    (_RUN, "google.cloud.run.v2.Jobs.CreateJob"): ("run_workload_noncompliant",),
    (_RUN, "google.cloud.run.v2.Jobs.UpdateJob"): ("run_workload_noncompliant",),
    (_RUN, "google.cloud.run.v2.WorkerPools.CreateWorkerPool"): ("run_workload_noncompliant",),
    (_RUN, "google.cloud.run.v2.WorkerPools.UpdateWorkerPool"): ("run_workload_noncompliant",),
    (_KMS, "UpdateCryptoKeyPrimaryVersion"): ("kms_key_weakened",),
    (_ORGPOLICY, "google.cloud.orgpolicy.v2.OrgPolicy.CreatePolicy"): ("org_policy_relaxed",),
    (_ORGPOLICY, "google.cloud.orgpolicy.v2.OrgPolicy.UpdatePolicy"): ("org_policy_relaxed",),
    (_ORGPOLICY, "google.cloud.orgpolicy.v2.OrgPolicy.DeletePolicy"): ("org_policy_relaxed",),
    (_CRM, "SetOrgPolicy"): ("org_policy_relaxed",),
    (_CRM, "ClearOrgPolicy"): ("org_policy_relaxed",),
    (_COMPUTE, "v1.compute.backendServices.setSecurityPolicy"): ("armor_policy_detached",),
    (_COMPUTE, "v1.compute.regionBackendServices.setSecurityPolicy"): ("armor_policy_detached",),
    (_COMPUTE, "v1.compute.securityPolicies.removeRule"): ("armor_policy_detached",),
    (_COMPUTE, "v1.compute.securityPolicies.patchRule"): ("armor_policy_detached",),
    (_COMPUTE, "v1.compute.securityPolicies.addRule"): ("armor_policy_detached",),
    (_COMPUTE, "v1.compute.securityPolicies.patch"): ("armor_policy_detached",),
    (_LOGGING, "google.logging.v2.ConfigServiceV2.UpdateSink"): ("rampart_tamper",),
    (_LOGGING, "google.logging.v2.ConfigServiceV2.DeleteSink"): ("rampart_tamper",),
    (_PUBSUB, "google.pubsub.v1.Publisher.UpdateTopic"): ("rampart_tamper",),
    (_PUBSUB, "google.pubsub.v1.Publisher.DeleteTopic"): ("rampart_tamper",),
    (_PUBSUB, "google.pubsub.v1.Subscriber.UpdateSubscription"): ("rampart_tamper",),
    (_PUBSUB, "google.pubsub.v1.Subscriber.DeleteSubscription"): ("rampart_tamper",),
    (_PUBSUB, "google.pubsub.v1.Subscriber.ModifyPushConfig"): ("rampart_tamper",),
    (_PUBSUB, "google.pubsub.v1.Subscriber.DetachSubscription"): ("rampart_tamper",),
    (_PUBSUB, "google.iam.v1.IAMPolicy.SetIamPolicy"): ("rampart_tamper",),
    (_FN, "google.cloud.functions.v2.FunctionService.DeleteFunction"): ("rampart_tamper",),
    (_RUN, "google.cloud.run.v2.Services.DeleteService"): ("rampart_tamper",),
    (_RUN, "google.cloud.run.v1.Services.DeleteService"): ("rampart_tamper",),
    (_IAM, "google.iam.admin.v1.DeleteServiceAccount"): ("rampart_tamper",),
    (_IAM, "google.iam.admin.v1.DisableServiceAccount"): ("rampart_tamper",),
    (_IAM, "google.iam.admin.v1.CreateServiceAccountKey"): ("rampart_tamper",),
    (_IAM, "google.iam.admin.v1.SetIAMPolicy"): ("rampart_tamper",),
    (_IAM, "google.iam.admin.v1.UpdateRole"): ("rampart_tamper",),
    (_IAM, "google.iam.admin.v1.DeleteRole"): ("rampart_tamper",),
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
