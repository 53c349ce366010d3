"""An organization policy on a project, folder or organization (Org Policy API v2 `Policy`),
from an audit entry (`google.cloud.orgpolicy.v2.OrgPolicy.CreatePolicy` / `UpdatePolicy`), a
live read (REST JSON), or an Asset Inventory record: `orgpolicy.googleapis.com/Policy` with
`resource.data` in the v2 shape, or an asset's `orgPolicy` list (the v1 shape, one entry per
constraint: `org_policies_from_asset`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.names import from_full_name

ASSET_TYPE = "orgpolicy.googleapis.com/Policy"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    allow_all: bool = False
    deny_all: bool = False
    enforce: bool | None = None  # boolean constraints
    allowed_values: tuple[str, ...] = ()
    denied_values: tuple[str, ...] = ()
    condition: str = ""  # CEL expression; "" when the rule is unconditional


@dataclass(frozen=True, slots=True)
class OrgPolicyView:
    name: str  # projects/P/policies/C | folders/F/policies/C | organizations/O/policies/C
    parent: str  # projects/P | folders/F | organizations/O
    constraint: str  # e.g. run.allowedIngress (no "constraints/" prefix)
    rules: tuple[PolicyRule, ...]
    inherit_from_parent: bool
    reset: bool

    resource_type = "orgpolicy.policy"

    @property
    def project(self) -> str:
        return self.parent.split("/", 1)[1] if self.parent.startswith("projects/") else ""

    @property
    def location(self) -> str:
        return "global"

    @property
    def enforced(self) -> bool:
        """An unconditional rule enforces a boolean constraint."""
        return any(r.enforce is True and not r.condition for r in self.rules)


def _split(name: str) -> tuple[str, str] | None:
    parent, sep, constraint = name.partition("/policies/")
    if not sep or not constraint or parent.count("/") != 1:
        return None
    return parent, constraint.removeprefix("constraints/")


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _v2(name: str, body: Mapping[str, Any]) -> OrgPolicyView | None:
    parts = _split(name)
    if parts is None:
        return None
    spec = pick_dict(body, "spec")
    rules = []
    for r in pick_list(spec, "rules"):
        enforce = pick(r, "enforce")
        rules.append(PolicyRule(
            allow_all=pick(r, "allowAll") is True, deny_all=pick(r, "denyAll") is True,
            enforce=enforce if isinstance(enforce, bool) else None,
            allowed_values=_strings(pick(r, "values", "allowedValues")), denied_values=_strings(pick(r, "values", "deniedValues")),
            condition=pick_str(r, "condition", "expression"),
        ))
    return OrgPolicyView(name, parts[0], parts[1], tuple(rules), pick(spec, "inheritFromParent") is True, pick(spec, "reset") is True)


def locate(event: AuditEvent) -> str | None:
    return pick_str(event.request, "policy", "name") or pick_str(event.request, "name") or event.resource_name or None


def from_entry(event: AuditEvent, name: str) -> OrgPolicyView | None:
    body = pick_dict(event.request, "policy")
    return _v2(name, body) if body else None


def from_live(policy: Any) -> OrgPolicyView | None:
    body = policy if isinstance(policy, Mapping) else type(policy).to_dict(
        policy, use_integers_for_enums=False, preserving_proto_field_name=False)
    return _v2(pick_str(body, "name"), body)


def from_asset(record: Any) -> OrgPolicyView | None:
    if pick_str(record, "assetType") != ASSET_TYPE:
        return None
    data = pick_dict(record, "resource", "data")
    return _v2(from_full_name(pick_str(record, "name")) or pick_str(data, "name"), data) if data else None


def org_policies_from_asset(record: Any) -> tuple[OrgPolicyView, ...]:
    """The v1 `orgPolicy` list an asset of any type carries (content type ORG_POLICY), as views."""
    parent = from_full_name(pick_str(record, "name"))
    out = []
    for p in pick_list(record, "orgPolicy"):
        constraint = pick_str(p, "constraint").removeprefix("constraints/")
        if not constraint or parent.count("/") != 1:
            continue
        lp, bp = pick_dict(p, "listPolicy"), pick_dict(p, "booleanPolicy")
        rules: list[PolicyRule] = []
        if bp:
            rules.append(PolicyRule(enforce=pick(bp, "enforced") is True))
        if lp:
            all_values = pick_str(lp, "allValues")
            rules.append(PolicyRule(
                allow_all=all_values == "ALLOW", deny_all=all_values == "DENY",
                allowed_values=_strings(pick(lp, "allowedValues")), denied_values=_strings(pick(lp, "deniedValues")),
            ))
        out.append(OrgPolicyView(
            f"{parent}/policies/{constraint}", parent, constraint, tuple(rules),
            pick(lp, "inheritFromParent") is True, bool(pick_dict(p, "restoreDefault")),
        ))
    return tuple(out)


ORG_POLICY: Kind[OrgPolicyView] = Kind("orgpolicy.policy", (ASSET_TYPE,), locate, from_entry, from_live, from_asset)
