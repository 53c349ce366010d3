"""An IAM deny policy (`iam.v2.json` GoogleIamV2Policy: rules[].denyRule with deniedPrincipals,
exceptionPrincipals, deniedPermissions, exceptionPermissions, denialCondition), attached to a
project, folder or organization (`policies/ATTACHMENT_POINT/denypolicies/ID`, the attachment
point URL-encoded: `cloudresourcemanager.googleapis.com%2Fprojects%2FP`).

Audit entries: `google.iam.v2.Policies.CreatePolicy|UpdatePolicy` (serviceName iam.googleapis.com,
long-running; the request carries the policy)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from shared.event import AuditEvent, pick_dict, pick_list, pick_str
from shared.views import Kind

_NAME = re.compile(r"^policies/([^/]+)/denypolicies/([^/]+)$")


@dataclass(frozen=True, slots=True)
class DenyRule:
    denied_principals: tuple[str, ...]
    exception_principals: tuple[str, ...]
    denied_permissions: tuple[str, ...]  # SERVICE_FQDN/RESOURCE.VERB, e.g. cloudkms.googleapis.com/cryptoKeyVersions.useToDecrypt
    exception_permissions: tuple[str, ...]
    conditional: bool


@dataclass(frozen=True, slots=True)
class DenyPolicyView:
    name: str  # policies/ATTACHMENT/denypolicies/ID
    attachment: str  # the decoded attachment point, e.g. cloudresourcemanager.googleapis.com/projects/P
    rules: tuple[DenyRule, ...]
    location: str = "global"

    resource_type = "iam.denyPolicy"

    @property
    def project(self) -> str:
        """The project id; for a folder or organization its name (it is in no project)."""
        m = re.search(r"/(projects|folders|organizations)/([^/]+)$", self.attachment)
        if not m:
            return ""
        return m.group(2) if m.group(1) == "projects" else f"{m.group(1)}/{m.group(2)}"


def _strings(obj: Any, key: str) -> tuple[str, ...]:
    return tuple(v for v in pick_list(obj, key) if isinstance(v, str))


def _view(name: str, policy: Any) -> DenyPolicyView | None:
    m = _NAME.match(name)
    if not m:
        return None
    rules = []
    for r in pick_list(policy, "rules"):
        d = pick_dict(r, "denyRule")
        if d:
            rules.append(DenyRule(_strings(d, "deniedPrincipals"), _strings(d, "exceptionPrincipals"),
                                  _strings(d, "deniedPermissions"), _strings(d, "exceptionPermissions"),
                                  bool(pick_dict(d, "denialCondition"))))
    return DenyPolicyView(name, unquote(m.group(1)), tuple(rules))


def locate(event: AuditEvent) -> str | None:
    for candidate in (pick_str(event.request, "policy", "name"), event.resource_name):
        if _NAME.match(candidate):
            return candidate
    name = f"{pick_str(event.request, 'parent')}/{pick_str(event.request, 'policyId')}"
    return name if _NAME.match(name) else None


def from_entry(event: AuditEvent, name: str) -> DenyPolicyView | None:
    policy = pick_dict(event.request, "policy") or event.response
    return _view(name, policy) if policy else None


def from_live(policy: Any) -> DenyPolicyView | None:
    return _view(pick_str(policy, "name"), policy)


def from_asset(record: Any) -> DenyPolicyView | None:
    return None  # deny policies are not Cloud Asset Inventory resources


DENY_POLICY: Kind[DenyPolicyView] = Kind("iam.denyPolicy", (), locate, from_entry, from_live, from_asset)
