"""A Cloud Run job or worker pool: the non-serving Cloud Run resources, judged on what a service
is judged on except ingress (they take no requests). From an audit entry (v1 `Jobs.*`, v2
`Jobs.*`, v2 `WorkerPools.*`), a live read (REST JSON or a run_v2 object) or an Asset
Inventory record.

Shapes from `run.v2.json` (GoogleCloudRunV2Job: template.template is a TaskTemplate;
GoogleCloudRunV2WorkerPool: template is a WorkerPoolRevisionTemplate; both carry
serviceAccount, encryptionKey, vpcAccess, containers[].env like a service's revision template)
and `run.v1.json` (Knative Job: spec.template.spec.template.spec, annotations for VPC and CMEK).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.run import EnvVar

JOB_ASSET = "run.googleapis.com/Job"
WORKER_POOL_ASSET = "run.googleapis.com/WorkerPool"
_V2 = re.compile(r"^projects/([^/]+)/locations/([^/]+)/(jobs|workerPools)/([^/]+)$")
_V1 = re.compile(r"^namespaces/([^/]+)/jobs/([^/]+)$")
EGRESS_INT = {0: "VPC_EGRESS_UNSPECIFIED", 1: "ALL_TRAFFIC", 2: "PRIVATE_RANGES_ONLY"}
EGRESS_V1 = {"all-traffic": "ALL_TRAFFIC", "all": "ALL_TRAFFIC", "private-ranges-only": "PRIVATE_RANGES_ONLY"}


@dataclass(frozen=True, slots=True)
class WorkloadView:
    name: str  # projects/P/locations/L/jobs/J or .../workerPools/W
    project: str
    location: str
    kind: str  # job | workerPool
    service_account: str  # "" = the default compute service account
    vpc_connector: str
    vpc_egress: str  # ALL_TRAFFIC | PRIVATE_RANGES_ONLY | "" (no VPC access)
    has_vpc_access: bool
    encryption_key: str
    env: tuple[EnvVar, ...] = ()

    @property
    def resource_type(self) -> str:
        return f"run.{self.kind}"


def parts(name: str) -> tuple[str, str, str] | None:
    """(project, location, kind) of a v2 job or worker pool name; None otherwise."""
    m = _V2.match(name)
    if not m:
        return None
    return m.group(1), m.group(2), "job" if m.group(3) == "jobs" else "workerPool"


def _egress(value: Any) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return EGRESS_INT.get(value, f"UNKNOWN_{value}")
    if isinstance(value, str):
        return EGRESS_V1.get(value, value)
    return ""


def _env(containers: list[Any]) -> tuple[EnvVar, ...]:
    out = []
    for c in containers:
        for e in pick_list(c, "env"):
            if not isinstance(e, Mapping):
                continue
            is_ref = any(k in e for k in ("valueSource", "value_source", "valueFrom", "value_from"))
            plain = None if is_ref else e.get("value", "")
            out.append(EnvVar(pick_str(c, "name"), pick_str(e, "name"), plain if isinstance(plain, str) else None))
    return tuple(out)


def _view_v2(body: Mapping[str, Any], name: str) -> WorkloadView | None:
    where = parts(name)
    if where is None:
        return None
    project, location, kind = where
    tmpl = pick_dict(body, "template")
    if kind == "job":
        tmpl = pick_dict(tmpl, "template")  # ExecutionTemplate.template is the TaskTemplate
    vpc = pick_dict(tmpl, "vpcAccess")
    connector = pick_str(vpc, "connector")
    has_vpc = bool(connector or pick_list(vpc, "networkInterfaces"))
    egress = _egress(pick(vpc, "egress")) if has_vpc else ""
    if has_vpc and egress in ("", "VPC_EGRESS_UNSPECIFIED"):
        egress = "PRIVATE_RANGES_ONLY"
    return WorkloadView(name, project, location, kind, pick_str(tmpl, "serviceAccount"), connector, egress, has_vpc,
                        pick_str(tmpl, "encryptionKey"), _env(pick_list(tmpl, "containers")))


def _view_v1(body: Mapping[str, Any], name: str) -> WorkloadView | None:
    where = parts(name)
    if where is None:
        return None
    outer = pick_dict(body, "spec", "template")  # ExecutionTemplateSpec
    task = pick_dict(outer, "spec", "template", "spec")  # TaskSpec
    ann = {**pick_dict(body, "metadata", "annotations"), **pick_dict(outer, "metadata", "annotations")}
    connector = ann.get("run.googleapis.com/vpc-access-connector") or ""
    netifs = ann.get("run.googleapis.com/network-interfaces") or ""
    has_vpc = bool(connector or netifs)
    egress = _egress(ann.get("run.googleapis.com/vpc-access-egress")) if has_vpc else ""
    if has_vpc and not egress:
        egress = "PRIVATE_RANGES_ONLY"
    key = ann.get("run.googleapis.com/encryption-key")
    return WorkloadView(name, where[0], where[1], "job", pick_str(task, "serviceAccountName"),
                        connector if isinstance(connector, str) else "", egress, has_vpc,
                        key if isinstance(key, str) else "", _env(pick_list(task, "containers")))


# ---------------------------------------------------------------------------
# Adapters.


def locate(event: AuditEvent) -> str | None:
    body = pick_dict(event.request, "job") or pick_dict(event.request, "workerPool")
    for candidate in (event.resource_name, pick_str(event.request, "name"), pick_str(event.request, "resource"),
                      pick_str(body, "name")):
        if parts(candidate):
            return candidate
        m = _V1.match(candidate)
        if m and event.location:
            return f"projects/{m.group(1)}/locations/{event.location}/jobs/{m.group(2)}"
    parent = pick_str(event.request, "parent")
    for id_key, coll in (("jobId", "jobs"), ("workerPoolId", "workerPools")):
        wid = pick_str(event.request, id_key)
        if wid and parts(f"{parent}/{coll}/{wid}"):
            return f"{parent}/{coll}/{wid}"
    return None


def _is_v1(body: Mapping[str, Any]) -> bool:
    return "spec" in body or pick_str(body, "apiVersion").startswith("run.googleapis.com/v1")


def from_entry(event: AuditEvent, name: str) -> WorkloadView | None:
    body = pick_dict(event.request, "job") or pick_dict(event.request, "workerPool")
    if not body:
        body = event.response if pick(event.response, "template") is not None or pick(event.response, "spec") else {}
    if not body:
        return None
    return _view_v1(body, name) if _is_v1(body) else _view_v2(body, name)


def from_live(obj: Any) -> WorkloadView | None:
    """A live run_v2 Job / WorkerPool, or its REST JSON."""
    if isinstance(obj, Mapping):
        body: Mapping[str, Any] = obj
    else:
        body = type(obj).to_dict(obj, use_integers_for_enums=False, preserving_proto_field_name=False)
    return _view_v2(body, pick_str(body, "name"))


def from_asset(record: Any) -> WorkloadView | None:
    if pick_str(record, "assetType") not in (JOB_ASSET, WORKER_POOL_ASSET):
        return None
    data = pick_dict(record, "resource", "data")
    if not data:
        versions = [v for v in pick_list(record, "versionedResources") if pick_dict(v, "resource")]
        data = pick_dict(versions[0], "resource") if versions else {}
    name = pick_str(record, "name").removeprefix("//run.googleapis.com/")
    if not data or not parts(name):
        return None
    return _view_v1(data, name) if _is_v1(data) else _view_v2(data, name)


WORKLOAD: Kind[WorkloadView] = Kind("run.workload", (JOB_ASSET, WORKER_POOL_ASSET), locate, from_entry, from_live,
                                    from_asset)
