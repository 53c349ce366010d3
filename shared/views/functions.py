"""A Cloud Run function (Cloud Functions v2 API `Function`), from an audit entry
(`google.cloud.functions.v2.FunctionService.CreateFunction` / `UpdateFunction`, whose requests
use snake_case: `service_config.ingress_settings`), a live read (REST JSON) or an Asset
Inventory record (`cloudfunctions.googleapis.com/Function`, `resource.data` the same JSON).

The function also runs as a Cloud Run service (`run_service`); its ingress can be changed on
either side, so a rule may need both views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.kms import mask_text
from shared.views.names import from_full_name, project_location
from shared.views.run import EnvVar

ASSET_TYPE = "cloudfunctions.googleapis.com/Function"

_MASK_FIELDS = {
    "service_config.ingress_settings": "ingress", "serviceConfig.ingressSettings": "ingress",
    "service_config.service_account_email": "service_account", "serviceConfig.serviceAccountEmail": "service_account",
    "service_config.vpc_connector": "vpc", "serviceConfig.vpcConnector": "vpc",
    "service_config.vpc_connector_egress_settings": "vpc", "serviceConfig.vpcConnectorEgressSettings": "vpc",
    "service_config.environment_variables": "env", "serviceConfig.environmentVariables": "env",
    "service_config.secret_environment_variables": "env", "serviceConfig.secretEnvironmentVariables": "env",
    "kms_key_name": "encryption_key", "kmsKeyName": "encryption_key",
}
ALL_FIELDS = frozenset(_MASK_FIELDS.values())
INGRESS_INT = {0: "INGRESS_SETTINGS_UNSPECIFIED", 1: "ALLOW_ALL", 2: "ALLOW_INTERNAL_ONLY", 3: "ALLOW_INTERNAL_AND_GCLB"}
CONNECTOR_EGRESS_INT = {0: "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED", 1: "PRIVATE_RANGES_ONLY", 2: "ALL_TRAFFIC"}
# Direct VPC egress (in cloudfunctions.v2.json; not yet in the google-cloud-functions 1.25 protos).
DIRECT_EGRESS = {"VPC_EGRESS_ALL_TRAFFIC": "ALL_TRAFFIC", "VPC_EGRESS_PRIVATE_RANGES_ONLY": "PRIVATE_RANGES_ONLY"}


def _enum(value: Any, by_int: Mapping[int, str]) -> str:
    """An enum as its name: entries may log it as a number (or a digit string)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return by_int.get(value, f"UNKNOWN_{value}")
    if isinstance(value, str):
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return by_int.get(int(value), f"UNKNOWN_{value}")
        return value
    return ""


@dataclass(frozen=True, slots=True)
class FunctionView:
    """A Cloud Run function. `known` names the fields the source stated: an UpdateFunction entry
    states only those in its update mask (`service_config` as a whole states them all)."""

    name: str  # projects/P/locations/L/functions/F
    project: str
    location: str
    ingress: str  # ALLOW_ALL | ALLOW_INTERNAL_ONLY | ALLOW_INTERNAL_AND_GCLB (unset: the API default, ALLOW_ALL)
    service_account: str  # "" = the default compute service account
    vpc_connector: str
    vpc_egress: str  # PRIVATE_RANGES_ONLY | ALL_TRAFFIC | "" (no connector)
    encryption_key: str
    env: tuple[EnvVar, ...]
    run_service: str  # the Cloud Run service it runs as (projects/P/locations/L/services/S), if known
    has_vpc_access: bool = False  # a connector or Direct VPC
    known: frozenset[str] = ALL_FIELDS

    resource_type = "functions.function"


def _view(name: str, body: Mapping[str, Any], known: frozenset[str]) -> FunctionView | None:
    project, location = project_location(name)
    if not project or not location or "/functions/" not in name:
        return None
    cfg = pick_dict(body, "serviceConfig")
    env = [EnvVar("", k, v if isinstance(v, str) else None) for k, v in pick_dict(cfg, "environmentVariables").items()]
    env += [EnvVar("", pick_str(s, "key"), None) for s in pick_list(cfg, "secretEnvironmentVariables")]
    ingress = _enum(pick(cfg, "ingressSettings"), INGRESS_INT)
    connector = pick_str(cfg, "vpcConnector")
    direct = bool(pick_list(cfg, "directVpcNetworkInterface"))
    if connector:
        egress = _enum(pick(cfg, "vpcConnectorEgressSettings"), CONNECTOR_EGRESS_INT)
    else:
        egress = DIRECT_EGRESS.get(pick_str(cfg, "directVpcEgress"), "") if direct else ""
    if (connector or direct) and egress in ("", "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED"):
        egress = "PRIVATE_RANGES_ONLY"  # the API default with VPC access
    service = pick_str(cfg, "service")
    return FunctionView(
        name=name, project=project, location=location,
        ingress=ingress if ingress not in ("", "INGRESS_SETTINGS_UNSPECIFIED") else "ALLOW_ALL",
        service_account=pick_str(cfg, "serviceAccountEmail"), vpc_connector=connector, vpc_egress=egress,
        encryption_key=pick_str(body, "kmsKeyName"), env=tuple(env),
        run_service=service if service.startswith("projects/") else "", has_vpc_access=bool(connector or direct), known=known,
    )


def locate(event: AuditEvent) -> str | None:
    body = pick_dict(event.request, "function")
    name = pick_str(body, "name") or pick_str(event.response, "name")
    if name.startswith("projects/"):
        return name
    parent, fid = pick_str(event.request, "parent"), pick_str(event.request, "functionId")
    if parent and fid:
        return f"{parent}/functions/{fid}"
    return event.resource_name or None


def from_entry(event: AuditEvent, name: str) -> FunctionView | None:
    """The request's function (only what the deployer set, per its update mask), or, in a
    deploy's `operation.last` entry, which has no request, the whole resulting Function."""
    body = pick_dict(event.request, "function")
    if not body:
        response = event.response
        if pick(response, "serviceConfig") is not None or pick_str(response, "name"):
            return _view(name, response, ALL_FIELDS)
        return None
    text = mask_text(event.request) if event.method.endswith("UpdateFunction") else ""
    if not text:
        return _view(name, body, ALL_FIELDS)
    paths = [p.strip() for p in text.split(",")]
    if "service_config" in paths or "serviceConfig" in paths:
        return _view(name, body, ALL_FIELDS)
    return _view(name, body, frozenset(_MASK_FIELDS[p] for p in paths if p in _MASK_FIELDS))


def from_live(function: Any) -> FunctionView | None:
    """A live `functions.v2` Function (REST JSON; the google-cloud-functions message's to_dict)."""
    body = function if isinstance(function, Mapping) else type(function).to_dict(
        function, use_integers_for_enums=False, preserving_proto_field_name=False)
    return _view(pick_str(body, "name"), body, ALL_FIELDS)


def from_asset(record: Any) -> FunctionView | None:
    if pick_str(record, "assetType") != ASSET_TYPE:
        return None
    data = pick_dict(record, "resource", "data")
    if not data:
        versions = [v for v in pick_list(record, "versionedResources") if pick_dict(v, "resource")]
        data = pick_dict(versions[0], "resource") if versions else {}
    if not data or pick(data, "serviceConfig") is None:
        return None  # a 1st gen function (v1 CloudFunction shape) is not this view
    return _view(from_full_name(pick_str(record, "name")) or pick_str(data, "name"), data, ALL_FIELDS)


FUNCTION: Kind[FunctionView] = Kind("functions.function", (ASSET_TYPE,), locate, from_entry, from_live, from_asset)
