"""What every rule module is made of, and the typed views rules read events through.

A rule is a module in `functions/` named by its id, holding `RULE = Rule(...)`, a
`Params` dataclass (its tunable parameters, with defaults) and a pure
`evaluate(event, params) -> Finding | None`. `ServiceView` and `iam_delta` turn the
v1 (Knative) and v2 Cloud Run shapes and the IAM policy shapes into one typed form,
so rules never dig into raw dicts themselves.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.model import Action, Finding, Severity

RUN = "run.googleapis.com"
KMS = "cloudkms.googleapis.com"

PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"

# Cloud Run Admin API methods that carry a whole Service in the request (v1 and v2).
RUN_SERVICE_WRITES: tuple[tuple[str, str], ...] = (
    (RUN, "google.cloud.run.v1.Services.CreateService"),
    (RUN, "google.cloud.run.v1.Services.ReplaceService"),
    (RUN, "google.cloud.run.v2.Services.CreateService"),
    (RUN, "google.cloud.run.v2.Services.UpdateService"),
)
RUN_SET_IAM: tuple[tuple[str, str], ...] = (
    (RUN, "google.cloud.run.v1.Services.SetIamPolicy"),
    (RUN, "google.cloud.run.v2.Services.SetIamPolicy"),
)
KMS_SET_IAM: tuple[tuple[str, str], ...] = ((KMS, "SetIamPolicy"),)


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's metadata: what it watches, what it may do, and what that needs."""

    id: str
    title: str
    severity: Severity
    resource_type: str
    triggers: tuple[tuple[str, str], ...]  # (serviceName, methodName)
    action: Action  # what it does in enforce mode
    actions: tuple[Action, ...]  # every action the policy may choose for it
    permissions: Mapping[str, tuple[str, ...]]  # action → IAM permissions it needs
    evaluate: Callable[[AuditEvent, Any], Finding | None]
    params: type  # a frozen dataclass; its defaults are the HIPAA profile
    why: str  # one line: the seed requirement behind the rule


def finding(
    rule: Rule,
    event: AuditEvent,
    *,
    resource: str,
    location: str,
    observed: dict[str, Any],
    title: str | None = None,
    action: Action | None = None,
    project: str | None = None,
    resource_type: str | None = None,
) -> Finding:
    """Build a Finding for `rule` from `event`, with the rule's defaults filled in."""
    return Finding(
        rule=rule.id,
        severity=rule.severity,
        title=title or rule.title,
        resource=resource,
        resource_type=resource_type or rule.resource_type,
        project=project or event.project,
        location=location,
        principal=event.principal,
        action=action or rule.action,
        event_id=event.event_id,
        method=event.method,
        timestamp=event.timestamp,
        observed=observed,
    )


def matches_any(value: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Shell-style pattern match (`*`, `?`), case-sensitive, as in the policy file."""
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


# ---------------------------------------------------------------------------
# Cloud Run services, v1 (Knative) and v2, as one typed view.

INGRESS_V1 = {
    "all": "INGRESS_TRAFFIC_ALL",
    "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    "none": "INGRESS_TRAFFIC_NONE",
}
INGRESS_INT = {
    0: "INGRESS_TRAFFIC_UNSPECIFIED",
    1: "INGRESS_TRAFFIC_ALL",
    2: "INGRESS_TRAFFIC_INTERNAL_ONLY",
    3: "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    4: "INGRESS_TRAFFIC_NONE",
}
EGRESS_V1 = {
    "all-traffic": "ALL_TRAFFIC",
    "all": "ALL_TRAFFIC",
    "private-ranges-only": "PRIVATE_RANGES_ONLY",
}
EGRESS_INT = {0: "VPC_EGRESS_UNSPECIFIED", 1: "ALL_TRAFFIC", 2: "PRIVATE_RANGES_ONLY"}

_A_INGRESS = "run.googleapis.com/ingress"
_A_INVOKER_OFF = "run.googleapis.com/invoker-iam-disabled"
_A_CONNECTOR = "run.googleapis.com/vpc-access-connector"
_A_EGRESS = "run.googleapis.com/vpc-access-egress"
_A_NETIFS = "run.googleapis.com/network-interfaces"
_A_CMEK = "run.googleapis.com/encryption-key"


def _enum(value: Any, by_int: Mapping[int, str], by_v1: Mapping[str, str]) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return by_int.get(value, f"UNKNOWN_{value}")
    if isinstance(value, str):
        if value in by_v1:
            return by_v1[value]
        # ASCII only, and short: "²".isdigit() is True but int("²") raises, as does int() of 4300+ digits.
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return by_int.get(int(value), f"UNKNOWN_{value}")
        return value
    return ""


@dataclass(frozen=True, slots=True)
class EnvVar:
    container: str
    name: str
    plain_value: str | None  # None when it is a Secret Manager reference


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A Cloud Run service as written by the request (falling back to the response)."""

    name: str  # projects/P/locations/L/services/S
    project: str
    location: str
    api: str  # v1 | v2
    is_create: bool
    ingress: str  # v2 enum name; a missing value is the API default, INGRESS_TRAFFIC_ALL
    ingress_explicit: bool
    invoker_iam_disabled: bool
    service_account: str  # "" = the default compute service account
    vpc_connector: str
    vpc_egress: str  # ALL_TRAFFIC | PRIVATE_RANGES_ONLY | "" (no VPC access)
    has_vpc_access: bool
    encryption_key: str
    env: tuple[EnvVar, ...] = field(default_factory=tuple)


_RUN_V1_NAME = re.compile(r"^namespaces/([^/]+)/services/([^/]+)$")
_RUN_V2_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/services/([^/]+)$")


def run_service_name(event: AuditEvent, service_body: Mapping[str, Any] | None = None) -> tuple[str, str, str]:
    """(canonical name, project, location) of the Cloud Run service an event is about."""
    candidates = [event.resource_name, pick_str(event.request, "name"), pick_str(event.request, "resource")]
    if service_body:
        candidates.append(pick_str(service_body, "name"))
    for c in candidates:
        m = _RUN_V2_NAME.match(c)
        if m:
            return c, m.group(1), m.group(2)
    location = event.location
    for c in candidates:
        m = _RUN_V1_NAME.match(c)
        if m:
            return f"projects/{m.group(1)}/locations/{location}/services/{m.group(2)}", m.group(1), location
    parent = pick_str(event.request, "parent")
    sid = pick_str(event.request, "serviceId")
    m = re.match(r"^projects/([^/]+)/locations/([^/]+)$", parent)
    if m and sid:
        return f"{parent}/services/{sid}", m.group(1), m.group(2)
    return event.resource_name, event.project, location


_last_view: tuple[AuditEvent, ServiceView | None] | None = None


def service_view(event: AuditEvent) -> ServiceView | None:
    """The Cloud Run service a Create/Replace/Update request writes, or None if it has none.

    Remembered for the last event (by identity): the seven Run rules triggered by one write
    read the same view, and building it was most of the cost of a relevant event. The view is
    immutable and a pure function of the event; a thread interleaving another event only
    makes the next call build it again.
    """
    global _last_view
    last = _last_view
    if last is not None and last[0] is event:
        return last[1]
    view = _read_service_view(event)
    _last_view = (event, view)
    return view


def _read_service_view(event: AuditEvent) -> ServiceView | None:
    body = pick_dict(event.request, "service")
    if not body:
        body = event.response if pick(event.response, "metadata") or pick(event.response, "template") else {}
    if not body:
        return None
    name, project, location = run_service_name(event, body)
    is_create = event.method.endswith("CreateService")
    if "spec" in body or ("metadata" in body and "template" not in body):
        return _view_v1(event, body, name, project, location, is_create)
    return _view_v2(body, name, project, location, is_create)


def _view_v1(
    event: AuditEvent, body: Mapping[str, Any], name: str, project: str, location: str, is_create: bool
) -> ServiceView:
    ann = pick_dict(body, "metadata", "annotations")
    tmpl_ann = pick_dict(body, "spec", "template", "metadata", "annotations")
    raw_ingress = ann.get(_A_INGRESS)
    explicit = isinstance(raw_ingress, str) and bool(raw_ingress)
    if not explicit:
        # Missing on create means the default (`all`); the response says what the server chose.
        raw_ingress = pick_dict(event.response, "metadata", "annotations").get(_A_INGRESS, "all")
    tspec = pick_dict(body, "spec", "template", "spec")
    env: list[EnvVar] = []
    for c in pick_list(tspec, "containers"):
        cname = pick_str(c, "name")
        for e in pick_list(c, "env"):
            if not isinstance(e, Mapping):
                continue
            plain = e.get("value") if "valueFrom" not in e and "value_from" not in e else None
            env.append(EnvVar(cname, pick_str(e, "name"), plain if isinstance(plain, str) else None))
    connector = tmpl_ann.get(_A_CONNECTOR) or ""
    netifs = tmpl_ann.get(_A_NETIFS) or ""
    has_vpc = bool(connector or netifs)
    egress = _enum(tmpl_ann.get(_A_EGRESS), EGRESS_INT, EGRESS_V1) if has_vpc else ""
    if has_vpc and not egress:
        egress = "PRIVATE_RANGES_ONLY"  # the API default when a connector is set
    return ServiceView(
        name=name,
        project=project,
        location=location,
        api="v1",
        is_create=is_create,
        ingress=_enum(raw_ingress, INGRESS_INT, INGRESS_V1) or "INGRESS_TRAFFIC_ALL",
        ingress_explicit=explicit,
        invoker_iam_disabled=_is_true(ann.get(_A_INVOKER_OFF)),
        service_account=pick_str(tspec, "serviceAccountName"),
        vpc_connector=connector if isinstance(connector, str) else "",
        vpc_egress=egress,
        has_vpc_access=has_vpc,
        encryption_key=_text(tmpl_ann.get(_A_CMEK)) or _text(ann.get(_A_CMEK)),
        env=tuple(env),
    )


def _is_true(value: Any) -> bool:
    """An annotation switched on: the string "true" (any case), or a JSON true."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _text(value: Any) -> str:
    # Never str() a payload value: a nested one costs its size again, or RecursionError if deep.
    return value if isinstance(value, str) else ""


def _view_v2(body: Mapping[str, Any], name: str, project: str, location: str, is_create: bool) -> ServiceView:
    raw_ingress = pick(body, "ingress")
    explicit = raw_ingress not in (None, "", 0, "INGRESS_TRAFFIC_UNSPECIFIED")
    ingress = _enum(raw_ingress, INGRESS_INT, INGRESS_V1) if explicit else "INGRESS_TRAFFIC_ALL"
    tmpl = pick_dict(body, "template")
    env: list[EnvVar] = []
    for c in pick_list(tmpl, "containers"):
        cname = pick_str(c, "name")
        for e in pick_list(c, "env"):
            if not isinstance(e, Mapping):
                continue
            is_ref = "valueSource" in e or "value_source" in e
            plain = None if is_ref else e.get("value", "")
            env.append(EnvVar(cname, pick_str(e, "name"), plain if isinstance(plain, str) else None))
    vpc = pick_dict(tmpl, "vpcAccess")
    connector = pick_str(vpc, "connector")
    has_vpc = bool(connector or pick_list(vpc, "networkInterfaces"))
    egress = _enum(pick(vpc, "egress"), EGRESS_INT, EGRESS_V1) if has_vpc else ""
    if has_vpc and egress in ("", "VPC_EGRESS_UNSPECIFIED"):
        egress = "PRIVATE_RANGES_ONLY"
    return ServiceView(
        name=name,
        project=project,
        location=location,
        api="v2",
        is_create=is_create,
        ingress=ingress,
        ingress_explicit=explicit,
        invoker_iam_disabled=pick(body, "invokerIamDisabled") is True,
        service_account=pick_str(tmpl, "serviceAccount"),
        vpc_connector=connector,
        vpc_egress=egress,
        has_vpc_access=has_vpc,
        encryption_key=pick_str(tmpl, "encryptionKey"),
        env=tuple(env),
    )


# ---------------------------------------------------------------------------
# IAM: what a SetIamPolicy changed.


@dataclass(frozen=True, slots=True)
class IamDelta:
    """Bindings a SetIamPolicy added and removed, as (role, member) pairs.

    `from_delta` is True when they come from `serviceData.policyDelta` (exact); False when
    only the new policy was available, in which case `added` lists every member of the new
    policy and `removed` is empty (the prior policy is unknown).
    """

    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]
    policy: tuple[tuple[str, str], ...]  # every (role, member) of the new policy, if known
    from_delta: bool


def _bindings(policy: Any) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for b in pick_list(policy, "bindings"):
        role = pick_str(b, "role")
        for m in pick_list(b, "members"):
            if isinstance(m, str):
                out.append((role, m))
    return tuple(out)


_DELTA_ACTIONS = {1: "ADD", 2: "REMOVE"}  # google.iam.v1.BindingDelta.Action, when serialized as numbers


def _delta_action(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _DELTA_ACTIONS.get(value, "")
    return ""


def iam_delta(event: AuditEvent) -> IamDelta:
    policy = pick(event.request, "policy")
    if not isinstance(policy, Mapping):
        policy = event.response
    bindings = _bindings(policy)
    deltas = pick_list(event.service_data, "policyDelta", "bindingDeltas")
    if deltas:
        added: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        for d in deltas:
            role, member, act = pick_str(d, "role"), pick_str(d, "member"), _delta_action(pick(d, "action"))
            (added if act == "ADD" else removed if act == "REMOVE" else []).append((role, member))
        return IamDelta(tuple(added), tuple(removed), bindings, True)
    return IamDelta(bindings, (), bindings, False)


def iam_resource(event: AuditEvent) -> str:
    return pick_str(event.request, "resource") or event.resource_name


# ---------------------------------------------------------------------------
# Cloud KMS names.

_KMS_NAME = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/keyRings/(?P<ring>[^/]+)"
    r"(?:/cryptoKeys/(?P<key>[^/]+)(?:/cryptoKeyVersions/(?P<version>[^/]+))?)?$"
)


def kms_parts(name: str) -> dict[str, str] | None:
    """project, location, ring, key, version of a KMS resource name (missing parts are "")."""
    m = _KMS_NAME.match(name)
    if not m:
        return None
    return {k: v or "" for k, v in m.groupdict().items()}


def kms_type(parts: Mapping[str, str]) -> str:
    if parts["version"]:
        return "kms.cryptoKeyVersion"
    if parts["key"]:
        return "kms.cryptoKey"
    return "kms.keyRing"


def update_mask_text(request: Any) -> str:
    """The request's updateMask as "a,b,c": a FieldMask string, or the `paths` of its JSON
    object form; "" when there is none or it is malformed."""
    mask = pick(request, "updateMask")
    if isinstance(mask, dict):
        paths = mask.get("paths")
        mask = ",".join(p for p in paths if isinstance(p, str)) if isinstance(paths, list) else ""
    return mask if isinstance(mask, str) else ""


# A protobuf Duration spans ±315,576,000,000 s (10,000 years); anything past it is not one.
MAX_DURATION_SECONDS = 315_576_000_000


def duration_seconds(value: Any) -> int | None:
    """Seconds in a protobuf Duration as JSON ("7776000s", "1.5s") or a {seconds: N} dict;
    None when absent or not a Duration (out of range, infinite, not a number)."""
    if isinstance(value, Mapping):
        s = value.get("seconds")
        try:
            seconds = int(s) if s is not None else None
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            return None
    elif isinstance(value, str) and value.endswith("s"):
        try:
            seconds = int(float(value[:-1]))
        except (ValueError, OverflowError):  # "1e400s" is float inf
            return None
    else:
        return None
    return seconds if seconds is not None and abs(seconds) <= MAX_DURATION_SECONDS else None
