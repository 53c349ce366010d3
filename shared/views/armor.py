"""Cloud Armor in front of a backend: a backend service's attached security policy, or a
security policy's rules, as a Compute Engine write sets them (`compute.v1.json`:
backendServices.setSecurityPolicy and regionBackendServices.setSecurityPolicy take a
SecurityPolicyReference `{securityPolicy}`;
securityPolicies.removeRule takes `?priority=`, patchRule / addRule a SecurityPolicyRule,
patch a SecurityPolicy).

Compute logs a write as a long-running operation whose `operation.first` entry carries the
request body and whose `operation.last` entry carries only its `@type` (corpus:
compute/c7n-route-create.json, compute/c7n-autoscaler-insert.json): the first one is judged."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_list, pick_str
from shared.views import Kind

COMPUTE = "compute.googleapis.com"
# Path segments without whitespace, `?` or `#`: a revert puts the name in a Compute URL.
_SEG = r"[^/\s?#]+"
_BACKEND = re.compile(rf"^projects/({_SEG})/(?:global|regions/({_SEG}))/backendServices/({_SEG})$")
_POLICY = re.compile(rf"^projects/({_SEG})/(?:global|regions/({_SEG}))/securityPolicies/({_SEG})$")
_ALLOWS = ("allow",)
# The only writes that attach or detach a backend's policy: BackendService.securityPolicy is
# "[Output Only]" in compute.v1.json, so a backend service patch or update cannot drop it.
SET_POLICY = ("backendServices.setSecurityPolicy", "regionBackendServices.setSecurityPolicy")


@dataclass(frozen=True, slots=True)
class ArmorView:
    """`detached`: a backend service's security policy was set to none. `weakened_rules`: the
    priorities of rules removed, or patched/added to allow traffic (a rule's action `allow`)."""

    name: str  # the backend service or the security policy
    project: str
    location: str  # "global" or the region
    target: str  # backendService | securityPolicy
    detached: bool
    attached_policy: str
    weakened_rules: tuple[str, ...]
    change: str  # the compute method, e.g. backendServices.setSecurityPolicy

    @property
    def resource_type(self) -> str:
        return f"compute.{self.target}"


def locate(event: AuditEvent) -> str | None:
    name = event.resource_name
    return name if _BACKEND.fullmatch(name) or _POLICY.fullmatch(name) else None


def from_entry(event: AuditEvent, name: str) -> ArmorView | None:
    if event.operation_last and not event.operation_first:
        return None  # the operation's end: no request body; its start was judged
    change = event.method.split("compute.", 1)[-1]
    req = event.request
    m = _BACKEND.fullmatch(name)
    if m:
        if change not in SET_POLICY:
            return None
        policy = pick_str(req, "securityPolicy")
        return ArmorView(name, m.group(1), m.group(2) or "global", "backendService", not policy, policy, (), change)
    m = _POLICY.fullmatch(name)
    if not m:
        return None
    priority = pick(req, "priority")
    prio = str(priority) if isinstance(priority, int | str) and not isinstance(priority, bool) else "?"
    if change == "securityPolicies.removeRule":
        weakened = [prio]
    elif change in ("securityPolicies.patchRule", "securityPolicies.addRule"):
        weakened = [prio] if pick_str(req, "action") in _ALLOWS else []
    elif change == "securityPolicies.patch":
        weakened = [str(pick(r, "priority")) for r in pick_list(req, "rules") if pick_str(r, "action") in _ALLOWS]
    else:
        return None
    return ArmorView(name, m.group(1), m.group(2) or "global", "securityPolicy", False, "", tuple(weakened), change)


def from_live(obj: Any) -> ArmorView | None:
    return None  # judged from writes only; a live read is the enrichment's business


def from_asset(record: Any) -> ArmorView | None:
    return None


ARMOR: Kind[ArmorView] = Kind("compute.armor", (), locate, from_entry, from_live, from_asset)
