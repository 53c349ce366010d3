"""An organization policy on one constraint at a project, folder or organization, and what a
write did to it (a guardrail), whatever the source:

- audit entries: Org Policy v2 `google.cloud.orgpolicy.v2.OrgPolicy.CreatePolicy|UpdatePolicy|
  DeletePolicy` (serviceName orgpolicy.googleapis.com), and Resource Manager v1
  `SetOrgPolicy|ClearOrgPolicy` (serviceName cloudresourcemanager.googleapis.com, resourceName
  the project/folder/org); a DeletePolicy or ClearOrgPolicy leaves the constraint with no policy
  of its own (`deleted`);
- a live read: v2 `policies.get` REST JSON (nothing read, i.e. a 404, is `deleted`);
- Asset Inventory: an `orgpolicy.googleapis.com/Policy` record (`resource.data` in the v2 shape),
  or the v1 `orgPolicy` list any asset carries (content type ORG_POLICY; `org_policies_from_asset`
  gives one view per constraint).

Shapes: `orgpolicy.v2.json` (GoogleCloudOrgpolicyV2Policy: spec.rules[] with enforce / allowAll /
denyAll / values / condition, spec.reset, spec.inheritFromParent) and `cloudresourcemanager.v1.json`
(OrgPolicy: booleanPolicy, listPolicy, restoreDefault).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.names import from_full_name

ASSET_TYPE = "orgpolicy.googleapis.com/Policy"
ORGPOLICY = "orgpolicy.googleapis.com"
CRM = "cloudresourcemanager.googleapis.com"
_NAME = re.compile(r"^((?:projects|folders|organizations)/[^/]+)/policies/([^/]+)$")
_PARENT = re.compile(r"^(?:projects|folders|organizations)/[^/]+$")


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
    """What a constraint's policy does at `parent`. `deleted`: no policy of its own any more (it
    inherits, or the constraint's default applies). `written`: the view is what a write set (an
    audit entry), not a state read (a live read or an Asset Inventory record): a write of values
    is a change whose prior values are unknown, a state with values is only a state."""

    name: str  # PARENT/policies/CONSTRAINT (the v2 form, also for v1 sources)
    parent: str  # projects/P | folders/F | organizations/O
    constraint: str  # e.g. run.allowedIngress (no "constraints/" prefix)
    rules: tuple[PolicyRule, ...]
    inherit_from_parent: bool | None  # None when the policy does not say
    reset: bool  # the spec resets to the constraint's default
    deleted: bool = False
    written: bool = field(default=False, compare=False)  # the same policy, however it is known

    resource_type = "orgpolicy.policy"

    @property
    def project(self) -> str:
        """The project id; for a folder or organization its name (it is in no project)."""
        return self.parent.split("/", 1)[1] if self.parent.startswith("projects/") else self.parent

    @property
    def location(self) -> str:
        return "global"

    @property
    def enforced(self) -> bool:
        """An unconditional rule enforces a boolean constraint."""
        return any(r.enforce is True and not r.condition for r in self.rules)

    @property
    def enforce(self) -> bool | None:
        """Boolean constraints: every rule that says enforces; None when no rule says."""
        said = [r.enforce for r in self.rules if r.enforce is not None]
        return all(said) if said else None

    @property
    def allow_all(self) -> bool:
        return any(r.allow_all for r in self.rules)

    @property
    def deny_all(self) -> bool:
        return any(r.deny_all for r in self.rules)

    @property
    def allowed_values(self) -> tuple[str, ...]:
        return tuple(v for r in self.rules for v in r.allowed_values)

    @property
    def denied_values(self) -> tuple[str, ...]:
        return tuple(v for r in self.rules for v in r.denied_values)

    @property
    def conditional(self) -> bool:
        """Some rule holds only under a condition."""
        return any(r.condition for r in self.rules)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _inherit(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def rules_of_spec(spec: Any) -> tuple[PolicyRule, ...]:
    """The rules of an Org Policy v2 spec (a policy's, or a declared baseline), as a view holds
    them; none of what is not a spec."""
    rules = []
    for r in pick_list(spec, "rules"):
        if not isinstance(r, Mapping):
            continue
        enforce = pick(r, "enforce")
        # A condition without an expression still makes the rule conditional.
        condition = pick_str(r, "condition", "expression") or ("(condition)" if pick_dict(r, "condition") else "")
        rules.append(PolicyRule(
            allow_all=pick(r, "allowAll") is True, deny_all=pick(r, "denyAll") is True,
            enforce=enforce if isinstance(enforce, bool) else None,
            allowed_values=_strings(pick(r, "values", "allowedValues")), denied_values=_strings(pick(r, "values", "deniedValues")),
            condition=condition,
        ))
    return tuple(rules)


def _v2(name: str, body: Mapping[str, Any]) -> OrgPolicyView | None:
    m = _NAME.match(name)
    if not m:
        return None
    spec = pick_dict(body, "spec")
    return OrgPolicyView(name, m.group(1), m.group(2), rules_of_spec(spec),
                         _inherit(pick(spec, "inheritFromParent")), pick(spec, "reset") is True)


def _v1(parent: str, policy: Mapping[str, Any]) -> OrgPolicyView | None:
    """A v1 OrgPolicy (one constraint) set on `parent`."""
    constraint = pick_str(policy, "constraint").removeprefix("constraints/")
    if not _PARENT.match(parent) or not constraint or "/" in constraint:
        return None
    boolean, lst = pick(policy, "booleanPolicy"), pick_dict(policy, "listPolicy")
    rules: list[PolicyRule] = []
    if isinstance(boolean, Mapping):  # {} is a boolean policy that does not enforce
        rules.append(PolicyRule(enforce=pick(boolean, "enforced") is True))
    if lst:
        all_values = pick_str(lst, "allValues")
        rules.append(PolicyRule(
            allow_all=all_values == "ALLOW", deny_all=all_values == "DENY",
            allowed_values=_strings(pick(lst, "allowedValues")), denied_values=_strings(pick(lst, "deniedValues")),
        ))
    return OrgPolicyView(f"{parent}/policies/{constraint}", parent, constraint, tuple(rules),
                         _inherit(pick(lst, "inheritFromParent")), pick(policy, "restoreDefault") is not None)


def _deleted(name: str) -> OrgPolicyView | None:
    m = _NAME.match(name)
    if not m:
        return None
    return OrgPolicyView(name, m.group(1), m.group(2), (), None, False, deleted=True)


# ---------------------------------------------------------------------------
# Adapters.


def locate(event: AuditEvent) -> str | None:
    if event.service == CRM:  # v1 SetOrgPolicy / ClearOrgPolicy
        parent = pick_str(event.request, "resource") or event.resource_name
        constraint = (pick_str(event.request, "policy", "constraint") or pick_str(event.request, "constraint"))
        name = f"{parent}/policies/{constraint.removeprefix('constraints/')}"
        return name if _PARENT.match(parent) and _NAME.match(name) else None
    for candidate in (pick_str(event.request, "policy", "name"), pick_str(event.request, "name"), event.resource_name):
        if _NAME.match(candidate):
            return candidate
    parent = pick_str(event.request, "parent")
    constraint = pick_str(event.request, "policy", "name").rsplit("/", 1)[-1]
    name = f"{parent}/policies/{constraint}"
    return name if constraint and _NAME.match(name) else None


def from_entry(event: AuditEvent, name: str) -> OrgPolicyView | None:
    view: OrgPolicyView | None
    if event.method.endswith(("DeletePolicy", "ClearOrgPolicy")):
        view = _deleted(name)
    elif event.service == CRM:
        m = _NAME.match(name)  # a project may be named "policies": split the name where the pattern does
        view = _v1(m.group(1), pick_dict(event.request, "policy")) if m else None
    else:
        policy = pick_dict(event.request, "policy") or event.response
        view = _v2(name, policy) if policy else None
    return dataclasses.replace(view, written=True) if view is not None else None


def from_live(policy: Any, name: str = "") -> OrgPolicyView | None:
    """A live v2 `policies.get` answer (REST JSON or a client object). Nothing read (None or
    {}, as a 404 leaves it) for `name` reads as deleted."""
    if not policy:
        return _deleted(name)
    body = policy if isinstance(policy, Mapping) else type(policy).to_dict(
        policy, use_integers_for_enums=False, preserving_proto_field_name=False)
    return _v2(pick_str(body, "name") or name, body)


def from_asset(record: Any) -> OrgPolicyView | None:
    """An `orgpolicy.googleapis.com/Policy` record; otherwise the first v1 `orgPolicy` a record
    of any type carries."""
    if pick_str(record, "assetType") == ASSET_TYPE:
        data = pick_dict(record, "resource", "data")
        return _v2(from_full_name(pick_str(record, "name")) or pick_str(data, "name"), data) if data else None
    return next(iter(org_policies_from_asset(record)), None)


def org_policies_from_asset(record: Any) -> tuple[OrgPolicyView, ...]:
    """The v1 `orgPolicy` list an asset of any type carries (content type ORG_POLICY), as views."""
    parent = from_full_name(pick_str(record, "name"))
    views = (_v1(parent, p) for p in pick_list(record, "orgPolicy") if isinstance(p, Mapping))
    return tuple(v for v in views if v is not None)


ORG_POLICY: Kind[OrgPolicyView] = Kind("orgpolicy.policy", (ASSET_TYPE,), locate, from_entry, from_live, from_asset)
