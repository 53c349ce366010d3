"""The IAM permissions Rampart's deploy role holds, checked against lists written here by hand
from Google's documentation, not derived from the code (issue 18 item 4).

Each permission names the page that says which API call needs it; each action's list follows
from the calls it makes: a Cloud Run revert reads the service, updates it and polls the
operation (and an update re-attaches the service identity, which needs actAs); a Cloud Run IAM
revert reads and sets the service's policy; a quarantine does both; re-enabling a KMS key version
reads and patches it (restoring a scheduled destruction first); a KMS IAM revert reads and sets
the key's or key ring's policy; a KMS alert lists the Cloud Run services that use the key.

The figures come from `python main.py iam-role --format list` (what deploy.sh grants) run
through the CLI entry point.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shared.cli import main as cli
from tests.helpers import ROOT

RUN_V2 = "https://cloud.google.com/run/docs/reference/rest/v2/projects.locations"
KMS_V1 = "https://cloud.google.com/kms/docs/reference/rest/v1/projects.locations.keyRings"
CF_V2 = "https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations"
CRM_V3 = "https://cloud.google.com/resource-manager/reference/rest/v3/projects"
ORGPOLICY_V2 = "https://cloud.google.com/resource-manager/docs/organization-policy/reference/rest/v2/projects.policies"
COMPUTE_V1 = "https://cloud.google.com/compute/docs/reference/rest/v1"
LOGGING_V2 = "https://cloud.google.com/logging/docs/reference/v2/rest/v2/projects.sinks"
ARMOR_IAM = "https://cloud.google.com/armor/docs/configure-security-policies"  # "Set up IAM permissions for custom roles"
DOCS: dict[str, str] = {
    "run.services.get": f"{RUN_V2}.services/get",
    "run.services.update": f"{RUN_V2}.services/patch",
    "run.services.list": f"{RUN_V2}.services/list",
    "run.services.getIamPolicy": f"{RUN_V2}.services/getIamPolicy",
    "run.services.setIamPolicy": f"{RUN_V2}.services/setIamPolicy",
    "run.operations.get": f"{RUN_V2}.operations/get",
    "run.jobs.getIamPolicy": f"{RUN_V2}.jobs/getIamPolicy",
    "run.workerPools.getIamPolicy": f"{RUN_V2}.workerPools/getIamPolicy",
    "iam.serviceAccounts.actAs": "https://cloud.google.com/run/docs/configuring/services/service-identity",
    "cloudkms.cryptoKeyVersions.get": f"{KMS_V1}.cryptoKeys.cryptoKeyVersions/get",
    "cloudkms.cryptoKeyVersions.update": f"{KMS_V1}.cryptoKeys.cryptoKeyVersions/patch",
    "cloudkms.cryptoKeyVersions.restore": f"{KMS_V1}.cryptoKeys.cryptoKeyVersions/restore",
    "cloudkms.cryptoKeys.getIamPolicy": f"{KMS_V1}.cryptoKeys/getIamPolicy",
    "cloudkms.cryptoKeys.setIamPolicy": f"{KMS_V1}.cryptoKeys/setIamPolicy",
    "cloudkms.keyRings.getIamPolicy": f"{KMS_V1}/getIamPolicy",
    "cloudkms.keyRings.setIamPolicy": f"{KMS_V1}/setIamPolicy",
    "run.revisions.get": f"{RUN_V2}.services.revisions/get",
    "logging.logEntries.list": "https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list",
    "cloudfunctions.functions.get": f"{CF_V2}.functions/get",
    "cloudfunctions.functions.update": f"{CF_V2}.functions/patch",
    "cloudfunctions.operations.get": f"{CF_V2}.operations/get",
    "cloudfunctions.functions.getIamPolicy": f"{CF_V2}.functions/getIamPolicy",
    "cloudfunctions.functions.setIamPolicy": f"{CF_V2}.functions/setIamPolicy",
    "resourcemanager.projects.getIamPolicy": f"{CRM_V3}/getIamPolicy",
    "resourcemanager.projects.setIamPolicy": f"{CRM_V3}/setIamPolicy",
    "orgpolicy.policy.get": f"{ORGPOLICY_V2}/get",
    "orgpolicy.policies.create": f"{ORGPOLICY_V2}/create",
    "orgpolicy.policies.update": f"{ORGPOLICY_V2}/patch",
    "compute.backendServices.get": f"{COMPUTE_V1}/backendServices/get",
    "compute.regionBackendServices.get": f"{COMPUTE_V1}/regionBackendServices/get",
    "compute.networkEndpointGroups.get": f"{COMPUTE_V1}/networkEndpointGroups/get",
    "compute.regionNetworkEndpointGroups.get": f"{COMPUTE_V1}/regionNetworkEndpointGroups/get",
    # Cloud Armor's table of IAM permissions and the API methods they allow lists both for
    # BackendServices setSecurityPolicy; the regional ones are its regional counterparts.
    "compute.backendServices.setSecurityPolicy": ARMOR_IAM,
    "compute.securityPolicies.use": ARMOR_IAM,
    "compute.regionBackendServices.setSecurityPolicy": f"{COMPUTE_V1}/regionBackendServices/setSecurityPolicy",
    "compute.regionSecurityPolicies.use": f"{COMPUTE_V1}/regionBackendServices/setSecurityPolicy",
    "logging.sinks.get": f"{LOGGING_V2}/get",
    "logging.sinks.update": f"{LOGGING_V2}/update",
}

RUN_REVERT = ["run.services.get", "run.services.update", "run.operations.get", "iam.serviceAccounts.actAs"]
RUN_IAM_REVERT = ["run.services.getIamPolicy", "run.services.setIamPolicy"]
RUN_QUARANTINE = RUN_REVERT + RUN_IAM_REVERT
KMS_REENABLE = ["cloudkms.cryptoKeyVersions.get", "cloudkms.cryptoKeyVersions.update", "run.services.list"]
# Undoing a scheduled destruction, or putting a removed binding back, is justified only by history:
# the audit entry is first confirmed in Cloud Logging (issue 14 #3/#4), which reads log entries.
CONFIRM = ["logging.logEntries.list"]
KMS_RESTORE = [*KMS_REENABLE, "cloudkms.cryptoKeyVersions.restore", *CONFIRM]
KMS_IAM = ["cloudkms.cryptoKeys.getIamPolicy", "cloudkms.cryptoKeys.setIamPolicy",
           "cloudkms.keyRings.getIamPolicy", "cloudkms.keyRings.setIamPolicy"]
KMS_ALERT = ["run.services.list"]
# A Cloud Run function's setting is fixed through the Functions API (a patch that redeploys the
# function's service as its identity, hence actAs), its IAM through the function's own policy.
FUNCTION_REVERT = ["cloudfunctions.functions.get", "cloudfunctions.functions.update", "cloudfunctions.operations.get",
                   "iam.serviceAccounts.actAs"]
FUNCTION_IAM_REVERT = ["cloudfunctions.functions.getIamPolicy", "cloudfunctions.functions.setIamPolicy"]
PROJECT_IAM = ["resourcemanager.projects.getIamPolicy", "resourcemanager.projects.setIamPolicy"]
# The outsider rule alerts by default, reading each kind's policy to say who holds what.
OUTSIDER_READS = ["cloudfunctions.functions.getIamPolicy", "cloudkms.cryptoKeys.getIamPolicy", "cloudkms.keyRings.getIamPolicy",
                  "resourcemanager.projects.getIamPolicy", "run.jobs.getIamPolicy", "run.services.getIamPolicy",
                  "run.workerPools.getIamPolicy"]
ORG_POLICY_RESTORE = ["orgpolicy.policy.get", "orgpolicy.policies.create", "orgpolicy.policies.update"]
# The Cloud Armor alert says whether the detached backend fronts Cloud Run (backend, then its NEGs).
ARMOR_READS = ["compute.backendServices.get", "compute.regionBackendServices.get", "compute.networkEndpointGroups.get",
               "compute.regionNetworkEndpointGroups.get"]
# Reattaching a detached policy (enforce): re-read the backend, set the policy (which needs `use`
# on the policy), after confirming the detach and reading the backend's history in Cloud Logging.
ARMOR_REVERT = ["compute.backendServices.get", "compute.backendServices.setSecurityPolicy", "compute.securityPolicies.use",
                "compute.regionBackendServices.get", "compute.regionBackendServices.setSecurityPolicy",
                "compute.regionSecurityPolicies.use", *CONFIRM]
SINK_RESTORE = ["logging.sinks.get", "logging.sinks.update"]

# Per rule, under config/policy.yaml (its mode and action there).
SHIPPED: dict[str, list[str]] = {
    "run_ingress_open": RUN_REVERT,
    "run_public_invoker": RUN_IAM_REVERT,
    "run_invoker_iam_disabled": RUN_REVERT,
    "run_default_service_account": RUN_QUARANTINE,
    "run_unapproved_region": RUN_QUARANTINE,
    "run_vpc_egress": [],  # alert
    "run_plaintext_secrets": [],
    "run_cmek_missing": [],
    "kms_version_disabled": KMS_REENABLE,
    "kms_version_destroy_scheduled": KMS_RESTORE,
    "kms_agent_binding_removed": [*KMS_IAM, *CONFIRM],
    "kms_public_member": KMS_IAM,
    "kms_unapproved_location": [],
    "kms_rotation": [],
    "function_ingress_open": FUNCTION_REVERT,
    "function_public_invoker": FUNCTION_IAM_REVERT,
    "function_default_service_account": [],
    "function_unapproved_region": [],
    "function_vpc_egress": [],
    "function_plaintext_secrets": [],
    "function_cmek_missing": [],
    "iam_outsider_member": OUTSIDER_READS,
    "iam_agent_binding_removed": PROJECT_IAM,
    "iam_deny_policy": [],
    "run_workload_noncompliant": [],
    "kms_key_weakened": [],
    "org_policy_relaxed": ORG_POLICY_RESTORE,
    "armor_policy_detached": ARMOR_READS,  # alert; revert is opt-in (action: revert)
    "rampart_tamper": SINK_RESTORE,
    "run_traffic_revision": ["run.revisions.get"],  # the alert reads each serving revision
}


def iam_role(*args: str) -> list[str]:
    out = io.StringIO()
    assert cli(["iam-role", "--format", "list", *args], out=out) == 0
    return [p for p in out.getvalue().split() if p]


def _policy(tmp_path: Path, rules_yaml: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(f"version: 1\ndefault_mode: enforce\nrules:\n{rules_yaml}")
    return str(path)


def test_every_expected_permission_names_its_page() -> None:
    used = {p for perms in SHIPPED.values() for p in perms} | set(RUN_QUARANTINE) | set(KMS_RESTORE) | set(ARMOR_REVERT)
    assert used == set(DOCS), f"no documentation page for {sorted(used - set(DOCS))}; unused: {sorted(set(DOCS) - used)}"


def test_the_deploy_role_for_the_shipped_policy() -> None:
    expected = sorted({p for perms in SHIPPED.values() for p in perms})
    assert iam_role("--policy", str(ROOT / "config" / "policy.yaml")) == expected
    assert "run.services.setIamPolicy" in expected and "cloudkms.cryptoKeyVersions.restore" in expected


@pytest.mark.parametrize("rule", sorted(SHIPPED))
def test_each_rule_needs_what_its_shipped_action_calls(rule: str) -> None:
    assert iam_role(rule, "--policy", str(ROOT / "config" / "policy.yaml")) == sorted(SHIPPED[rule])


@pytest.mark.parametrize("rule", ["run_ingress_open", "run_public_invoker", "run_invoker_iam_disabled", "run_vpc_egress",
                                  "run_plaintext_secrets", "run_cmek_missing"])
def test_quarantine_needs_the_update_and_the_iam_calls(tmp_path: Path, rule: str) -> None:
    policy = _policy(tmp_path, f"  {rule}: {{mode: enforce, action: quarantine}}\n")
    assert iam_role(rule, "--policy", policy) == sorted(RUN_QUARANTINE)


def test_armor_revert_needs_set_security_policy_use_and_the_log_read(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "  armor_policy_detached: {mode: enforce, action: revert}\n")
    assert iam_role("armor_policy_detached", "--policy", policy) == sorted({*ARMOR_REVERT, *ARMOR_READS})
    # Its default action is alert: enforce alone, or a dry-run stage, grants no Cloud Armor write.
    for mode in ("enforce", "dry-run"):
        policy = _policy(tmp_path, f"  armor_policy_detached: {{mode: {mode}}}\n")
        assert iam_role("armor_policy_detached", "--policy", policy) == sorted(ARMOR_READS)


def test_alert_mode_grants_no_write(tmp_path: Path) -> None:
    """Alert mode changes nothing, so its role holds no permission that writes. (It does hold some
    reads an alert never makes, e.g. run.operations.get: noted in issue 18's report, not fixed here.)"""
    policy = _policy(tmp_path, "".join(f"  {r}: {{mode: alert}}\n" for r in SHIPPED))
    writes = {"run.services.update", "run.services.setIamPolicy", "cloudkms.cryptoKeyVersions.update",
              "cloudkms.cryptoKeyVersions.restore", "cloudkms.cryptoKeys.setIamPolicy", "cloudkms.keyRings.setIamPolicy",
              "iam.serviceAccounts.actAs", "cloudfunctions.functions.update", "cloudfunctions.functions.setIamPolicy",
              "resourcemanager.projects.setIamPolicy", "orgpolicy.policies.create", "orgpolicy.policies.update",
              "logging.sinks.update", "compute.backendServices.setSecurityPolicy", "compute.securityPolicies.use",
              "compute.regionBackendServices.setSecurityPolicy", "compute.regionSecurityPolicies.use"}
    granted = iam_role("--policy", policy)
    assert not writes & set(granted), sorted(writes & set(granted))
    assert set(KMS_ALERT) <= set(iam_role("kms_version_destroy_scheduled", "--policy", policy))


def test_dry_run_needs_the_reads_of_its_action_only(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "  run_public_invoker: {mode: dry-run}\n  kms_public_member: {mode: dry-run}\n")
    assert "run.services.getIamPolicy" in iam_role("run_public_invoker", "--policy", policy)
    assert "cloudkms.cryptoKeys.getIamPolicy" in iam_role("kms_public_member", "--policy", policy)


def test_every_rule_has_a_hand_written_list() -> None:
    """A new rule gets its expected permissions written here, from the docs, before it ships."""
    from functions import RULE_IDS

    assert set(SHIPPED) == set(RULE_IDS), f"no list for {sorted(set(RULE_IDS) - set(SHIPPED))}"
