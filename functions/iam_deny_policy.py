"""An IAM deny policy that denies the KMS encrypt/decrypt permissions to principals that include
Google's service agents (CMEK services lose their keys, whatever the allow policies say), or
that denies Rampart's own identity a permission its enabled actions need (it can no longer close
doors). Deny policies override every allow policy. Alert only: a deny policy is an organization
owner's instrument."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from shared.model import Action, Finding, Severity
from shared.rules import Rule, finding
from shared.views.denypolicy import DENY_POLICY, DenyPolicyView, DenyRule

IAM = "iam.googleapis.com"
KMS_CRYPTO = (
    "cloudkms.googleapis.com/cryptoKeyVersions.useToEncrypt",
    "cloudkms.googleapis.com/cryptoKeyVersions.useToDecrypt",
    "cloudkms.googleapis.com/cryptoKeyVersions.useToEncryptViaDelegation",
    "cloudkms.googleapis.com/cryptoKeyVersions.useToDecryptViaDelegation",
)


@dataclass(frozen=True)
class Params:
    # Deny-policy principal identifiers that cover Google's service agents (shell patterns).
    agent_principals: tuple[str, ...] = (
        "principalSet://goog/public:all",
        "principal://iam.googleapis.com/projects/-/serviceAccounts/service-*@*.iam.gserviceaccount.com",
        "principalSet://cloudresourcemanager.googleapis.com/*",  # every principal of a project/folder/org
    )
    # Rampart's service accounts, in deny-policy form (shell patterns).
    rampart_principals: tuple[str, ...] = (
        "principal://iam.googleapis.com/projects/-/serviceAccounts/rampart-*@*.iam.gserviceaccount.com",
    )
    # v1 permissions Rampart's actions need; a deny of any of them blinds a rule.
    rampart_permissions: tuple[str, ...] = (
        "run.services.get", "run.services.update", "run.services.getIamPolicy", "run.services.setIamPolicy",
        "cloudkms.cryptoKeyVersions.get", "cloudkms.cryptoKeyVersions.update", "cloudkms.cryptoKeyVersions.restore",
        "cloudkms.cryptoKeys.getIamPolicy", "cloudkms.cryptoKeys.setIamPolicy",
        "cloudfunctions.functions.get", "cloudfunctions.functions.update", "iam.serviceAccounts.actAs",
    )


def deny_form(permission: str) -> str:
    """`run.services.update` → `run.googleapis.com/services.update` (deny policies' permission form)."""
    service, _, rest = permission.partition(".")
    return f"{service}.googleapis.com/{rest}"


def _denies(rule: DenyRule, permissions: tuple[str, ...]) -> list[str]:
    hit = []
    for p in permissions:
        if any(fnmatch.fnmatchcase(p, d) for d in rule.denied_permissions) and not any(
            fnmatch.fnmatchcase(p, e) for e in rule.exception_permissions
        ):
            hit.append(p)
    return hit


def _covers(rule: DenyRule, patterns: tuple[str, ...]) -> list[str]:
    return [p for p in rule.denied_principals if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]


def check(view: DenyPolicyView, params: Params) -> Finding | None:
    """A deny rule covers service agents and KMS encrypt/decrypt, or Rampart and its permissions."""
    problems = []
    rampart_perms = tuple(deny_form(p) for p in params.rampart_permissions)
    for n, rule in enumerate(view.rules):
        agents, crypto = _covers(rule, params.agent_principals), _denies(rule, KMS_CRYPTO)
        excepted = [e for e in rule.exception_principals if fnmatch.fnmatchcase(e, params.agent_principals[1])]
        if agents and crypto and not excepted:
            problems.append({"rule": n, "denies": "kms_to_service_agents", "principals": agents, "permissions": crypto})
        rampart, perms = _covers(rule, (*params.rampart_principals, "principalSet://goog/public:all")), _denies(rule, rampart_perms)
        if rampart and perms:
            problems.append({"rule": n, "denies": "rampart", "principals": rampart, "permissions": perms})
    if not problems:
        return None
    return finding(RULE, view, observed={"attachment": view.attachment, "problems": problems})


RULE = Rule(
    id="iam_deny_policy",
    title="IAM deny policy blocks CMEK service agents or Rampart",
    severity=Severity.CRITICAL,
    kind=DENY_POLICY,
    triggers=((IAM, "google.iam.v2.Policies.CreatePolicy"), (IAM, "google.iam.v2.Policies.UpdatePolicy")),
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why="Deny policies override every allow policy, for the principals and permissions they name (https://cloud.google.com/iam/docs/deny-overview).",
)
