"""Cloud Run Admin API v2 (run.googleapis.com), services and their operations and IAM policies.

Checked against the discovery document `run.v2.json` (google-api-python-client's
`googleapiclient/discovery_cache/documents/`): every route names its discovery method id.

    GET|POST /v2/projects/P/locations/L/services (list, create: serviceId, validateOnly)
    GET|PATCH|DELETE /v2/projects/P/locations/L/services/S  (PATCH: updateMask, validateOnly,
             allowMissing; etag checked)
    GET .../services/S:getIamPolicy  POST .../services/S:setIamPolicy|:testIamPermissions
    GET .../services/S/revisions/R  (each write snapshots its template as the new latest revision;
             earlier ones can be seeded under "revisions")
    GET|DELETE /v2/projects/P/locations/L/operations/O, POST .../operations/O:wait
    GET /v2/projects/P/locations/L/jobs/J, GET .../workerPools/W  (seeded under "jobs" and
             "workerPools"; Rampart reads them, the sweep for a record without data) and their IAM
             policies (:getIamPolicy, :setIamPolicy, :testIamPermissions, as for a service)
Writes answer a done Operation whose `response` and `metadata` are the typed Service.
"""

from __future__ import annotations

import base64
import re
import uuid
import zlib
from collections.abc import Callable

from infra.local.standin import iam, operations
from infra.local.standin.core import (
    DEFAULT_ACTOR,
    SEG,
    Api,
    ApiError,
    Collection,
    Json,
    Response,
    Route,
    as_bool,
    bad,
    clone,
    del_path,
    enum,
    get_path,
    json_response,
    mask_paths,
    merge_patch,
    normalize_enums,
    not_found,
    page,
    seq,
    set_path,
)
from infra.local.standin.store import POLICIES, Store

SERVICES = "services"
REVISIONS = "revisions"
JOBS = "jobs"
WORKER_POOLS = "workerPools"
SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"

# Enum tables, copied from the protos (google-cloud-run 0.16.2); keys are JSON paths.
INGRESS = seq(
    "INGRESS_TRAFFIC_UNSPECIFIED", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_NONE",
)
VPC_EGRESS = seq("VPC_EGRESS_UNSPECIFIED", "ALL_TRAFFIC", "PRIVATE_RANGES_ONLY")
LAUNCH_STAGE = enum(
    (0, "LAUNCH_STAGE_UNSPECIFIED"), (6, "UNIMPLEMENTED"), (7, "PRELAUNCH"), (1, "EARLY_ACCESS"),
    (2, "ALPHA"), (3, "BETA"), (4, "GA"), (5, "DEPRECATED"),
)
CONDITION_STATE = seq(
    "STATE_UNSPECIFIED", "CONDITION_PENDING", "CONDITION_RECONCILING", "CONDITION_FAILED",
    "CONDITION_SUCCEEDED",
)
CONDITION_SEVERITY = seq("SEVERITY_UNSPECIFIED", "ERROR", "WARNING", "INFO")
CONDITION_COMMON_REASON = enum(
    (0, "COMMON_REASON_UNDEFINED"), (1, "UNKNOWN"), (3, "REVISION_FAILED"),
    (4, "PROGRESS_DEADLINE_EXCEEDED"), (6, "CONTAINER_MISSING"), (7, "CONTAINER_PERMISSION_DENIED"),
    (8, "CONTAINER_IMAGE_UNAUTHORIZED"), (9, "CONTAINER_IMAGE_AUTHORIZATION_CHECK_FAILED"),
    (10, "ENCRYPTION_KEY_PERMISSION_DENIED"), (11, "ENCRYPTION_KEY_CHECK_FAILED"),
    (12, "SECRETS_ACCESS_CHECK_FAILED"), (13, "WAITING_FOR_OPERATION"), (14, "IMMEDIATE_RETRY"),
    (15, "POSTPONED_RETRY"), (16, "INTERNAL"), (17, "VPC_NETWORK_NOT_FOUND"),
)
CONDITION_REVISION_REASON = seq(
    "REVISION_REASON_UNDEFINED", "PENDING", "RESERVE", "RETIRED", "RETIRING", "RECREATING",
    "HEALTH_CHECK_CONTAINER_ERROR", "CUSTOMIZED_PATH_RESPONSE_PENDING", "MIN_INSTANCES_NOT_PROVISIONED",
    "ACTIVE_REVISION_LIMIT_REACHED", "NO_DEPLOYMENT", "HEALTH_CHECK_SKIPPED", "MIN_INSTANCES_WARMING",
)
CONDITION_EXECUTION_REASON = seq(
    "EXECUTION_REASON_UNDEFINED", "JOB_STATUS_SERVICE_POLLING_ERROR", "NON_ZERO_EXIT_CODE",
    "CANCELLED", "CANCELLING", "DELETED", "DELAYED_START_PENDING",
)
TRAFFIC_TYPE = seq(
    "TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED", "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
    "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
)

RUN_SERVICE_ENUMS: dict[str, dict[int, str]] = {
    "ingress": INGRESS,
    "launchStage": LAUNCH_STAGE,
    "template.vpcAccess.egress": VPC_EGRESS,
    "template.volumes.emptyDir.medium": seq("MEDIUM_UNSPECIFIED", "MEMORY"),
    "template.executionEnvironment": seq(
        "EXECUTION_ENVIRONMENT_UNSPECIFIED", "EXECUTION_ENVIRONMENT_GEN1", "EXECUTION_ENVIRONMENT_GEN2"
    ),
    "template.encryptionKeyRevocationAction": seq(
        "ENCRYPTION_KEY_REVOCATION_ACTION_UNSPECIFIED", "PREVENT_NEW", "SHUTDOWN"
    ),
    "traffic.type": TRAFFIC_TYPE,
    "scaling.scalingMode": seq("SCALING_MODE_UNSPECIFIED", "AUTOMATIC", "MANUAL"),
    "terminalCondition.state": CONDITION_STATE,
    "terminalCondition.severity": CONDITION_SEVERITY,
    "terminalCondition.reason": CONDITION_COMMON_REASON,
    "terminalCondition.revisionReason": CONDITION_REVISION_REASON,
    "terminalCondition.executionReason": CONDITION_EXECUTION_REASON,
    "conditions.state": CONDITION_STATE,
    "conditions.severity": CONDITION_SEVERITY,
    "conditions.reason": CONDITION_COMMON_REASON,
    "conditions.revisionReason": CONDITION_REVISION_REASON,
    "conditions.executionReason": CONDITION_EXECUTION_REASON,
    "trafficStatuses.type": TRAFFIC_TYPE,
}

# Service fields marked "Output only" in google/cloud/run/v2/service.proto (plus name and etag,
# which the path and the precondition carry): a PATCH body's values for them are ignored.
SERVICE_OUTPUT_ONLY = frozenset({
    "name", "uid", "generation", "createTime", "updateTime", "deleteTime", "expireTime", "creator",
    "lastModifier", "urls", "observedGeneration", "terminalCondition", "conditions",
    "latestReadyRevision", "latestCreatedRevision", "trafficStatuses", "uri", "satisfiesPzs",
    "threatDetectionEnabled", "reconciling", "etag",
})
RESERVED_NAMESPACES = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev",
                       "autoscaling.knative.dev")

SERVICE_RE = re.compile(rf"^(projects/{SEG}/locations/{SEG})/services/({SEG})$")
REVISION_RE = re.compile(rf"^projects/{SEG}/locations/{SEG}/services/{SEG}/revisions/{SEG}$")
JOB_RE = re.compile(rf"^projects/{SEG}/locations/{SEG}/jobs/{SEG}$")
WORKER_POOL_RE = re.compile(rf"^projects/{SEG}/locations/{SEG}/workerPools/{SEG}$")
SERVICE_ID_RE = re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$")


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

def services(store: Store) -> dict[str, Json]:
    return store.tables[SERVICES]


def service_etag(store: Store) -> str:
    # Quoted, as AIP-154 asks and Cloud Run v2 returns; opaque to callers.
    token = base64.urlsafe_b64encode(store.seq().to_bytes(6, "big") + uuid.uuid4().bytes[:6])
    return '"' + token.decode().rstrip("=") + '"'


def put_service(store: Store, svc: Json) -> None:
    name = svc["name"]
    services(store)[name] = svc
    m = SERVICE_RE.match(name)
    assert m is not None
    store.index(m.group(1), SERVICES, name)
    rev = svc.get("latestCreatedRevision")
    if rev and rev not in store.tables[REVISIONS]:
        # A revision is an immutable snapshot of the template it was made from (GoogleCloudRunV2Revision).
        store.tables[REVISIONS][rev] = {**clone(svc.get("template") or {}), "name": rev, "service": name,
                                        "createTime": svc.get("updateTime", store.now())}


def drop_service(store: Store, name: str) -> None:
    services(store).pop(name, None)
    store.tables[POLICIES].pop(name, None)
    m = SERVICE_RE.match(name)
    if m:
        store.unindex(m.group(1), SERVICES, name)


def _suffix(store: Store) -> str:
    # Revision names end in three letters; derive them from the sequence, so runs repeat.
    n = store.seq()
    return "".join("abcdefghijklmnopqrstuvwxyz"[(n // 26**i) % 26] for i in range(3))


def fill_service(store: Store, svc: Json, actor: str) -> Json:
    """Add the output-only fields a real service carries, keeping any the caller gave."""
    m = SERVICE_RE.match(svc["name"])
    assert m is not None
    parent, sid = m.group(1), m.group(2)
    location = parent.rsplit("/", 1)[1]
    now = store.now()
    svc.setdefault("uid", str(uuid.uuid4()))
    svc.setdefault("generation", "1")
    svc.setdefault("observedGeneration", svc["generation"])
    svc.setdefault("createTime", now)
    svc.setdefault("updateTime", now)
    svc.setdefault("creator", actor)
    svc.setdefault("lastModifier", actor)
    svc.setdefault("launchStage", "GA")
    svc.setdefault("ingress", "INGRESS_TRAFFIC_ALL")  # the API's default when unset
    uri = f"https://{sid}-{zlib.crc32(parent.encode()):010d}.{location}.run.app"
    svc.setdefault("uri", uri)
    svc.setdefault("urls", [svc["uri"]])
    revision = f"{svc['name']}/revisions/{sid}-{int(svc['generation']):05d}-{_suffix(store)}"
    svc.setdefault("latestCreatedRevision", revision)
    svc.setdefault("latestReadyRevision", svc["latestCreatedRevision"])
    svc.setdefault("terminalCondition", {"type": "Ready", "state": "CONDITION_SUCCEEDED",
                                         "lastTransitionTime": now})
    svc.setdefault("etag", service_etag(store))
    return svc


def bump_service(store: Store, old: Json | None, new: Json, actor: str) -> Json:
    """Record a write: new etag, generation, times, modifier; a new revision if the template moved."""
    now = store.now()
    generation = int((old or new).get("generation", "0")) + 1
    new["generation"] = new["observedGeneration"] = str(generation)
    new["updateTime"] = now
    new["lastModifier"] = actor
    new["etag"] = service_etag(store)
    if old is not None and old.get("template") != new.get("template"):
        sid = new["name"].rsplit("/", 1)[1]
        rev = f"{new['name']}/revisions/{sid}-{generation:05d}-{_suffix(store)}"
        new["latestCreatedRevision"] = new["latestReadyRevision"] = rev
    if "terminalCondition" in new:
        new["terminalCondition"]["lastTransitionTime"] = now
    return new


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def _check_reserved(kind: str, new: Json | None, old: Json | None) -> None:
    """Cloud Run v2 rejects system-namespace labels/annotations; keys already present may stay."""
    for key, value in (new or {}).items():
        prefix = key.split("/", 1)[0] if "/" in key else ""
        if not prefix or not any(prefix == ns or prefix.endswith("." + ns) for ns in RESERVED_NAMESPACES):
            continue
        if old is not None and old.get(key) == value:
            continue
        bad(f"{kind} '{key}' is in a system namespace: Cloud Run API v2 does not support {kind}s "
            f"with {', '.join(RESERVED_NAMESPACES)} namespaces; use the corresponding v2 field")


def _validate_service(svc: Json, old: Json | None) -> None:
    normalize_enums(svc, RUN_SERVICE_ENUMS)
    template = svc.get("template")
    if not isinstance(template, dict):
        bad("service.template is required: expected an object with containers, found "
            f"{type(template).__name__}")
    containers = template.get("containers")
    if not isinstance(containers, list) or not containers or not all(
        isinstance(c, dict) and c.get("image") for c in containers
    ):
        bad("service.template.containers: expected at least one container with an image")
    for where, new_map, old_map in (
        ("label", svc.get("labels"), (old or {}).get("labels")),
        ("annotation", svc.get("annotations"), (old or {}).get("annotations")),
        ("label", template.get("labels"), ((old or {}).get("template") or {}).get("labels")),
        ("annotation", template.get("annotations"),
         ((old or {}).get("template") or {}).get("annotations")),
    ):
        if new_map is not None and not isinstance(new_map, dict):
            bad(f"{where}s: expected a map of strings, found {type(new_map).__name__}")
        _check_reserved(where, new_map, old_map if old is not None else None)


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------

def _service(store: Store, name: str) -> Json:
    svc = services(store).get(name)
    if svc is None:
        not_found(name)
    return svc


def _operation(store: Store, name: str, svc: Json, record: bool = True) -> Response:
    return operations.answer(store, name.split("/services/", 1)[0], SERVICE_TYPE, svc, record)


def get_service(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    return json_response(200, _service(store, path["name"]))


def list_services(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    names = store.listed(path["parent"], SERVICES)
    page_names, token = page(names, params)
    out: Json = {"services": [services(store)[n] for n in page_names]} if page_names else {}
    if token:
        out["nextPageToken"] = token
    return json_response(200, out)


def create_service(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    sid = params.get("serviceId", "")
    if not SERVICE_ID_RE.match(sid):
        bad(f"serviceId: expected lowercase letters, digits and hyphens (1-49, starting with a "
            f"letter), found {sid!r}")
    name = f"{path['parent']}/services/{sid}"
    if name in services(store):
        raise ApiError(409, f"Resource '{name}' already exists", "ALREADY_EXISTS")
    return _create(store, name, body, as_bool(params.get("validateOnly")))


def _create(store: Store, name: str, body: Json, validate_only: bool) -> Response:
    svc = {k: v for k, v in body.items() if k not in SERVICE_OUTPUT_ONLY}
    svc["name"] = name
    _validate_service(svc, None)
    fill_service(store, svc, store.caller)
    if not validate_only:
        put_service(store, svc)
    return _operation(store, name, svc, record=not validate_only)


def patch_service(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["name"]
    if body.get("name") not in (None, "", name):
        bad(f"service.name: expected {name} (the URL's name) or nothing, found {body['name']!r}")
    old = services(store).get(name)
    validate_only = as_bool(params.get("validateOnly"))
    if old is None:
        if as_bool(params.get("allowMissing")):
            return _create(store, name, body, validate_only)
        not_found(name)
    etag = body.get("etag")
    if etag and etag != old["etag"]:
        raise ApiError(409, f"Etag mismatch for '{name}': the service changed since it was read "
                            f"(request etag {etag}, current etag {old['etag']}); read it again",
                       "ABORTED")
    mask = mask_paths(params.get("updateMask"))
    if mask is None and store.settings.get("run_patch_without_mask") == "implied":
        mask = sorted(body)  # AIP-134: the fields set on the wire (proto3 JSON leaves defaults out)
    new = clone(old)
    if mask is None or mask == ["*"]:
        for k in [k for k in new if k not in SERVICE_OUTPUT_ONLY]:
            del new[k]
        new.update({k: clone(v) for k, v in body.items() if k not in SERVICE_OUTPUT_ONLY})
    else:
        for p in mask:
            parts = p.split(".")
            if parts[0] in SERVICE_OUTPUT_ONLY:
                continue
            found, value = get_path(body, parts)
            if found:
                set_path(new, parts, clone(value))
            else:
                del_path(new, parts)
    new.setdefault("ingress", "INGRESS_TRAFFIC_ALL")  # unset ingress means ALL on Cloud Run
    _validate_service(new, old)
    bump_service(store, old, new, store.caller)
    if not validate_only:
        put_service(store, new)
    return _operation(store, name, new, record=not validate_only)


def get_revision(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    return _get_stored(store, REVISIONS, path["name"])


def get_job(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    return _get_stored(store, JOBS, path["name"])


def get_worker_pool(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    return _get_stored(store, WORKER_POOLS, path["name"])


def _get_stored(store: Store, table: str, name: str) -> Response:
    """GET of a resource kept as stored (a revision, a job, a worker pool), or 404."""
    found = store.tables[table].get(name)
    if found is None:
        not_found(name)
    return json_response(200, found)


def _workload_seeder(table: str) -> Callable[[Store, int, Json], None]:
    """A job or worker pool as seeded, with the output-only fields GET answers (run.v2.json's
    Job / WorkerPool: uid, generation, createTime, updateTime, creator, lastModifier, etag)."""

    def seed(store: Store, index: int, obj: Json) -> None:
        now = store.now()
        for key, value in (("uid", str(uuid.uuid4())), ("generation", "1"), ("createTime", now), ("updateTime", now),
                           ("creator", DEFAULT_ACTOR), ("lastModifier", DEFAULT_ACTOR), ("etag", f'"{uuid.uuid4().hex[:16]}"')):
            obj.setdefault(key, value)
        store.tables[table][obj["name"]] = obj

    return seed


def _workload_patch(table: str) -> Callable[[Store, str, Json, str], None]:
    def patch(store: Store, name: str, change: Json, actor: str) -> None:
        new = merge_patch(clone(store.tables[table][name]), change)
        new.update(name=name, lastModifier=actor, updateTime=store.now(), etag=f'"{uuid.uuid4().hex[:16]}"')
        store.tables[table][name] = new

    return patch


def _seed_revision(store: Store, index: int, rev: Json) -> None:
    rev.setdefault("service", rev["name"].split("/revisions/", 1)[0])
    store.tables[REVISIONS][rev["name"]] = rev


def delete_service(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["name"]
    svc = _service(store, name)
    etag = params.get("etag")
    if etag and etag != svc["etag"]:
        raise ApiError(409, f"Etag mismatch for '{name}' (request etag {etag}, current etag "
                            f"{svc['etag']})", "ABORTED")
    if as_bool(params.get("validateOnly")):
        return _operation(store, name, svc, record=False)
    gone = dict(svc, deleteTime=store.now())
    drop_service(store, name)
    return _operation(store, name, gone)


# ---------------------------------------------------------------------------------------------
# Seeding and the admin API's concurrent writer
# ---------------------------------------------------------------------------------------------

def _seed(store: Store, index: int, svc: Json) -> None:
    normalize_enums(svc, RUN_SERVICE_ENUMS)
    svc.setdefault("template", {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]})
    put_service(store, fill_service(store, svc, store.caller))


def _view(store: Store, name: str) -> Json:
    return services(store)[name]


def _patch(store: Store, name: str, patch: Json, actor: str) -> None:
    old = services(store)[name]
    new = merge_patch(clone(old), patch)
    new["name"] = name
    normalize_enums(new, RUN_SERVICE_ENUMS)
    put_service(store, bump_service(store, old, new, actor))


def _move_etag(store: Store, name: str) -> None:
    old = services(store)[name]
    put_service(store, bump_service(store, old, clone(old), DEFAULT_ACTOR))


SERVICE = "projects/*/locations/*/services/*"
JOB = "projects/*/locations/*/jobs/*"
WORKER_POOL = "projects/*/locations/*/workerPools/*"
OPERATION = "projects/*/locations/*/operations/*"

API = Api(
    name="run_v2",
    discovery="run.v2.json",
    routes=(
        Route("GET", "/v2/{parent=projects/*/locations/*}/services", "run.projects.locations.services.list",
              list_services),
        Route("POST", "/v2/{parent=projects/*/locations/*}/services", "run.projects.locations.services.create",
              create_service),
        Route("GET", f"/v2/{{name={SERVICE}}}", "run.projects.locations.services.get", get_service),
        Route("PATCH", f"/v2/{{name={SERVICE}}}", "run.projects.locations.services.patch", patch_service),
        Route("DELETE", f"/v2/{{name={SERVICE}}}", "run.projects.locations.services.delete", delete_service),
        Route("GET", f"/v2/{{name={SERVICE}/revisions/*}}", "run.projects.locations.services.revisions.get", get_revision),
        *iam.routes("v2", SERVICE, "run.projects.locations.services"),
        Route("GET", f"/v2/{{name={JOB}}}", "run.projects.locations.jobs.get", get_job),
        Route("GET", f"/v2/{{name={WORKER_POOL}}}", "run.projects.locations.workerPools.get", get_worker_pool),
        *iam.routes("v2", JOB, "run.projects.locations.jobs"),
        *iam.routes("v2", WORKER_POOL, "run.projects.locations.workerPools"),
        Route("GET", f"/v2/{{name={OPERATION}}}", "run.projects.locations.operations.get", operations.get),
        Route("DELETE", f"/v2/{{name={OPERATION}}}", "run.projects.locations.operations.delete",
              operations.delete),
        Route("POST", f"/v2/{{name={OPERATION}}}:wait", "run.projects.locations.operations.wait",
              operations.get),
    ),
    collections=(
        Collection(SERVICES, SERVICE_RE, seed=_seed, view=_view, patch=_patch, move_etag=_move_etag,
                   delete=drop_service),
        # Earlier revisions a service's traffic may still point at (the latest is made by every write).
        Collection(REVISIONS, REVISION_RE, seed=_seed_revision, view=lambda store, name: store.tables[REVISIONS][name],
                   patch=lambda store, name, change, actor: None),
        Collection(JOBS, JOB_RE, seed=_workload_seeder(JOBS), view=lambda store, name: store.tables[JOBS][name],
                   patch=_workload_patch(JOBS)),
        Collection(WORKER_POOLS, WORKER_POOL_RE, seed=_workload_seeder(WORKER_POOLS),
                   view=lambda store, name: store.tables[WORKER_POOLS][name], patch=_workload_patch(WORKER_POOLS)),
    ),
)
