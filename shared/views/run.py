"""A Cloud Run service, as one typed view of the v1 (Knative) and v2 shapes, from an audit
entry, a live read or an Asset Inventory record."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.fields import asset_data, enum_name
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
    """One traffic target: a named revision (its short name), or the latest ready one; a tag
    makes a revision reachable at its own URL whatever its percentage."""

    revision: str
    percent: int
    latest: bool
    tag: str = ""


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
    # Its labels, as written (an audit entry's copy of Rampart's own quarantine carries its label).
    labels: Mapping[str, Any] = field(default_factory=dict)

    resource_type = "run.service"

    @property
    def serving_revisions(self) -> tuple[str, ...]:
        """Named revisions with a share of traffic ("" stands for the latest ready revision)."""
        return tuple(dict.fromkeys(t.revision for t in self.traffic if t.percent > 0))

    def pinned(self) -> tuple[Traffic, ...]:
        """Targets that serve a named revision rather than the latest: with a share of the
        traffic, or reachable by tag. That revision runs its own configuration, not the template's."""
        return tuple(t for t in self.traffic if t.revision and not t.latest and (t.percent > 0 or t.tag))


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
    found = asset_data(record, ASSET_TYPE)
    if found is None or not found[1]:
        return None
    data = found[1]
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
        # A record has no response to fall back on: past its own annotation, the API default.
        return _view_v1(data, name, project, location, "all")
    return _view_v2(data, name, project, location)


# ---------------------------------------------------------------------------
# The two shapes.


def _is_v1(body: Mapping[str, Any]) -> bool:
    return "spec" in body or ("metadata" in body and "template" not in body)


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
        Traffic(pick_str(t, revision_key).rsplit("/", 1)[-1], _percent(pick(t, "percent")), bool(is_latest(t)),
                pick_str(t, "tag"))
        for t in targets if isinstance(t, Mapping)
    ]
    return tuple(out) if out else (Traffic("", 100, True),)


def _view_v1(body: Mapping[str, Any], name: str, project: str, location: str, fallback_ingress: Any) -> ServiceView:
    ann = pick_dict(body, "metadata", "annotations")
    tmpl_ann = pick_dict(body, "spec", "template", "metadata", "annotations")
    raw_ingress = ann.get(_A_INGRESS)
    if not (isinstance(raw_ingress, str) and raw_ingress):
        raw_ingress = fallback_ingress
    t = template_v1(pick_dict(body, "spec", "template", "spec"), tmpl_ann, _text(tmpl_ann.get(_A_CMEK)) or _text(ann.get(_A_CMEK)))
    return ServiceView(
        name=name,
        project=project,
        location=location,
        ingress=enum_name(raw_ingress, INGRESS_INT, INGRESS_V1) or "INGRESS_TRAFFIC_ALL",
        invoker_iam_disabled=_is_true(ann.get(_A_INVOKER_OFF)),
        service_account=t.service_account,
        vpc_connector=t.vpc_connector,
        vpc_egress=t.vpc_egress,
        has_vpc_access=t.has_vpc_access,
        encryption_key=t.encryption_key,
        env=t.env,
        traffic=_traffic(pick_list(body, "spec", "traffic"), "revisionName", lambda t: pick(t, "latestRevision") is True),
        labels=pick_dict(body, "metadata", "labels"),
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


_REF_KEYS = ("valueSource", "value_source", "valueFrom", "value_from")  # v2 / v1 Secret Manager references


def _env(containers: list[Any]) -> tuple[EnvVar, ...]:
    out: list[EnvVar] = []
    for c in containers:
        cname = pick_str(c, "name")
        for e in pick_list(c, "env"):
            if not isinstance(e, Mapping):
                continue
            plain = None if any(k in e for k in _REF_KEYS) else e.get("value", "")
            out.append(EnvVar(cname, pick_str(e, "name"), plain if isinstance(plain, str) else None))
    return tuple(out)


def template_v1(spec: Mapping[str, Any], ann: Mapping[str, Any], encryption_key: str) -> Template:
    """A v1 (Knative) RevisionSpec or TaskSpec, with the annotations that carry VPC access."""
    connector = ann.get(_A_CONNECTOR) or ""
    has_vpc = bool(connector or ann.get(_A_NETIFS))
    egress = enum_name(ann.get(_A_EGRESS), EGRESS_INT, EGRESS_V1) if has_vpc else ""
    if has_vpc and not egress:
        egress = "PRIVATE_RANGES_ONLY"  # the API default when a connector is set
    return Template(pick_str(spec, "serviceAccountName"), connector if isinstance(connector, str) else "", egress, has_vpc,
                    encryption_key, _env(pick_list(spec, "containers")))


def template_v2(tmpl: Mapping[str, Any]) -> Template:
    """A v2 RevisionTemplate, TaskTemplate or WorkerPoolRevisionTemplate (REST JSON)."""
    env = _env(pick_list(tmpl, "containers"))
    vpc = pick_dict(tmpl, "vpcAccess")
    connector = pick_str(vpc, "connector")
    has_vpc = bool(connector or pick_list(vpc, "networkInterfaces"))
    egress = enum_name(pick(vpc, "egress"), EGRESS_INT, EGRESS_V1) if has_vpc else ""
    if has_vpc and egress in ("", "VPC_EGRESS_UNSPECIFIED"):
        egress = "PRIVATE_RANGES_ONLY"
    return Template(pick_str(tmpl, "serviceAccount"), connector, egress, has_vpc, pick_str(tmpl, "encryptionKey"), env)


def _view_v2(body: Mapping[str, Any], name: str, project: str, location: str) -> ServiceView:
    raw_ingress = pick(body, "ingress")
    explicit = raw_ingress not in (None, "", 0, "INGRESS_TRAFFIC_UNSPECIFIED")
    ingress = enum_name(raw_ingress, INGRESS_INT, INGRESS_V1) if explicit else "INGRESS_TRAFFIC_ALL"
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
        labels=pick_dict(body, "labels"),
    )


def _v2_latest(target: Any) -> bool:
    # An unset type is UNSPECIFIED: absent in REST JSON, its name or 0 in a client object's to_dict.
    kind = pick(target, "type")
    unset = kind in (None, "", 0, "TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED")
    return kind in ("TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", 1) or (unset and not pick_str(target, "revision"))


# ---------------------------------------------------------------------------
# Jobs and worker pools: v2 `Jobs.*` and `WorkerPools.*` (run.v2.json GoogleCloudRunV2Job:
# template.template is a TaskTemplate; GoogleCloudRunV2WorkerPool: template is a
# WorkerPoolRevisionTemplate) and v1 `Jobs.*` (run.v1.json Knative Job:
# spec.template.spec.template.spec, annotations for VPC access and CMEK).

JOB_ASSET_TYPE = "run.googleapis.com/Job"
WORKER_POOL_ASSET_TYPE = "run.googleapis.com/WorkerPool"
_WORKLOAD_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/(jobs|workerPools)/([^/]+)$")
_V1_JOB_NAME = re.compile(r"^namespaces/([^/]+)/jobs/([^/]+)$")


@dataclass(frozen=True, slots=True)
class WorkloadView:
    """A Cloud Run job (its task template) or worker pool (its revision template): identity,
    network, key and environment, as for a service (the runtime rules judge it with the same code)."""

    name: str  # projects/P/locations/L/jobs/J | projects/P/locations/L/workerPools/W
    project: str
    location: str
    resource_type: str  # run.job | run.workerPool
    template: Template

    @property
    def kind(self) -> str:
        """job | workerPool"""
        return self.resource_type.removeprefix("run.")

    @property
    def service_account(self) -> str:
        return self.template.service_account

    @property
    def vpc_connector(self) -> str:
        return self.template.vpc_connector

    @property
    def vpc_egress(self) -> str:
        return self.template.vpc_egress

    @property
    def has_vpc_access(self) -> bool:
        return self.template.has_vpc_access

    @property
    def encryption_key(self) -> str:
        return self.template.encryption_key

    @property
    def env(self) -> tuple[EnvVar, ...]:
        return self.template.env


def workload_parts(name: str) -> tuple[str, str, str] | None:
    """(project, location, resource_type) of a job or worker pool name; None otherwise."""
    m = _WORKLOAD_NAME.match(name)
    if not m:
        return None
    return m.group(1), m.group(2), "run.job" if m.group(3) == "jobs" else "run.workerPool"


def _is_v1_workload(body: Mapping[str, Any]) -> bool:
    return "spec" in body or pick_str(body, "apiVersion").startswith("run.googleapis.com/v1")


def _workload(name: str, body: Mapping[str, Any]) -> WorkloadView | None:
    where = workload_parts(name)
    if where is None:
        return None
    project, location, resource_type = where
    if _is_v1_workload(body):
        if resource_type != "run.job":
            return None  # worker pools have no v1 shape
        outer = pick_dict(body, "spec", "template")  # ExecutionTemplateSpec
        ann = {**pick_dict(body, "metadata", "annotations"), **pick_dict(outer, "metadata", "annotations")}
        t = template_v1(pick_dict(outer, "spec", "template", "spec"), ann, _text(ann.get(_A_CMEK)))
    else:
        tmpl = pick_dict(body, "template")
        t = template_v2(pick_dict(tmpl, "template") if resource_type == "run.job" else tmpl)
    return WorkloadView(name, project, location, resource_type, t)


def _workload_body(event: AuditEvent) -> Mapping[str, Any]:
    body = pick_dict(event.request, "job") or pick_dict(event.request, "workerPool")
    if not body and (pick(event.response, "template") is not None or pick(event.response, "spec")):
        return event.response
    return body


def locate_workload(event: AuditEvent) -> str | None:
    """The v2 name of the job or worker pool an entry concerns (a v1 job's namespace and the
    entry's location make one)."""
    body = _workload_body(event)
    for candidate in (event.resource_name, pick_str(event.request, "name"), pick_str(event.request, "resource"),
                      pick_str(body, "name")):
        if workload_parts(candidate):
            return candidate
        m = _V1_JOB_NAME.match(candidate)
        if m and event.location:
            return f"projects/{m.group(1)}/locations/{event.location}/jobs/{m.group(2)}"
    parent = pick_str(event.request, "parent")
    for id_key, collection in (("jobId", "jobs"), ("workerPoolId", "workerPools")):
        wid = pick_str(event.request, id_key)
        if wid and workload_parts(f"{parent}/{collection}/{wid}"):
            return f"{parent}/{collection}/{wid}"
    return None


def workload_from_entry(event: AuditEvent, name: str) -> WorkloadView | None:
    """The job or worker pool a Create/Replace/Update request writes (falling back to the response)."""
    body = _workload_body(event)
    return _workload(name, body) if body else None


def workload_from_live(obj: Any) -> WorkloadView | None:
    """A live `run_v2.Job` / `run_v2.WorkerPool`, or its REST JSON."""
    body = obj if isinstance(obj, Mapping) else type(obj).to_dict(obj, use_integers_for_enums=False, preserving_proto_field_name=False)
    return _workload(pick_str(body, "name"), body)


def workload_from_asset(record: Any) -> WorkloadView | None:
    """A `run.googleapis.com/Job` or `/WorkerPool` record; its data may be the v1 or v2 shape."""
    found = asset_data(record, JOB_ASSET_TYPE, WORKER_POOL_ASSET_TYPE)
    return _workload(*found) if found is not None and found[1] else None


def _narrowed(resource_type: str, collection: str, asset_type: str) -> Kind[WorkloadView]:
    """The workload kind for one resource type: the same adapters, refusing the other type."""

    def only(view: WorkloadView | None) -> WorkloadView | None:
        return view if view is not None and view.resource_type == resource_type else None

    def locate_one(event: AuditEvent) -> str | None:
        name = locate_workload(event)
        return name if name and f"/{collection}/" in name else None

    return Kind(resource_type, (asset_type,), locate_one, lambda event, name: only(workload_from_entry(event, name)),
                lambda obj: only(workload_from_live(obj)), lambda record: only(workload_from_asset(record)))


SERVICE: Kind[ServiceView] = Kind("run.service", (ASSET_TYPE,), locate, from_entry, from_live, from_asset)
# One kind for both (the rules that judge a job judge a worker pool alike), and one for each.
WORKLOAD: Kind[WorkloadView] = Kind(
    "run.workload", (JOB_ASSET_TYPE, WORKER_POOL_ASSET_TYPE), locate_workload, workload_from_entry, workload_from_live,
    workload_from_asset,
)
JOB: Kind[WorkloadView] = _narrowed("run.job", "jobs", JOB_ASSET_TYPE)
WORKER_POOL: Kind[WorkloadView] = _narrowed("run.workerPool", "workerPools", WORKER_POOL_ASSET_TYPE)
locate_job, job_from_entry, job_from_live, job_from_asset = JOB.locate, JOB.from_entry, JOB.from_live, JOB.from_asset
locate_worker_pool, worker_pool_from_entry, worker_pool_from_live, worker_pool_from_asset = (
    WORKER_POOL.locate, WORKER_POOL.from_entry, WORKER_POOL.from_live, WORKER_POOL.from_asset)
