"""A Cloud Run function made with the Cloud Functions v2 API, from an audit entry, a live read
(the REST JSON of `functions.get`) or an Asset Inventory record.

Field names and enums are those of `cloudfunctions.v2.json` (Function, ServiceConfig). Audit
entries of this API log the request in proto snake_case (`service_config.ingress_settings`)
and the response in JSON camelCase; `pick` reads both. A deploy is a long-running operation:
its `operation.first` entry carries the request (only the fields the deployer set, plus an
update mask), its `operation.last` entry the whole resulting Function, which is what is judged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.run import EnvVar

FUNCTIONS = "cloudfunctions.googleapis.com"
ASSET_TYPE = "cloudfunctions.googleapis.com/Function"
_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/functions/([^/]+)$")

INGRESS_INT = {0: "INGRESS_SETTINGS_UNSPECIFIED", 1: "ALLOW_ALL", 2: "ALLOW_INTERNAL_ONLY", 3: "ALLOW_INTERNAL_AND_GCLB"}
CONNECTOR_EGRESS_INT = {0: "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED", 1: "PRIVATE_RANGES_ONLY", 2: "ALL_TRAFFIC"}
# Direct VPC egress (in the discovery document; not yet in the google-cloud-functions 1.25 protos).
DIRECT_EGRESS = {"VPC_EGRESS_ALL_TRAFFIC": "ALL_TRAFFIC", "VPC_EGRESS_PRIVATE_RANGES_ONLY": "PRIVATE_RANGES_ONLY"}


@dataclass(frozen=True, slots=True)
class FunctionView:
    """What Rampart's rules judge of a function: its network exposure, identity, secrets, key and place."""

    name: str  # projects/P/locations/L/functions/F
    project: str
    location: str
    ingress: str  # ALLOW_ALL | ALLOW_INTERNAL_ONLY | ALLOW_INTERNAL_AND_GCLB (unset is the API default, ALLOW_ALL)
    service_account: str  # "" = the default compute service account
    vpc_connector: str
    vpc_egress: str  # ALL_TRAFFIC | PRIVATE_RANGES_ONLY | "" (no VPC access)
    has_vpc_access: bool
    encryption_key: str  # kmsKeyName
    service: str  # the Cloud Run service it runs as (projects/P/locations/L/services/S), "" if not said
    env: tuple[EnvVar, ...] = ()

    resource_type = "run.function"


def parts(name: str) -> tuple[str, str] | None:
    """(project, location) of a function name; None if `name` is not one."""
    m = _NAME.match(name)
    return (m.group(1), m.group(2)) if m else None


def _enum(value: Any, by_int: Mapping[int, str]) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return by_int.get(value, f"UNKNOWN_{value}")
    if isinstance(value, str):
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return by_int.get(int(value), f"UNKNOWN_{value}")
        return value
    return ""


def _view(body: Mapping[str, Any], name: str) -> FunctionView | None:
    where = parts(name)
    if where is None:
        return None
    sc = pick_dict(body, "serviceConfig")
    ingress = _enum(pick(sc, "ingressSettings"), INGRESS_INT)
    if ingress in ("", "INGRESS_SETTINGS_UNSPECIFIED"):
        ingress = "ALLOW_ALL"
    env = [EnvVar("", k, v if isinstance(v, str) else None) for k, v in pick_dict(sc, "environmentVariables").items()]
    env += [EnvVar("", pick_str(s, "key"), None) for s in pick_list(sc, "secretEnvironmentVariables")]
    connector = pick_str(sc, "vpcConnector")
    direct = bool(pick_list(sc, "directVpcNetworkInterface"))
    if connector:
        egress = _enum(pick(sc, "vpcConnectorEgressSettings"), CONNECTOR_EGRESS_INT)
    elif direct:
        egress = DIRECT_EGRESS.get(pick_str(sc, "directVpcEgress"), "")
    else:
        egress = ""
    if (connector or direct) and egress in ("", "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED"):
        egress = "PRIVATE_RANGES_ONLY"  # the API default when VPC access is set
    return FunctionView(
        name=name,
        project=where[0],
        location=where[1],
        ingress=ingress,
        service_account=pick_str(sc, "serviceAccountEmail"),
        vpc_connector=connector,
        vpc_egress=egress,
        has_vpc_access=bool(connector or direct),
        encryption_key=pick_str(body, "kmsKeyName"),
        service=pick_str(sc, "service"),
        env=tuple(env),
    )


# ---------------------------------------------------------------------------
# Adapters.


def locate(event: AuditEvent) -> str | None:
    for candidate in (event.resource_name, pick_str(event.response, "name"), pick_str(event.request, "name"),
                      pick_str(event.request, "function", "name"), pick_str(event.request, "resource")):
        if parts(candidate):
            return candidate
    parent, fid = pick_str(event.request, "parent"), pick_str(event.request, "functionId")
    candidate = f"{parent}/functions/{fid}"
    return candidate if fid and parts(candidate) else None


def from_entry(event: AuditEvent, name: str) -> FunctionView | None:
    """The function as the entry says it now is: the `operation.last` response (the whole
    Function), else the request's function (only what the deployer set)."""
    body = event.response if pick(event.response, "serviceConfig") is not None or pick_str(event.response, "name") else {}
    if not body:
        body = pick_dict(event.request, "function")
    if not body:
        return None
    return _view(body, name)


def from_live(fn: Any) -> FunctionView | None:
    """A live function: the REST JSON of `functions.get` (or a protobuf-style object with `to_dict`)."""
    if isinstance(fn, Mapping):
        body: Mapping[str, Any] = fn
    else:
        body = type(fn).to_dict(fn, use_integers_for_enums=False, preserving_proto_field_name=False)
    return _view(body, pick_str(body, "name"))


def from_asset(record: Any) -> FunctionView | None:
    """A `cloudfunctions.googleapis.com/Function` record (an asset feed's `asset`, or a
    `SearchAllResources` result with `versionedResources`), whose data is the v2 REST JSON."""
    if pick_str(record, "assetType") != ASSET_TYPE:
        return None
    data = pick_dict(record, "resource", "data")
    if not data:
        versions = [v for v in pick_list(record, "versionedResources") if pick_dict(v, "resource")]
        data = pick_dict(versions[0], "resource") if versions else {}
    name = pick_str(data, "name") or pick_str(record, "name").removeprefix("//cloudfunctions.googleapis.com/")
    return _view(data, name) if data else None


FUNCTION: Kind[FunctionView] = Kind("run.function", (ASSET_TYPE,), locate, from_entry, from_live, from_asset)
