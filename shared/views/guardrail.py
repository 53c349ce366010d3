"""What a write did to an organization policy on one constraint (a guardrail): the v2 shape
(`orgpolicy.v2.json` GoogleCloudOrgpolicyV2Policy: spec.rules[] with enforce / allowAll /
denyAll / values), the v1 shape (`cloudresourcemanager.v1.json` OrgPolicy: booleanPolicy,
listPolicy, restoreDefault), or its absence after a DeletePolicy / ClearOrgPolicy.

Audit entries: orgpolicy v2 `google.cloud.orgpolicy.v2.OrgPolicy.CreatePolicy|UpdatePolicy|
DeletePolicy` (serviceName orgpolicy.googleapis.com), and v1 `SetOrgPolicy|ClearOrgPolicy`
(serviceName cloudresourcemanager.googleapis.com, resourceName the project/folder/org).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind

ORGPOLICY = "orgpolicy.googleapis.com"
CRM = "cloudresourcemanager.googleapis.com"
_V2_NAME = re.compile(r"^((?:projects|folders|organizations)/[^/]+)/policies/([^/]+)$")
_PARENT = re.compile(r"^(?:projects|folders|organizations)/[^/]+$")


@dataclass(frozen=True, slots=True)
class GuardrailView:
    """What a constraint's policy now does at `parent`. `deleted`: no policy of its own any more
    (it inherits, or the constraint's default applies)."""

    name: str  # PARENT/policies/CONSTRAINT (the v2 form, also for v1 entries)
    parent: str  # projects/P | folders/F | organizations/O
    constraint: str  # e.g. gcp.restrictNonCmekServices (no "constraints/" prefix)
    deleted: bool
    enforce: bool | None  # boolean constraints: True / False; None when the policy does not say
    allow_all: bool
    deny_all: bool
    allowed_values: tuple[str, ...]
    denied_values: tuple[str, ...]
    reset: bool  # the spec resets to the constraint's default
    inherit_from_parent: bool | None
    conditional: bool  # some rule has a condition: it holds only sometimes
    location: str = "global"

    resource_type = "orgpolicy.policy"

    @property
    def project(self) -> str:
        """The project id; for a folder or organization its name (it is in no project)."""
        return self.parent.split("/", 1)[1] if self.parent.startswith("projects/") else self.parent


def _strip(constraint: str) -> str:
    return constraint.removeprefix("constraints/")


def _v2(name: str, policy: Mapping[str, Any]) -> GuardrailView | None:
    m = _V2_NAME.match(name)
    if not m:
        return None
    spec = pick_dict(policy, "spec")
    rules = [r for r in pick_list(spec, "rules") if isinstance(r, Mapping)]
    enforce = [pick(r, "enforce") for r in rules if isinstance(pick(r, "enforce"), bool)]
    allowed = tuple(v for r in rules for v in pick_list(r, "values", "allowedValues") if isinstance(v, str))
    denied = tuple(v for r in rules for v in pick_list(r, "values", "deniedValues") if isinstance(v, str))
    inherit = pick(spec, "inheritFromParent")
    return GuardrailView(
        name=name, parent=m.group(1), constraint=m.group(2), deleted=False,
        enforce=all(enforce) if enforce else None,
        allow_all=any(pick(r, "allowAll") is True for r in rules),
        deny_all=any(pick(r, "denyAll") is True for r in rules),
        allowed_values=allowed, denied_values=denied, reset=pick(spec, "reset") is True,
        inherit_from_parent=inherit if isinstance(inherit, bool) else None,
        conditional=any(pick_dict(r, "condition") for r in rules),
    )


def _v1(parent: str, policy: Mapping[str, Any]) -> GuardrailView | None:
    constraint = _strip(pick_str(policy, "constraint"))
    if not _PARENT.match(parent) or not constraint:
        return None
    boolean = pick(policy, "booleanPolicy")
    lst = pick_dict(policy, "listPolicy")
    all_values = pick_str(lst, "allValues")
    inherit = pick(lst, "inheritFromParent")
    return GuardrailView(
        name=f"{parent}/policies/{constraint}", parent=parent, constraint=constraint, deleted=False,
        enforce=(pick(boolean, "enforced") is True) if isinstance(boolean, Mapping) else None,
        allow_all=all_values == "ALLOW", deny_all=all_values == "DENY",
        allowed_values=tuple(v for v in pick_list(lst, "allowedValues") if isinstance(v, str)),
        denied_values=tuple(v for v in pick_list(lst, "deniedValues") if isinstance(v, str)),
        reset=pick(policy, "restoreDefault") is not None,
        inherit_from_parent=inherit if isinstance(inherit, bool) else None,
        conditional=False,
    )


def _deleted(name: str) -> GuardrailView | None:
    m = _V2_NAME.match(name)
    if not m:
        return None
    return GuardrailView(name, m.group(1), m.group(2), True, None, False, False, (), (), False, None, False)


# ---------------------------------------------------------------------------
# Adapters.


def locate(event: AuditEvent) -> str | None:
    if event.service == CRM:  # v1 SetOrgPolicy / ClearOrgPolicy
        parent = pick_str(event.request, "resource") or event.resource_name
        constraint = _strip(pick_str(event.request, "policy", "constraint") or pick_str(event.request, "constraint"))
        name = f"{parent}/policies/{constraint}"
        return name if constraint and _PARENT.match(parent) and _V2_NAME.match(name) else None
    for candidate in (pick_str(event.request, "policy", "name"), pick_str(event.request, "name"), event.resource_name):
        if _V2_NAME.match(candidate):
            return candidate
    parent = pick_str(event.request, "parent")
    constraint = pick_str(event.request, "policy", "name").rsplit("/", 1)[-1]
    name = f"{parent}/policies/{constraint}"
    return name if constraint and _V2_NAME.match(name) else None


def from_entry(event: AuditEvent, name: str) -> GuardrailView | None:
    if event.method.endswith(("DeletePolicy", "ClearOrgPolicy")):
        return _deleted(name)
    if event.service == CRM:
        policy = pick_dict(event.request, "policy")
        return _v1(name.split("/policies/", 1)[0], policy) if policy else None
    policy = pick_dict(event.request, "policy") or event.response
    return _v2(name, policy) if policy else None


def from_live(name: str, policy: Any) -> GuardrailView | None:
    """A live v2 `policies.get` answer (REST JSON); None (no policy) reads as deleted."""
    if not policy:
        return _deleted(name)
    return _v2(name, policy)


def from_asset(record: Any) -> GuardrailView | None:
    """An asset feed's / export's `orgPolicy` (v1 shape) on `name` (//cloudresourcemanager.../projects/P)."""
    parent = pick_str(record, "name").rpartition(".googleapis.com/")[2]
    policies = pick_list(record, "orgPolicy")
    views = [_v1(parent, p) for p in policies if isinstance(p, Mapping)]
    return next((v for v in views if v is not None), None)


GUARDRAIL: Kind[GuardrailView] = Kind("orgpolicy.change", (), locate, from_entry,
                                       from_live, from_asset)
