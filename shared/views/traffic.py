"""Where a Cloud Run service's traffic goes: its traffic targets, from a v1 (Knative
`spec.traffic[]`: revisionName, percent, tag, latestRevision) or v2 (`traffic[]`: type, revision,
percent, tag) service write, a live read or an Asset Inventory record. A target that names a
revision serves that revision's configuration, not the template's, so the service rules'
judgement of the template says nothing about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.names import project_location, run_service_name
from shared.views.run import ASSET_TYPE
from shared.views.run import locate as locate_service

_TYPES = {1: "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", 2: "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"}


@dataclass(frozen=True, slots=True)
class Target:
    revision: str  # the short revision name; "" for the latest
    percent: int
    tag: str


@dataclass(frozen=True, slots=True)
class TrafficView:
    name: str
    project: str
    location: str
    targets: tuple[Target, ...]

    resource_type = "run.service"

    def pinned(self) -> list[Target]:
        """Targets that serve a named revision: with a share of the traffic, or reachable by tag."""
        return [t for t in self.targets if t.revision and (t.percent > 0 or t.tag)]


def _percent(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if 0 <= value <= 100 else 0
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3:
        return int(value)
    return 0


def _targets(body: Mapping[str, Any]) -> tuple[Target, ...]:
    out = []
    if "spec" in body:  # v1 (Knative)
        for t in pick_list(body, "spec", "traffic"):
            latest = pick(t, "latestRevision") is True
            out.append(Target("" if latest else pick_str(t, "revisionName"), _percent(pick(t, "percent")), pick_str(t, "tag")))
        return tuple(out)
    for t in pick_list(body, "traffic"):
        kind = pick(t, "type")
        kind = _TYPES.get(kind, "") if isinstance(kind, int) and not isinstance(kind, bool) else kind
        latest = kind == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
        rev = pick_str(t, "revision").rsplit("/", 1)[-1]
        out.append(Target("" if latest else rev, _percent(pick(t, "percent")), pick_str(t, "tag")))
    return tuple(out)


def from_entry(event: AuditEvent, name: str) -> TrafficView | None:
    body = pick_dict(event.request, "service")
    if not body:
        return None
    canonical, project, location = run_service_name(event, body)
    return TrafficView(canonical, project, location, _targets(body))


def from_live(svc: Any) -> TrafficView | None:
    body = svc if isinstance(svc, Mapping) else type(svc).to_dict(svc, use_integers_for_enums=False,
                                                                  preserving_proto_field_name=False)
    name = pick_str(body, "name")
    project, location = project_location(name)
    return TrafficView(name, project, location, _targets(body)) if name else None


def from_asset(record: Any) -> TrafficView | None:
    if pick_str(record, "assetType") != ASSET_TYPE:
        return None
    data = pick_dict(record, "resource", "data")
    name = pick_str(record, "name").removeprefix("//run.googleapis.com/")
    project, location = project_location(name)
    if not data or not project:
        return None
    return TrafficView(name, project, location, _targets(data))


TRAFFIC: Kind[TrafficView] = Kind("run.traffic", (ASSET_TYPE,), locate_service, from_entry, from_live, from_asset)
