"""The stand-in held to Google's discovery documents (google-api-python-client ships them).

(a) every registered route exists in its API's discovery document with the same verb and path;
(b) every request the real google-cloud-run / google-cloud-kms clients send to the stand-in, and
    every response and error body it returns, uses only fields the schemas define, with the right
    types and enum values (tests/support/contract.py walks the schemas);
(c) long-running Operations and google.rpc.Status error bodies have the documented shapes.

The routes come from `infra.local.standin.app.routes()`, so a route another module adds is checked
by (a) with no change here, and fails until it names a discovery method id. Traffic comes from
SCENARIOS: one function per registered API (keyed by `Api.name`) that drives every route through
the real client library; a route no scenario reaches fails `test_every_route_is_exercised`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import pytest
from google.api_core import exceptions as gexc
from google.cloud import kms_v1, run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, field_mask_pb2

from functions.armor_policy_detached import COMPUTE_ENDPOINT_ENV
from infra.local.standin.apis import APIS
from infra.local.standin.app import routes
from infra.local.standin.client import StandinAdmin
from infra.local.standin.core import Api, Route
from infra.local.standin.seeding import load_seed
from infra.local.standin.server import StandinServer
from shared import clients
from tests.support.contract import Discovery, discovery
from tests.support.fixtures_standin import SEED_EXAMPLE

pytestmark = pytest.mark.integration

PARENT = "projects/demo-project/locations/us-central1"
SVC = f"{PARENT}/services/patient-api"
RING = f"{PARENT}/keyRings/demo-ring"
KEY = f"{RING}/cryptoKeys/phi-key"
V1 = f"{KEY}/cryptoKeyVersions/1"
LRO_TIMEOUT = 5.0


@dataclass
class Exchange:
    """One API request the stand-in answered, in full, with the route that served it."""

    method: str
    path: str
    query: str
    body: bytes
    status: int
    response: bytes
    api: Api | None
    route: Route | None

    def request_json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    def response_json(self) -> Any:
        return json.loads(self.response) if self.response.strip() else None

    def doc(self) -> Discovery:
        assert self.api is not None
        return discovery(self.api.discovery)

    def __str__(self) -> str:
        return f"{self.method} {self.path}?{self.query} -> {self.status}"


def _documented(traffic: list[Exchange]) -> list[Exchange]:
    """The exchanges whose route names a method of its document (the others fail (a) already)."""
    return [x for x in traffic if x.route is not None and x.route.discovery_id in x.doc().methods]


def _route_of(method: str, path: str) -> tuple[Api | None, Route | None]:
    for api in APIS:
        for route in api.routes:
            if route.method == method and route.regex().match(path):
                return api, route
    return None, None


# ---------------------------------------------------------------------------------------------
# Scenarios: every route, through the real client libraries, including answers that are errors.
# ---------------------------------------------------------------------------------------------

def _expect(exc_type: type[Exception], call: Callable[[], Any]) -> None:
    with pytest.raises(exc_type):
        call()


def exercise_run_v2(admin: StandinAdmin) -> None:
    run = clients.run_services()
    svc = run.get_service(name=SVC)
    list(run.list_services(request={"parent": PARENT, "page_size": 1}))  # two pages
    svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
    svc.labels["owner"] = "records"
    svc = run.update_service(service=svc).result(timeout=LRO_TIMEOUT)
    masked = run_v2.Service(name=SVC, description="masked write")
    run.update_service(request={"service": masked, "update_mask": field_mask_pb2.FieldMask(paths=["description"])}
                       ).result(timeout=LRO_TIMEOUT)
    stale = run_v2.Service(svc)  # its etag is now stale
    stale.description = "stale"
    _expect(gexc.Conflict, lambda: run.update_service(service=stale))
    _expect(gexc.BadRequest, lambda: run.update_service(
        service=run_v2.Service(name=SVC, labels={"run.googleapis.com/x": "y"},
                               template=run_v2.RevisionTemplate(containers=[run_v2.Container(image="i")]))))
    new = run_v2.Service(template=run_v2.RevisionTemplate(containers=[run_v2.Container(image="us-docker.pkg.dev/x/y:1")]))
    created = run.create_service(parent=PARENT, service=new, service_id="contract-svc").result(timeout=LRO_TIMEOUT)
    _expect(gexc.Conflict, lambda: run.create_service(parent=PARENT, service=new, service_id="contract-svc"))
    run.update_service(request={"service": run_v2.Service(name=f"{PARENT}/services/made-by-patch",
                                                          template=new.template), "allow_missing": True}
                       ).result(timeout=LRO_TIMEOUT)
    admin.fault("PATCH", r"/services/patient-api$", pending_polls=1, count=1)
    svc = run.get_service(name=SVC)
    svc.description = "polled"
    op = run.update_service(service=svc)
    op.result(timeout=LRO_TIMEOUT, polling=op._polling.with_delay(initial=0.01))  # GET .../operations/O
    name = op.operation.name
    run.wait_operation(request=operations_pb2.WaitOperationRequest(name=name))
    run.get_operation(request=operations_pb2.GetOperationRequest(name=name))
    run.delete_operation(request=operations_pb2.DeleteOperationRequest(name=name))
    _expect(gexc.NotFound, lambda: run.get_operation(request=operations_pb2.GetOperationRequest(name=name)))
    run.delete_service(name=created.name).result(timeout=LRO_TIMEOUT)
    _expect(gexc.NotFound, lambda: run.get_service(name=created.name))
    policy = run.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(
        resource=SVC, options={"requested_policy_version": 3}))
    policy.bindings.add(role="roles/run.invoker", members=["user:alice@example.com"])
    run.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=SVC, policy=policy))
    _expect(gexc.Conflict, lambda: run.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(
        resource=SVC, policy=policy)))  # the etag moved with the first write
    run.test_iam_permissions(request=iam_policy_pb2.TestIamPermissionsRequest(
        resource=SVC, permissions=["run.services.get"]))
    admin.fault("GET", r"/services/patient-api$", status=503, rpc_status="UNAVAILABLE", count=1)
    _expect(gexc.ServiceUnavailable, lambda: run.get_service(name=SVC, retry=None))
    admin.fault("GET", r"/services/patient-api$", status=403, rpc_status="PERMISSION_DENIED", count=1)
    _expect(gexc.Forbidden, lambda: run.get_service(name=SVC))
    clients.run_revisions().get_revision(name=run.get_service(name=SVC).latest_created_revision)
    # Jobs and worker pools are only read (the sweep, for a record without data).
    image = {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/job"}]}
    job, pool = f"{PARENT}/jobs/contract-job", f"{PARENT}/workerPools/contract-pool"
    admin.seed({"jobs": [{"name": job, "template": {"taskCount": 1, "template": {
                    **image, "serviceAccount": "runner@demo-project.iam.gserviceaccount.com", "maxRetries": 3}}}],
                "workerPools": [{"name": pool, "template": {**image, "encryptionKey": f"{PARENT}/keyRings/r/cryptoKeys/k"}}]})
    got = clients.run_jobs().get_job(name=job)
    assert (got.name, got.template.template.service_account, got.template.template.max_retries) == (
        job, "runner@demo-project.iam.gserviceaccount.com", 3)
    assert clients.run_worker_pools().get_worker_pool(name=pool).template.encryption_key == f"{PARENT}/keyRings/r/cryptoKeys/k"
    _expect(gexc.NotFound, lambda: clients.run_jobs().get_job(name=f"{PARENT}/jobs/missing"))
    for iam_client, name in ((clients.run_jobs(), job), (clients.run_worker_pools(), pool)):
        policy = iam_client.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(
            resource=name, options={"requested_policy_version": 3}))
        policy.bindings.add(role="roles/run.developer", members=["user:alice@example.com"])
        iam_client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy))
        iam_client.test_iam_permissions(request=iam_policy_pb2.TestIamPermissionsRequest(
            resource=name, permissions=["run.jobs.get"]))


def exercise_cloudkms_v1(admin: StandinAdmin) -> None:
    kms = clients.kms()
    list(kms.list_key_rings(request={"parent": PARENT, "page_size": 1}))
    ring = kms.create_key_ring(parent=PARENT, key_ring_id="contract-ring", key_ring=kms_v1.KeyRing())
    kms.get_key_ring(name=ring.name)
    _expect(gexc.Conflict, lambda: kms.create_key_ring(parent=PARENT, key_ring_id="contract-ring",
                                                       key_ring=kms_v1.KeyRing()))
    key = kms.create_crypto_key(parent=ring.name, crypto_key_id="k", crypto_key=kms_v1.CryptoKey(
        purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT,
        rotation_period=duration_pb2.Duration(seconds=86400 * 30)))
    list(kms.list_crypto_keys(request={"parent": ring.name, "filter": "purpose=ENCRYPT_DECRYPT"}))
    kms.get_crypto_key(name=KEY)
    kms.update_crypto_key(crypto_key=kms_v1.CryptoKey(name=key.name, labels={"team": "x"}),
                          update_mask=field_mask_pb2.FieldMask(paths=["labels"]))
    _expect(gexc.BadRequest, lambda: kms.update_crypto_key(crypto_key=kms_v1.CryptoKey(name=key.name),
                                                          update_mask=field_mask_pb2.FieldMask(paths=["purpose"])))
    v2 = kms.create_crypto_key_version(parent=key.name, crypto_key_version=kms_v1.CryptoKeyVersion())
    list(kms.list_crypto_key_versions(request={"parent": key.name, "page_size": 1}))
    kms.update_crypto_key_primary_version(name=key.name, crypto_key_version_id=v2.name.rsplit("/", 1)[1])
    kms.get_crypto_key_version(name=V1)
    kms.update_crypto_key_version(
        crypto_key_version=kms_v1.CryptoKeyVersion(name=V1, state=kms_v1.CryptoKeyVersion.CryptoKeyVersionState.DISABLED),
        update_mask=field_mask_pb2.FieldMask(paths=["state"]))
    kms.destroy_crypto_key_version(name=V1)
    _expect(gexc.BadRequest, lambda: kms.destroy_crypto_key_version(name=V1))  # FAILED_PRECONDITION
    kms.restore_crypto_key_version(name=V1)
    _expect(gexc.NotFound, lambda: kms.get_crypto_key_version(name=f"{KEY}/cryptoKeyVersions/99"))
    for resource in (RING, KEY):
        policy = kms.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=resource))
        policy.bindings.add(role="roles/cloudkms.viewer", members=["group:ops@example.com"])
        policy.audit_configs.add(service="cloudkms.googleapis.com", audit_log_configs=[
            policy_pb2.AuditLogConfig(log_type=policy_pb2.AuditLogConfig.LogType.DATA_READ)])
        kms.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(
            resource=resource, policy=policy, update_mask=field_mask_pb2.FieldMask(paths=["bindings", "audit_configs"])))
        kms.test_iam_permissions(request=iam_policy_pb2.TestIamPermissionsRequest(
            resource=resource, permissions=["cloudkms.cryptoKeys.get"]))
    admin.fault("POST", r":setIamPolicy$", status=409, rpc_status="ABORTED", count=1)
    _expect(gexc.Conflict, lambda: kms.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(
        resource=KEY, policy=policy_pb2.Policy())))


FN = f"{PARENT}/functions/intake"


def exercise_cloudfunctions_v2(admin: StandinAdmin) -> None:
    """Over REST, as Rampart calls it (google-cloud-functions would load into every cold start)."""
    api = clients.functions_rest()
    body = {"buildConfig": {"runtime": "python312", "entryPoint": "handle"},
            "serviceConfig": {"environmentVariables": {"LOG_LEVEL": "info"}}}
    _rest(api, "POST", f"{PARENT}/functions", params={"functionId": "intake"}, json=body)
    _expect(gexc.Conflict, lambda: _rest(api, "POST", f"{PARENT}/functions", params={"functionId": "intake"}, json=body))
    _rest(api, "GET", f"{PARENT}/functions", params={"pageSize": 1})
    _rest(api, "GET", FN)
    _rest(api, "PATCH", FN, params={"updateMask": "serviceConfig.ingressSettings"},
          json={"serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_AND_GCLB"}})
    _expect(gexc.NotFound, lambda: _rest(api, "GET", f"{PARENT}/functions/nope"))
    policy = _rest(api, "GET", f"{FN}:getIamPolicy", params={"options.requestedPolicyVersion": 3})
    policy["bindings"] = [{"role": "roles/cloudfunctions.invoker", "members": ["serviceAccount:push@demo-project.iam.gserviceaccount.com"]}]
    _rest(api, "POST", f"{FN}:setIamPolicy", json={"policy": policy})
    _rest(api, "POST", f"{FN}:testIamPermissions", json={"permissions": ["cloudfunctions.functions.get"]})


def exercise_cloudresourcemanager_v3(admin: StandinAdmin) -> None:
    admin.seed({"projects": [{"name": "projects/demo-project"}], "folders": [{"name": "folders/555"}],
                "organizations": [{"name": "organizations/123"}]})
    crm = clients.projects()
    crm.get_project(name="projects/demo-project")
    _expect(gexc.NotFound, lambda: crm.get_project(name="projects/nope"))
    policy = crm.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource="projects/demo-project"))
    policy.bindings.add(role="roles/viewer", members=["group:ops@example.com"])
    crm.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource="projects/demo-project", policy=policy))
    from google.cloud import resourcemanager_v3

    folders, orgs = resourcemanager_v3.FoldersClient(**clients._options(clients.RESOURCE_MANAGER_ENDPOINT_ENV)), \
        resourcemanager_v3.OrganizationsClient(**clients._options(clients.RESOURCE_MANAGER_ENDPOINT_ENV))
    for client, name in ((folders, "folders/555"), (orgs, "organizations/123")):
        (client.get_folder if client is folders else client.get_organization)(name=name)
        pol = client.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=name))
        client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=pol))


def _rest(api: tuple[Any, str], method: str, path: str, prefix: str = "v2", **kw: Any) -> Any:
    session, base = api
    resp = session.request(method, f"{base}/{prefix}/{path}", timeout=5, **kw)
    if resp.status_code >= 400:
        raise gexc.from_http_response(resp)
    return resp.json()


def exercise_logging_v2(admin: StandinAdmin) -> None:
    """Over REST, as Rampart calls it (the installed logging client speaks gRPC only)."""
    api = clients.logging_rest()
    admin.seed({"sinks": [{"name": f"{p}/sinks/rampart-audit", "destination": "pubsub.googleapis.com/projects/p/topics/t",
                           "filter": "severity>=ERROR"} for p in ("projects/demo-project", "folders/555", "organizations/123")]})
    for parent in ("projects/demo-project", "folders/555", "organizations/123"):
        _rest(api, "GET", f"{parent}/sinks/rampart-audit")
        _rest(api, "PATCH", f"{parent}/sinks/rampart-audit", params={"updateMask": "filter"}, json={"filter": "severity>=WARNING"})
    _expect(gexc.NotFound, lambda: _rest(api, "GET", "projects/demo-project/sinks/nope"))
    _expect(gexc.BadRequest, lambda: _rest(api, "PATCH", "projects/demo-project/sinks/rampart-audit",
                                           params={"updateMask": "destination"}, json={}))


def exercise_orgpolicy_v2(admin: StandinAdmin) -> None:
    """Over REST, as Rampart calls it (no Org Policy client library is installed)."""
    api = clients.orgpolicy_rest()
    for parent in ("projects/demo-project", "folders/555", "organizations/123"):
        name = f"{parent}/policies/cloudkms.disableBeforeDestroy"
        made = _rest(api, "POST", f"{parent}/policies", json={"name": name, "spec": {"rules": [{"enforce": False}]}})
        _rest(api, "GET", name)
        _rest(api, "PATCH", name, params={"updateMask": "spec"}, json={"name": name, "etag": made["etag"],
                                                                       "spec": {"rules": [{"enforce": True}]}})
        _expect(gexc.Conflict, lambda n=name, e=made["etag"]: _rest(api, "PATCH", n, json={"name": n, "etag": e, "spec": {}}))
        _rest(api, "DELETE", name)
    _expect(gexc.NotFound, lambda: _rest(api, "GET", "projects/demo-project/policies/gcp.resourceLocations"))


def exercise_compute_v1(admin: StandinAdmin) -> None:
    """Over REST, as the Cloud Armor alert's enrichment calls it (functions.armor_policy_detached)."""
    from functions.armor_policy_detached import compute_rest

    neg = "projects/demo-project/regions/us-central1/networkEndpointGroups/api-neg"
    zonal = "projects/demo-project/zones/us-central1-a/networkEndpointGroups/vm-neg"
    admin.seed({
        "networkEndpointGroups": [
            {"name": neg, "networkEndpointType": "SERVERLESS", "region": "us-central1", "cloudRun": {"service": "api"}},
            {"name": zonal, "networkEndpointType": "GCE_VM_IP_PORT", "zone": "us-central1-a", "size": 2},
        ],
        "backendServices": [
            {"name": "projects/demo-project/global/backendServices/api", "loadBalancingScheme": "EXTERNAL_MANAGED",
             "backends": [{"group": f"https://www.googleapis.com/compute/v1/{neg}"}]},
            {"name": "projects/demo-project/regions/us-central1/backendServices/vm", "loadBalancingScheme": "INTERNAL_MANAGED",
             "backends": [{"group": f"https://www.googleapis.com/compute/v1/{zonal}"}]},
        ],
    })
    api = compute_rest()
    for path in ("projects/demo-project/global/backendServices/api", "projects/demo-project/regions/us-central1/backendServices/vm",
                 neg, zonal):
        _rest(api, "GET", path, prefix="compute/v1")
    _expect(gexc.NotFound, lambda: _rest(api, "GET", "projects/demo-project/global/backendServices/gone", prefix="compute/v1"))
    # As the rule's revert attaches a policy again (and as a detach, an empty reference, looks).
    waf = "https://www.googleapis.com/compute/v1/projects/demo-project/global/securityPolicies/waf"
    op = _rest(api, "POST", "projects/demo-project/global/backendServices/api/setSecurityPolicy", prefix="compute/v1",
               json={"securityPolicy": waf})
    assert op["kind"] == "compute#operation" and op["targetLink"].endswith("/global/backendServices/api")
    assert _rest(api, "GET", "projects/demo-project/global/backendServices/api", prefix="compute/v1")["securityPolicy"] == waf
    _rest(api, "POST", "projects/demo-project/regions/us-central1/backendServices/vm/setSecurityPolicy", prefix="compute/v1",
          json={"securityPolicy": ""})
    _expect(gexc.BadRequest, lambda: _rest(
        api, "POST", "projects/demo-project/global/backendServices/api/setSecurityPolicy", prefix="compute/v1",
        json={"securityPolicy": "projects/demo-project/regions/us-central1/securityPolicies/waf"}))


def exercise_logging_v2_entries(admin: StandinAdmin) -> None:
    """entries.list through google-cloud-logging's HTTP client, as shared/audit_confirm.py calls it."""
    from infra.local import scenario
    from shared import audit_confirm

    entry = scenario.kms_update_version("DISABLED")
    admin.log_entries([entry])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(clients.LOGGING_ENDPOINT_ENV, admin.url)
        held = audit_confirm.lookup(scenario.P, entry["insertId"], entry["timestamp"])
        assert held.insert_id == entry["insertId"]
        assert [e.insert_id for e in audit_confirm.history(scenario.P, scenario.VERSION, until=entry["timestamp"])]
        client = audit_confirm._client(scenario.P)
        _expect(gexc.BadRequest, lambda: list(client.list_entries(filter_='insertId="a" OR insertId="b"')))
def exercise_cloudasset_v1(admin: StandinAdmin) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import asset_v1

    asset = asset_v1.AssetServiceClient(transport="rest", credentials=AnonymousCredentials(),
                                        client_options=ClientOptions(api_endpoint=admin.url))
    admin.seed({"organizations": [{"name": "organizations/9"}], "folders": [{"name": "folders/7", "parent": "organizations/9"}],
                "projects": [{"name": "projects/demo-project", "projectId": "demo-project", "parent": "folders/7"}],
                "orgPolicies": [{"name": "folders/7/policies/run.allowedIngress", "spec": {"rules": [{"allowAll": True}]}}]})
    request = asset_v1.SearchAllResourcesRequest(
        scope="organizations/9", page_size=2, read_mask="*",
        asset_types=["run.googleapis.com/Service", "cloudkms.googleapis.com/CryptoKeyVersion"])
    found = list(asset.search_all_resources(request=request))  # paged by 2, earlier scenarios' resources too
    assert len(found) >= 4 and {r.asset_type for r in found} == set(request.asset_types)
    list(asset.search_all_resources(request={"scope": "projects/demo-project"}))
    # Functions (the earlier scenario's) and org policies, and the project's and
    # the function's IAM policies: the sweep's records beyond Run and KMS.
    beyond = list(asset.search_all_resources(request={
        "scope": "organizations/9", "read_mask": "*",
        "asset_types": ["cloudfunctions.googleapis.com/Function", "orgpolicy.googleapis.com/Policy"]}))
    assert {r.asset_type for r in beyond} == {"cloudfunctions.googleapis.com/Function", "orgpolicy.googleapis.com/Policy"}
    policies = {r.asset_type for r in asset.search_all_iam_policies(request={"scope": "organizations/9"})}
    assert {"cloudresourcemanager.googleapis.com/Project", "cloudfunctions.googleapis.com/Function"} <= policies
    list(asset.search_all_iam_policies(request={"scope": "folders/7", "page_size": 2,
                                                 "asset_types": ["run.googleapis.com/Service"]}))
    _expect(gexc.BadRequest, lambda: list(asset.search_all_resources(request={"scope": "folders/7", "query": "x"})))
    admin.fault("GET", r"folders/7:searchAllIamPolicies$", status=403, rpc_status="PERMISSION_DENIED", count=1)
    _expect(gexc.Forbidden, lambda: list(asset.search_all_iam_policies(request={"scope": "folders/7"})))


# One per registered API, keyed by Api.name: a new API module adds its scenario here.
SCENARIOS: dict[str, Callable[[StandinAdmin], None]] = {
    "run_v2": exercise_run_v2,
    "cloudkms_v1": exercise_cloudkms_v1,
    "cloudfunctions_v2": exercise_cloudfunctions_v2,
    "cloudresourcemanager_v3": exercise_cloudresourcemanager_v3,
    "logging_v2": exercise_logging_v2,
    "orgpolicy_v2": exercise_orgpolicy_v2,
    "compute_v1": exercise_compute_v1,
    "logging_v2_entries": exercise_logging_v2_entries,
    "cloudasset_v1": exercise_cloudasset_v1,
}


@pytest.fixture(scope="module")
def traffic() -> Iterator[list[Exchange]]:
    """Run every scenario against an in-process stand-in that records each exchange in full."""
    server = StandinServer(seed=load_seed(SEED_EXAMPLE))
    recorded: list[Exchange] = []
    handle = server.app.handle

    def recording(method: str, path: str, query: str, body: bytes) -> Any:
        resp = handle(method, path, query, body)
        if not path.startswith("/_standin"):
            recorded.append(Exchange(method, path, query, body, resp.status, resp.body, *_route_of(method, path)))
        return resp

    server.app.handle = recording  # type: ignore[method-assign]
    with server, pytest.MonkeyPatch.context() as mp:
        mp.setenv(clients.RUN_ENDPOINT_ENV, server.url)
        mp.setenv(clients.KMS_ENDPOINT_ENV, server.url)
        for env in (clients.FUNCTIONS_ENDPOINT_ENV, clients.RESOURCE_MANAGER_ENDPOINT_ENV, clients.LOGGING_ENDPOINT_ENV,
                    clients.ORGPOLICY_ENDPOINT_ENV, COMPUTE_ENDPOINT_ENV):
            mp.setenv(env, server.url)
        clients.reset()
        admin = StandinAdmin(server.url)
        try:
            for api in APIS:
                if api.name in SCENARIOS:
                    SCENARIOS[api.name](admin)
            yield recorded
        finally:
            clients.reset()


# ---------------------------------------------------------------------------------------------
# (a) routes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("route", routes(), ids=lambda r: r.discovery_id or f"{r.method} {r.template}")
def test_route_exists_in_its_discovery_document(route: Route) -> None:
    (api,) = [a for a in APIS if route in a.routes]
    assert route.discovery_id, f"{route.method} {route.template}: expected a discovery method id, found none"
    assert discovery(api.discovery).check_route(route) == []


def test_every_api_names_a_document_and_its_module_docstring_does_too() -> None:
    import importlib

    for api in APIS:
        module = importlib.import_module(f"infra.local.standin.{api.name}")
        assert module.API is api, f"expected infra/local/standin/{api.name}.py to define API, found another"
        assert api.discovery in (module.__doc__ or ""), (
            f"{api.name}: expected its docstring to name {api.discovery}, found it unnamed")
        discovery(api.discovery)  # the document exists


def test_every_route_is_exercised_by_a_real_client(traffic: list[Exchange]) -> None:
    missing_scenarios = [api.name for api in APIS if api.name not in SCENARIOS]
    assert missing_scenarios == [], f"expected a scenario in SCENARIOS for every API, found none for {missing_scenarios}"
    hit = {x.route.discovery_id for x in traffic if x.route is not None}
    assert [r.discovery_id for r in routes() if r.discovery_id not in hit] == []
    assert [str(x) for x in traffic if x.route is None] == [], "the clients sent requests no route serves"


# ---------------------------------------------------------------------------------------------
# (b) requests and responses
# ---------------------------------------------------------------------------------------------

def test_requests_the_clients_send_use_only_documented_fields(traffic: list[Exchange]) -> None:
    problems = []
    for x in _documented(traffic):
        assert x.route is not None
        query = parse_qs(x.query, keep_blank_values=True)
        problems += [f"{x}: {p}" for p in x.doc().check_request(x.route.discovery_id, query, x.request_json())]
    assert problems == []


def test_responses_use_only_documented_fields(traffic: list[Exchange]) -> None:
    ok = [x for x in _documented(traffic) if x.status == 200]
    assert len(ok) >= len(routes())
    problems = []
    for x in ok:
        assert x.route is not None
        problems += [f"{x}: {p}" for p in x.doc().check_response(x.route.discovery_id, x.response_json())]
    assert problems == []


# ---------------------------------------------------------------------------------------------
# (c) Operation and google.rpc.Status shapes
# ---------------------------------------------------------------------------------------------

def test_error_bodies_are_google_rpc_status(traffic: list[Exchange]) -> None:
    errors = [x for x in traffic if x.status >= 400]
    assert {x.status for x in errors} >= {400, 403, 404, 409, 503}
    problems = []
    for x in errors:
        # orgpolicy.v2.json defines no google.rpc.Status (no method returns one): Run's document's is the same.
        doc = x.doc() if x.api is not None and x.doc().has_status_schema() else discovery(APIS[0].discovery)
        problems += [f"{x}: {p}" for p in doc.check_error(x.status, x.response_json())]
    assert problems == []


def test_long_running_operations_match_the_operation_schema(traffic: list[Exchange]) -> None:
    ops = [(x, x.response_json()) for x in _documented(traffic) if x.status == 200 and x.route is not None
           and x.doc().methods[x.route.discovery_id].response == x.doc().operation_schema()]
    done = [op for _, op in ops if op.get("done")]
    pending = [op for _, op in ops if not op.get("done")]
    assert done and pending, "expected both a done and a pending operation in the traffic"
    for x, op in ops:
        doc = x.doc()
        assert doc.check(op, {"$ref": doc.operation_schema()}, str(x)) == []
        location = re.match(r"^/v\d+/(projects/[^/]+/locations/[^/]+)/", x.path)
        assert location and op["name"].startswith(f"{location.group(1)}/operations/"), (
            f"{x}: expected an operation named under the request's location, found {op['name']!r}")
        for part in ("metadata", "response"):
            if part in op:
                type_url = op[part]["@type"]
                assert doc.schema_for_type(type_url.split("/", 1)[1]), f"{x}: {type_url} names no schema"
        if op.get("done"):
            assert "response" in op or "error" in op, f"{x}: a done operation carries response or error"
        else:
            assert "response" not in op and "error" not in op, f"{x}: a pending operation has no result yet"


# ---------------------------------------------------------------------------------------------
# The checker itself can fail.
# ---------------------------------------------------------------------------------------------

def test_the_checker_rejects_what_the_schemas_do_not_define() -> None:
    run = discovery("run.v2.json")
    svc = {"name": SVC, "ingress": "INGRESS_TRAFFIC_ALL", "generation": "3",
           "template": {"containers": [{"image": "i"}]}}
    assert run.check_response("run.projects.locations.services.get", svc) == []
    bad_cases = {
        "unknown field": {**svc, "ingres": "INGRESS_TRAFFIC_ALL"},
        "enum value": {**svc, "ingress": "INGRESS_TRAFFIC_SOME"},
        "int64 as number": {**svc, "generation": 3},
        "nested type": {**svc, "template": {"containers": {"image": "i"}}},
        "timestamp": {**svc, "createTime": "yesterday"},
    }
    for what, body in bad_cases.items():
        assert run.check_response("run.projects.locations.services.get", body), f"missed: {what}"
    assert run.check_request("run.projects.locations.services.patch", {"updateMsk": ["x"]}, svc)
    assert run.check_request("run.projects.locations.services.patch", {"validateOnly": ["maybe"]}, svc)
    op = {"name": "o", "done": True, "response": {"@type": "type.googleapis.com/google.cloud.run.v2.Service",
                                                  **svc, "bogus": 1}}
    assert run.check_response("run.projects.locations.services.patch", op), "missed: a bad field inside an Any"
    assert run.check_error(409, {"error": {"code": 409, "message": "m", "status": "ABORTED"}}) == []
    assert run.check_error(409, {"error": {"code": 409, "message": "m", "status": "FAILED_PRECONDITION"}})
    assert run.check_error(412, {"error": {"code": 409, "message": "m", "status": "ABORTED"}})
    assert run.check_error(400, {"code": 400, "message": "m"})
    assert run.check_error(400, {"error": {"code": 400, "message": "m", "status": "INVALID_ARGUMENT", "why": 1}})
    kms = discovery("cloudkms.v1.json")
    wrong = Route("GET", "/v1/{name=projects/*/locations/*/keyRings/*}", "cloudkms.projects.locations.keyRings.list",
                  lambda *a: None)  # type: ignore[arg-type,return-value]
    assert kms.check_route(wrong)
    assert kms.check_route(Route("GET", "/v1/x", "", lambda *a: None))  # type: ignore[arg-type,return-value]
