"""A Cloud Run service, as one typed view of the v1 (Knative) and v2 shapes, from an audit
entry, a live read or an Asset Inventory record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.names import from_full_name, project_location, run_service_name, run_service_parts

ASSET_TYPE = "run.googleapis.com/Service"

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
_L_LOCATION = "cloud.googleapis.com/location"


@dataclass(frozen=True, slots=True)
class EnvVar:
    container: str
    name: str
    plain_value: str | None  # None when it is a Secret Manager reference


@dataclass(frozen=True, slots=True)
class Traffic:
    """One traffic target: a named revision, or the latest ready one (`revision` "")."""

    revision: str
    percent: int
    latest: bool


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A Cloud Run service: the fields Rampart's rules judge, whatever the source."""

    name: str  # projects/P/locations/L/services/S
    project: str
    location: str
    ingress: str  # v2 enum name; a missing value is the API default, INGRESS_TRAFFIC_ALL
    invoker_iam_disabled: bool
    service_account: str  # "" = the default compute service account
    vpc_connector: str
    vpc_egress: str  # ALL_TRAFFIC | PRIVATE_RANGES_ONLY | "" (no VPC access)
    has_vpc_access: bool
    encryption_key: str
    env: tuple[EnvVar, ...] = ()
    # The revisions that serve traffic, as the service routes it (an entry or record without a
    # traffic block routes everything to the latest revision).
    traffic: tuple[Traffic, ...] = (Traffic("", 100, True),)

    resource_type = "run.service"

    @property
    def serving_revisions(self) -> tuple[str, ...]:
        """Named revisions with a share of traffic ("" stands for the latest ready revision)."""
        return tuple(dict.fromkeys(t.revision for t in self.traffic if t.percent > 0))


# ---------------------------------------------------------------------------
# Adapters.


def _body(event: AuditEvent) -> Mapping[str, Any]:
    """The service a Create/Replace/Update request writes (falling back to the response)."""
    body = pick_dict(event.request, "service")
    if not body and (pick(event.response, "metadata") or pick(event.response, "template")):
        return event.response
    return body


def locate(event: AuditEvent) -> str | None:
    return run_service_name(event, _body(event))[0] or None


def from_entry(event: AuditEvent, name: str) -> ServiceView | None:
    """The service a Create/Replace/Update request writes (falling back to the response), as
    `name` (what `locate` found)."""
    body = _body(event)
    if not body:
        return None
    parts = run_service_parts(name)
    project, location = parts if parts is not None else (event.project, event.location)
    canonical = name
    if _is_v1(body):
        # A missing ingress on create means the default (`all`); the response says what the server chose.
        fallback = pick_dict(event.response, "metadata", "annotations").get(_A_INGRESS, "all")
        return _view_v1(body, canonical, project, location, fallback)
    return _view_v2(body, canonical, project, location)


def from_live(svc: Any) -> ServiceView | None:
    """A live `run_v2.Service` (google-cloud-run) or its REST JSON."""
    if isinstance(svc, Mapping):
        body: Mapping[str, Any] = svc
    else:
        body = type(svc).to_dict(svc, use_integers_for_enums=False, preserving_proto_field_name=False)
    name = pick_str(body, "name")
    project, location = project_location(name)
    return _view_v2(body, name, project, location)


def from_asset(record: Any) -> ServiceView | None:
    """A `run.googleapis.com/Service` record: an asset feed's (or export's) `asset`, whose
    `resource.data` holds the service, or a `SearchAllResources` result, whose
    `versionedResources[].resource` does. The data may be the v1 (Knative) or v2 shape."""
    if pick_str(record, "assetType") != ASSET_TYPE:
        return None
    data = pick_dict(record, "resource", "data")
    if not data:
        versions = [v for v in pick_list(record, "versionedResources") if pick_dict(v, "resource")]
        data = pick_dict(versions[0], "resource") if versions else {}
    if not data:
        return None
    name = from_full_name(pick_str(record, "name"))
    project, location = project_location(name)
    location = location or pick_str(record, "resource", "location") or pick_str(record, "location")
    if _is_v1(data):
        location = location or pick_str(data, "metadata", "labels", _L_LOCATION)
        if not project_location(name)[1]:
            name = f"projects/{pick_str(data, 'metadata', 'namespace')}/locations/{location}/services/" + pick_str(
                data, "metadata", "name"
            )
            project = pick_str(data, "metadata", "namespace")
        ann = pick_dict(data, "metadata", "annotations")
        return _view_v1(data, name, project, location, ann.get(_A_INGRESS, "all"))
    return _view_v2(data, name, project, location)


# ---------------------------------------------------------------------------
# The two shapes.


def _is_v1(body: Mapping[str, Any]) -> bool:
    return "spec" in body or ("metadata" in body and "template" not in body)


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


def _is_true(value: Any) -> bool:
    """An annotation switched on: the string "true" (any case), or a JSON true."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _text(value: Any) -> str:
    # Never str() a payload value: a nested one costs its size again, or RecursionError if deep.
    return value if isinstance(value, str) else ""


def _percent(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3:
        return int(value)
    return 0


def _traffic(targets: list[Any], revision_key: str, is_latest: Any) -> tuple[Traffic, ...]:
    out = [
        Traffic(pick_str(t, revision_key), _percent(pick(t, "percent")), bool(is_latest(t)))
        for t in targets if isinstance(t, Mapping)
    ]
    return tuple(out) if out else (Traffic("", 100, True),)


def _view_v1(body: Mapping[str, Any], name: str, project: str, location: str, fallback_ingress: Any) -> ServiceView:
    ann = pick_dict(body, "metadata", "annotations")
    tmpl_ann = pick_dict(body, "spec", "template", "metadata", "annotations")
    raw_ingress = ann.get(_A_INGRESS)
    if not (isinstance(raw_ingress, str) and raw_ingress):
        raw_ingress = fallback_ingress
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
        ingress=_enum(raw_ingress, INGRESS_INT, INGRESS_V1) or "INGRESS_TRAFFIC_ALL",
        invoker_iam_disabled=_is_true(ann.get(_A_INVOKER_OFF)),
        service_account=pick_str(tspec, "serviceAccountName"),
        vpc_connector=connector if isinstance(connector, str) else "",
        vpc_egress=egress,
        has_vpc_access=has_vpc,
        encryption_key=_text(tmpl_ann.get(_A_CMEK)) or _text(ann.get(_A_CMEK)),
        env=tuple(env),
        traffic=_traffic(pick_list(body, "spec", "traffic"), "revisionName", lambda t: pick(t, "latestRevision") is True),
    )


@dataclass(frozen=True, slots=True)
class Template:
    """What a v2 revision, task or worker template says about identity, network, keys and env."""

    service_account: str
    vpc_connector: str
    vpc_egress: str
    has_vpc_access: bool
    encryption_key: str
    env: tuple[EnvVar, ...]


def template_v2(tmpl: Mapping[str, Any]) -> Template:
    """A v2 RevisionTemplate, TaskTemplate or WorkerPoolRevisionTemplate (REST JSON)."""
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
    return Template(pick_str(tmpl, "serviceAccount"), connector, egress, has_vpc, pick_str(tmpl, "encryptionKey"), tuple(env))


def _view_v2(body: Mapping[str, Any], name: str, project: str, location: str) -> ServiceView:
    raw_ingress = pick(body, "ingress")
    explicit = raw_ingress not in (None, "", 0, "INGRESS_TRAFFIC_UNSPECIFIED")
    ingress = _enum(raw_ingress, INGRESS_INT, INGRESS_V1) if explicit else "INGRESS_TRAFFIC_ALL"
    t = template_v2(pick_dict(body, "template"))
    return ServiceView(
        name=name,
        project=project,
        location=location,
        ingress=ingress,
        invoker_iam_disabled=pick(body, "invokerIamDisabled") is True,
        service_account=t.service_account,
        vpc_connector=t.vpc_connector,
        vpc_egress=t.vpc_egress,
        has_vpc_access=t.has_vpc_access,
        encryption_key=t.encryption_key,
        env=t.env,
        traffic=_traffic(pick_list(body, "traffic"), "revision", _v2_latest),
    )


def _v2_latest(target: Any) -> bool:
    kind = pick(target, "type")
    return kind in ("TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", 1) or (not kind and not pick_str(target, "revision"))


# ---------------------------------------------------------------------------
# Jobs and worker pools (Cloud Run Admin API v2 shapes).

JOB_ASSET_TYPE = "run.googleapis.com/Job"
WORKER_POOL_ASSET_TYPE = "run.googleapis.com/WorkerPool"


@dataclass(frozen=True, slots=True)
class WorkloadView:
    """A Cloud Run job (its task template) or worker pool (its revision template): identity,
    network, key and environment, as for a service."""

    name: str  # projects/P/locations/L/jobs/J | projects/P/locations/L/workerPools/W
    project: str
    location: str
    resource_type: str  # run.job | run.workerPool
    template: Template


def _workload(name: str, resource_type: str, tmpl: Mapping[str, Any]) -> WorkloadView | None:
    project, location = project_location(name)
    if not project or not location:
        return None
    return WorkloadView(name, project, location, resource_type, template_v2(tmpl))


def _locate_v2(event: AuditEvent, body_key: str, id_key: str) -> str | None:
    body = pick_dict(event.request, body_key)
    name = pick_str(body, "name") or pick_str(event.request, "name")
    if name.startswith("projects/"):
        return name
    parent, rid = pick_str(event.request, "parent"), pick_str(event.request, id_key)
    if parent and rid:
        return f"{parent}/{'jobs' if body_key == 'job' else 'workerPools'}/{rid}"
    return event.resource_name or None


def _asset_body(record: Any, asset_type: str) -> tuple[str, Mapping[str, Any]] | None:
    if pick_str(record, "assetType") != asset_type:
        return None
    data = pick_dict(record, "resource", "data")
    if not data:
        versions = [v for v in pick_list(record, "versionedResources") if pick_dict(v, "resource")]
        data = pick_dict(versions[0], "resource") if versions else {}
    return (from_full_name(pick_str(record, "name")) or pick_str(data, "name"), data) if data else None


def locate_job(event: AuditEvent) -> str | None:
    return _locate_v2(event, "job", "jobId")


def job_from_entry(event: AuditEvent, name: str) -> WorkloadView | None:
    """The job a v2 CreateJob / UpdateJob request writes."""
    body = pick_dict(event.request, "job")
    return _workload(name, "run.job", pick_dict(body, "template", "template")) if body else None


def job_from_live(job: Any) -> WorkloadView | None:
    """A live `run_v2.Job` or its REST JSON."""
    body = job if isinstance(job, Mapping) else type(job).to_dict(job, use_integers_for_enums=False, preserving_proto_field_name=False)
    return _workload(pick_str(body, "name"), "run.job", pick_dict(body, "template", "template"))


def job_from_asset(record: Any) -> WorkloadView | None:
    found = _asset_body(record, JOB_ASSET_TYPE)
    return _workload(found[0], "run.job", pick_dict(found[1], "template", "template")) if found else None


def locate_worker_pool(event: AuditEvent) -> str | None:
    return _locate_v2(event, "workerPool", "workerPoolId")


def worker_pool_from_entry(event: AuditEvent, name: str) -> WorkloadView | None:
    """The worker pool a v2 CreateWorkerPool / UpdateWorkerPool request writes."""
    body = pick_dict(event.request, "workerPool")
    return _workload(name, "run.workerPool", pick_dict(body, "template")) if body else None


def worker_pool_from_live(pool: Any) -> WorkloadView | None:
    """A live `run_v2.WorkerPool` or its REST JSON."""
    body = pool if isinstance(pool, Mapping) else type(pool).to_dict(pool, use_integers_for_enums=False, preserving_proto_field_name=False)
    return _workload(pick_str(body, "name"), "run.workerPool", pick_dict(body, "template"))


def worker_pool_from_asset(record: Any) -> WorkloadView | None:
    found = _asset_body(record, WORKER_POOL_ASSET_TYPE)
    return _workload(found[0], "run.workerPool", pick_dict(found[1], "template")) if found else None


SERVICE: Kind[ServiceView] = Kind("run.service", (ASSET_TYPE,), locate, from_entry, from_live, from_asset)
JOB: Kind[WorkloadView] = Kind("run.job", (JOB_ASSET_TYPE,), locate_job, job_from_entry, job_from_live, job_from_asset)
WORKER_POOL: Kind[WorkloadView] = Kind(
    "run.workerPool", (WORKER_POOL_ASSET_TYPE,), locate_worker_pool, worker_pool_from_entry, worker_pool_from_live,
    worker_pool_from_asset,
)
