"""An IAM policy on one resource (a Cloud Run service, a KMS key or key ring, ...): bindings
with their conditions, from an audit entry (the new policy, and the prior one rebuilt from the
entry's `policyDelta`), a live `getIamPolicy`, or an Asset Inventory record
(`SearchAllIamPolicies` result `policy`, or an asset feed's `iamPolicy`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.names import from_full_name, project_location, resource_type_of, run_service_name

PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})


class Condition(NamedTuple):
    expression: str
    title: str = ""
    description: str = ""


class Binding(NamedTuple):
    role: str
    members: tuple[str, ...]
    condition: Condition | None = None


@dataclass(frozen=True, slots=True)
class IamDelta:
    """The (role, member) pairs an entry's `serviceData.policyDelta` says were added and removed:
    who changed what, for the record; rules judge the policy itself."""

    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PolicyView:
    """The IAM policy of `name`. `prior` is the policy before the change, where the source knows
    it (an entry with a delta); `complete` is False when the source gave only part of the policy
    (an entry with a delta and no policy body: `bindings` then holds only what was added)."""

    name: str  # the resource the policy is on, canonical (projects/P/locations/L/...)
    project: str
    location: str
    resource_type: str  # run.service | kms.cryptoKey | kms.keyRing | ... ("" when unknown)
    bindings: tuple[Binding, ...]
    prior: tuple[Binding, ...] | None = None
    complete: bool = True

    def members(self, role: str, *, conditional: bool = True) -> set[str]:
        """Members holding `role` (with conditional grants too, unless `conditional` is False)."""
        return {m for b in self.bindings if b.role == role and (conditional or b.condition is None) for m in b.members}

    def grants(self, members: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """(role, member) pairs, sorted, no repeats; only of `members` when given."""
        wanted = None if members is None else frozenset(members)
        return sorted({(b.role, m) for b in self.bindings for m in b.members if wanted is None or m in wanted})


# ---------------------------------------------------------------------------
# Raw policy JSON → bindings.


def _condition(raw: Any) -> Condition | None:
    if not isinstance(raw, Mapping) or not raw:
        return None
    return Condition(pick_str(raw, "expression"), pick_str(raw, "title"), pick_str(raw, "description"))


def bindings_of(policy: Any) -> tuple[Binding, ...]:
    out = []
    for b in pick_list(policy, "bindings"):
        members = tuple(m for m in pick_list(b, "members") if isinstance(m, str))
        out.append(Binding(pick_str(b, "role"), members, _condition(pick(b, "condition"))))
    return tuple(out)


_DELTA_ACTIONS = {1: "ADD", 2: "REMOVE"}  # google.iam.v1.BindingDelta.Action, when serialized as numbers


def _delta_action(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _DELTA_ACTIONS.get(value, "")
    return ""


def _deltas(event: AuditEvent) -> list[tuple[str, str, str, Condition | None]]:
    return [
        (_delta_action(pick(d, "action")), pick_str(d, "role"), pick_str(d, "member"), _condition(pick(d, "condition")))
        for d in pick_list(event.service_data, "policyDelta", "bindingDeltas")
    ]


def delta_of(event: AuditEvent) -> IamDelta | None:
    """What the entry's policyDelta says changed; None when it has none."""
    deltas = _deltas(event)
    if not deltas:
        return None
    return IamDelta(
        tuple((r, m) for a, r, m, _ in deltas if a == "ADD"), tuple((r, m) for a, r, m, _ in deltas if a == "REMOVE")
    )


def _apply(bindings: tuple[Binding, ...], drop: set[tuple[str, str, Condition | None]],
           add: list[tuple[str, str, Condition | None]]) -> tuple[Binding, ...]:
    grouped: dict[tuple[str, Condition | None], dict[str, None]] = {}  # dicts: ordered sets
    for b in bindings:
        kept = grouped.setdefault((b.role, b.condition), {})
        kept.update((m, None) for m in b.members if (b.role, m, b.condition) not in drop)
    for role, member, cond in add:
        grouped.setdefault((role, cond), {})[member] = None
    return tuple(Binding(r, tuple(ms), c) for (r, c), ms in grouped.items() if ms)


# ---------------------------------------------------------------------------
# Adapters.


def locate(event: AuditEvent) -> str | None:
    """The resource a SetIamPolicy entry is on, canonical (a Cloud Run service's v1 name made v2)."""
    resource = pick_str(event.request, "resource") or event.resource_name
    if event.service == "run.googleapis.com" and not resource.startswith("projects/"):
        return run_service_name(event)[0] or None
    return resource or None


def _view(name: str, bindings: tuple[Binding, ...], prior: tuple[Binding, ...] | None = None,
          complete: bool = True) -> PolicyView:
    project, location = project_location(name)
    return PolicyView(name, project, location, resource_type_of(name), bindings, prior, complete)


def from_entry(event: AuditEvent, name: str) -> PolicyView | None:
    policy = pick(event.request, "policy")
    if not isinstance(policy, Mapping):
        policy = event.response
    bindings = bindings_of(policy)
    deltas = _deltas(event)
    if not deltas:
        return _view(name, bindings)
    added = [(r, m, c) for a, r, m, c in deltas if a == "ADD"]
    removed = [(r, m, c) for a, r, m, c in deltas if a == "REMOVE"]
    complete = bool(bindings)  # False: only the delta is known, so the adds are all the new policy shows
    # The delta is the exact change: the new policy has what it added, and lacks what it removed,
    # even where the entry's copy of the policy is abridged.
    bindings = _apply(bindings, set(removed), added)
    prior = _apply(bindings, set(added), removed)
    return _view(name, bindings, prior, complete)


def from_live(name: str, policy: Any) -> PolicyView:
    """A live `get_iam_policy` answer (google.iam.v1 Policy message or its JSON) on `name`."""
    if not isinstance(policy, Mapping):
        from google.protobuf import json_format

        policy = json_format.MessageToDict(policy)
    return _view(name, bindings_of(policy))


def from_asset(record: Any) -> PolicyView | None:
    """A `SearchAllIamPolicies` result (`resource`, `policy`) or an asset feed's `asset`
    (`name`, `iamPolicy`)."""
    policy = pick_dict(record, "policy") or pick_dict(record, "iamPolicy")
    full = pick_str(record, "resource") or pick_str(record, "name")
    if not full:
        return None
    return _view(from_full_name(full), bindings_of(policy))


POLICY: Kind[PolicyView] = Kind("iam.policy", (), locate, from_entry, from_live, from_asset)
