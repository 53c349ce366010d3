"""Cloud Functions API v2 (cloudfunctions.googleapis.com): functions, their operations and IAM policies.

Checked against the discovery document `cloudfunctions.v2.json` (google-api-python-client's
`googleapiclient/discovery_cache/documents/`): every route names its discovery method id.

    GET|POST /v2/projects/P/locations/L/functions (list, create: functionId)
    GET|PATCH /v2/projects/P/locations/L/functions/F   (PATCH: updateMask)
    GET .../functions/F:getIamPolicy  POST .../functions/F:setIamPolicy|:testIamPermissions
    GET /v2/projects/P/locations/L/operations/O is run_v2's route: the same path template
    (cloudfunctions.projects.locations.operations.get), over the same store of operations.
Writes answer a done Operation whose `response` is the typed Function.

A Cloud Run function made with this API *is* a Cloud Run service (`serviceConfig.service`), and
the function is its source of truth: after every CreateFunction/UpdateFunction, Cloud Functions
rewrites the service whole, as its own agent (corpus: each `UpdateFunction` is followed by a
`google.cloud.serverless.internal.InternalServices.ReplaceInternalService` from
`service-N@gcf-admin-robot.iam.gserviceaccount.com`, a replace with no request body logged). The
stand-in does the same when that service is in its Run v2 table: ingress and service account are
copied from the function onto the service, so a fix made only on the Run side is undone by the
next function write, as it is in Google Cloud. That is why Rampart fixes a function through this API.
"""

from __future__ import annotations

import re
import uuid
import zlib

from infra.local.standin import iam, run_v2
from infra.local.standin.core import (
    SEG,
    Api,
    ApiError,
    Collection,
    Json,
    Response,
    Route,
    bad,
    clone,
    del_path,
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

FUNCTIONS = "functions"
FUNCTION_TYPE = "type.googleapis.com/google.cloud.functions.v2.Function"
METADATA_TYPE = "type.googleapis.com/google.cloud.functions.v2.OperationMetadata"

# Enum tables, copied from the protos (google-cloud-functions 1.25.0); keys are JSON paths.
INGRESS = seq("INGRESS_SETTINGS_UNSPECIFIED", "ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB")
CONNECTOR_EGRESS = seq("VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED", "PRIVATE_RANGES_ONLY", "ALL_TRAFFIC")
FUNCTION_ENUMS: dict[str, dict[int, str]] = {
    "buildConfig.dockerRegistry": seq("DOCKER_REGISTRY_UNSPECIFIED", "CONTAINER_REGISTRY", "ARTIFACT_REGISTRY"),
    "serviceConfig.vpcConnectorEgressSettings": CONNECTOR_EGRESS,
    "serviceConfig.ingressSettings": INGRESS,
    "serviceConfig.securityLevel": seq("SECURITY_LEVEL_UNSPECIFIED", "SECURE_ALWAYS", "SECURE_OPTIONAL"),
    "eventTrigger.retryPolicy": seq("RETRY_POLICY_UNSPECIFIED", "RETRY_POLICY_DO_NOT_RETRY", "RETRY_POLICY_RETRY"),
    "state": seq("STATE_UNSPECIFIED", "ACTIVE", "FAILED", "DEPLOYING", "DELETING", "UNKNOWN"),
    "stateMessages.severity": seq("SEVERITY_UNSPECIFIED", "ERROR", "WARNING", "INFO"),
    "environment": seq("ENVIRONMENT_UNSPECIFIED", "GEN_1", "GEN_2"),
}

# Fields marked "Output only" in google/cloud/functions/v2/functions.proto (plus name): a write's
# values for them are ignored.
OUTPUT_ONLY = frozenset({"name", "state", "stateMessages", "updateTime", "createTime", "url", "satisfiesPzs",
                         "upgradeInfo"})
SERVICE_CONFIG_OUTPUT_ONLY = frozenset({"service", "uri", "revision"})

FUNCTION_RE = re.compile(rf"^(projects/{SEG}/locations/{SEG})/functions/({SEG})$")
FUNCTION_ID_RE = re.compile(r"^[A-Za-z]([-_A-Za-z0-9]{0,61}[A-Za-z0-9])?$")

# Function ingress -> the Run v2 ingress Cloud Functions gives the underlying service.
RUN_INGRESS = {
    "ALLOW_ALL": "INGRESS_TRAFFIC_ALL",
    "ALLOW_INTERNAL_ONLY": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "ALLOW_INTERNAL_AND_GCLB": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
}


def functions(store: Store) -> dict[str, Json]:
    return store.tables[FUNCTIONS]


def _function(store: Store, name: str) -> Json:
    fn = functions(store).get(name)
    if fn is None:
        not_found(name)
    return fn


def _fill(store: Store, fn: Json, old: Json | None) -> Json:
    """Output-only fields, and the defaults the API applies to what the caller left out."""
    m = FUNCTION_RE.match(fn["name"])
    assert m is not None
    parent, fid = m.group(1), m.group(2)
    project, location = parent.split("/")[1], parent.split("/")[3]
    now = store.now()
    fn["createTime"] = (old or {}).get("createTime") or fn.get("createTime") or now
    fn["updateTime"] = now
    fn["state"] = "ACTIVE"
    fn.setdefault("environment", "GEN_2")
    fn["url"] = f"https://{location}-{project}.cloudfunctions.net/{fid}"
    sc = fn.setdefault("serviceConfig", {})
    sc.setdefault("ingressSettings", "ALLOW_ALL")  # the API default when unset
    sc.setdefault("serviceAccountEmail", f"{zlib.crc32(project.encode()):012d}-compute@developer.gserviceaccount.com")
    sc.setdefault("service", f"projects/{project}/locations/{location}/services/{fid.lower().replace('_', '-')}")
    sc["uri"] = f"https://{fid.lower()}-{zlib.crc32(parent.encode()):010d}.{location}.run.app"
    sc["revision"] = f"{fid.lower()}-{store.seq():05d}"
    return fn


def _validate(fn: Json) -> None:
    normalize_enums(fn, FUNCTION_ENUMS)
    sc = fn.get("serviceConfig")
    if sc is not None and not isinstance(sc, dict):
        bad(f"function.service_config: expected an object, found {type(sc).__name__}")
    env = (sc or {}).get("environmentVariables")
    if env is not None and not (isinstance(env, dict) and all(isinstance(v, str) for v in env.values())):
        bad("function.service_config.environment_variables: expected a map of strings")
    key = fn.get("kmsKeyName")
    if key is not None and not re.match(rf"^projects/{SEG}/locations/{SEG}/keyRings/{SEG}/cryptoKeys/{SEG}$", str(key)):
        bad(f"function.kms_key_name: expected projects/P/locations/L/keyRings/R/cryptoKeys/K, found {key!r}")


def _sync_service(store: Store, fn: Json) -> None:
    """Rewrite the underlying Cloud Run service from the function, as Cloud Functions does."""
    sc = fn.get("serviceConfig") or {}
    svc = run_v2.services(store).get(sc.get("service", ""))
    if svc is None:
        return
    new = clone(svc)
    new["ingress"] = RUN_INGRESS.get(sc.get("ingressSettings", ""), "INGRESS_TRAFFIC_ALL")
    new.setdefault("template", {})["serviceAccount"] = sc.get("serviceAccountEmail", "")
    run_v2.put_service(store, run_v2.bump_service(store, svc, new, "service-0@gcf-admin-robot.iam.gserviceaccount.com"))


def _operation(store: Store, fn: Json, verb: str) -> Response:
    parent = fn["name"].split("/functions/", 1)[0]
    op_name = f"{parent}/operations/operation-{uuid.uuid4()}"
    op = {
        "name": op_name,
        "metadata": {"@type": METADATA_TYPE, "target": fn["name"], "verb": verb, "apiVersion": "v2",
                     "createTime": store.now(), "endTime": store.now()},
        "done": True,
        "response": {"@type": FUNCTION_TYPE, **fn},
    }
    store.record_operation(op_name, op)
    return json_response(200, op)


def _write(store: Store, name: str, new: Json, old: Json | None, verb: str) -> Response:
    new["name"] = name
    _validate(new)
    _fill(store, new, old)
    functions(store)[name] = new
    m = FUNCTION_RE.match(name)
    assert m is not None
    store.index(m.group(1), FUNCTIONS, name)
    _sync_service(store, new)
    return _operation(store, new, verb)


def get_function(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    return json_response(200, _function(store, path["name"]))


def list_functions(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    names, token = page(store.listed(path["parent"], FUNCTIONS), params)
    out: Json = {"functions": [functions(store)[n] for n in names]} if names else {}
    if token:
        out["nextPageToken"] = token
    return json_response(200, out)


def create_function(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    fid = params.get("functionId", "")
    if not FUNCTION_ID_RE.match(fid):
        bad(f"function_id: expected letters, digits, hyphens and underscores (1-63, starting with a letter), "
            f"found {fid!r}")
    name = f"{path['parent']}/functions/{fid}"
    if name in functions(store):
        raise ApiError(409, f"Function {name} already exists", "ALREADY_EXISTS")
    new = {k: clone(v) for k, v in body.items() if k not in OUTPUT_ONLY}
    return _write(store, name, new, None, "create")


def patch_function(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["name"]
    old = _function(store, name)
    if body.get("name") not in (None, "", name):
        bad(f"function.name: expected {name} (the URL's name) or nothing, found {body['name']!r}")
    mask = mask_paths(params.get("updateMask"))
    new = clone(old)
    if mask is None:
        # No mask: every field the request sets (FunctionService.UpdateFunction's documented default).
        for k, v in body.items():
            if k not in OUTPUT_ONLY:
                new[k] = merge_patch(new.get(k) or {}, v) if isinstance(v, dict) and k != "labels" else clone(v)
    else:
        for p in mask:
            parts = p.split(".")
            if parts[0] in OUTPUT_ONLY or (parts[0] == "serviceConfig" and parts[1:2] and parts[1] in SERVICE_CONFIG_OUTPUT_ONLY):
                continue
            found, value = get_path(body, parts)
            if found:
                set_path(new, parts, clone(value))
            else:
                del_path(new, parts)
    return _write(store, name, new, old, "update")


# ---------------------------------------------------------------------------------------------
# Seeding and the admin API's concurrent writer
# ---------------------------------------------------------------------------------------------

def _seed(store: Store, index: int, fn: Json) -> None:
    name = fn["name"]
    new = {k: v for k, v in fn.items() if k not in OUTPUT_ONLY}
    new["name"] = name
    _validate(new)
    _fill(store, new, None)
    if fn.get("createTime"):
        new["createTime"] = fn["createTime"]
    functions(store)[name] = new
    m = FUNCTION_RE.match(name)
    assert m is not None
    store.index(m.group(1), FUNCTIONS, name)


def _view(store: Store, name: str) -> Json:
    return functions(store)[name]


def _patch(store: Store, name: str, patch: Json, actor: str) -> None:
    old = functions(store)[name]
    new = merge_patch(clone(old), patch)
    _write(store, name, new, old, "update")


def _delete(store: Store, name: str) -> None:
    functions(store).pop(name, None)
    store.tables[POLICIES].pop(name, None)
    m = FUNCTION_RE.match(name)
    if m:
        store.unindex(m.group(1), FUNCTIONS, name)


FUNCTION = "projects/*/locations/*/functions/*"

API = Api(
    name="cloudfunctions_v2",
    discovery="cloudfunctions.v2.json",
    routes=(
        Route("GET", "/v2/{parent=projects/*/locations/*}/functions", "cloudfunctions.projects.locations.functions.list",
              list_functions),
        Route("POST", "/v2/{parent=projects/*/locations/*}/functions",
              "cloudfunctions.projects.locations.functions.create", create_function),
        Route("GET", f"/v2/{{name={FUNCTION}}}", "cloudfunctions.projects.locations.functions.get", get_function),
        Route("PATCH", f"/v2/{{name={FUNCTION}}}", "cloudfunctions.projects.locations.functions.patch", patch_function),
        *iam.routes("v2", FUNCTION, "cloudfunctions.projects.locations.functions"),
    ),
    collections=(Collection(FUNCTIONS, FUNCTION_RE, seed=_seed, view=_view, patch=_patch, delete=_delete),),
)
