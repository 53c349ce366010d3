"""The seam between the sweep and the rules: `evaluate_asset` and `evaluate_iam`, pure.

Each takes one parsed record and the policy, builds the rule's typed view from the Asset
Inventory record (`Rule.kind.from_asset`, the same adapters the per-entry path's views sit beside)
and runs every enabled rule that judges it: `check(view, params)`, the very code the event path
runs. The findings carry the rule's own id, severity, title and action, so they are decided,
exempted and acted on exactly as event findings are; only `event_id` (a stable id of this
violation), `method` ("rampart.sweep") and `timestamp` (the record's updateTime) say they came
from a sweep, and `principal` is "" (a record does not say who).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import functions
from shared.model import Finding, Mode
from shared.sweep.records import AssetRecord, IamRecord, prefix_of

SWEEP_METHOD = "rampart.sweep"
IAM_KIND = "iam.policy"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule on one record: its finding, or None when the record is compliant."""

    rule: str
    project: str
    finding: Finding[Any] | None
    settings: Any  # the rule's RuleSettings under the policy


def violation_id(rule: str, resource: str, state: str) -> str:
    """The dedupe id of one violation: the same rule on the same resource in the same state (its
    updateTime, or its IAM policy's etag) is the same violation, whichever sweep sees it."""
    digest = hashlib.sha256(f"{rule}\0{resource}\0{state}".encode()).hexdigest()
    return f"sweep-{digest[:40]}"


def rules_for(record: AssetRecord | IamRecord, wanted: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The ids of the rules that judge `record` (the registry's, in its order)."""
    if isinstance(record, IamRecord):
        ids = tuple(r.id for r in functions.all_rules() if r.kind.name == IAM_KIND)
    else:
        ids = tuple(r.id for r in functions.rules_for_asset(record.asset_type))
    return ids if wanted is None else tuple(r for r in ids if r in wanted)


def resource_types_for(wanted: tuple[str, ...] | None) -> tuple[str, ...]:
    """The asset types whose records the (wanted) rules judge, in the registry's order."""
    rules = functions.all_rules() if wanted is None else tuple(functions.rule(r) for r in wanted)
    return tuple(dict.fromkeys(t for r in rules for t in r.asset_types))


def reads_iam(wanted: tuple[str, ...] | None) -> bool:
    rules = functions.all_rules() if wanted is None else tuple(functions.rule(r) for r in wanted)
    return any(r.kind.name == IAM_KIND for r in rules)


def evaluate_asset(record: AssetRecord, loaded: Any, wanted: tuple[str, ...] | None = None) -> list[Verdict]:
    """Every enabled rule that judges `record`'s kind, on `record` (which must carry its data)."""
    if record.data is None:
        raise ValueError(f"{record.name}: the record carries no resource data; read it in full first")
    data = dict(record.data)
    # Both record shapes a view adapter may read: a search result's versionedResources, a feed's resource.data.
    raw = {"name": prefix_of(record.asset_type) + record.name, "assetType": record.asset_type,
           "location": record.location, "versionedResources": [{"version": record.version, "resource": data}],
           "resource": {"version": record.version, "location": record.location, "data": data}}
    return _run(raw, record.project, record.update_time, record.update_time, rules_for(record, wanted), loaded)


def evaluate_iam(record: IamRecord, loaded: Any, wanted: tuple[str, ...] | None = None) -> list[Verdict]:
    """Every enabled IAM rule on `record`'s policy."""
    raw = {"resource": prefix_of(record.asset_type) + record.name, "assetType": record.asset_type,
           "policy": dict(record.policy)}
    return _run(raw, record.project, record.etag, "", rules_for(record, wanted), loaded)


def _run(raw: dict[str, Any], project: str, state: str, changed: str, rule_ids: tuple[str, ...],
         loaded: Any) -> list[Verdict]:
    out = []
    views: dict[str, Any] = {}  # one view per kind, shared by the rules that judge it
    for rid in rule_ids:
        settings = loaded.settings(rid)
        if settings.mode is Mode.OFF:
            continue
        rule = functions.rule(rid)
        if rule.kind.name not in views:
            views[rule.kind.name] = rule.kind.from_asset(raw)
        view = views[rule.kind.name]
        if view is None:
            continue  # the record does not describe a resource of this kind
        f = rule.check(view, settings.params)
        if f is not None:
            f = dataclasses.replace(f, event_id=violation_id(rid, f.resource, state), method=SWEEP_METHOD,
                                    principal="", timestamp=changed)
        out.append(Verdict(rid, project, f, settings))
    return out
