"""The Cloud Run Admin API v2 stand-in, driven through the real run_v2.ServicesClient (REST)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import run_v2
from google.iam.v1 import policy_pb2
from google.protobuf import field_mask_pb2

from infra.local.standin import core, iam
from infra.local.standin import run_v2 as standin_run
from infra.local.standin.app import App
from infra.local.standin.client import StandinAdmin, StandinError
from infra.local.standin.seeding import load_seed
from infra.local.standin.server import StandinServer
from shared import clients
from tests.support.fixtures_standin import ROOT, SEED_EXAMPLE, Standin, proto_enum_paths

pytestmark = pytest.mark.integration

PARENT = "projects/demo-project/locations/us-central1"
SVC = f"{PARENT}/services/patient-api"
CALLER = "rampart-remediator@demo-project.iam.gserviceaccount.com"
LRO_TIMEOUT = 5.0


@pytest.fixture
def run(standin: Standin) -> run_v2.ServicesClient:
    standin.seed_example()
    return clients.run_services()


def _stored(standin: Standin, name: str = SVC) -> dict[str, Any]:
    return next(s for s in standin.admin.state()["services"] if s["name"] == name)


def _rpc_status(exc: gexc.GoogleAPICallError) -> str:
    """The google.rpc status in the error body (the REST client maps by HTTP code only)."""
    return exc.response.json()["error"]["status"]


# -- services -------------------------------------------------------------------------------------

def test_get_service_parses_the_seeded_compliant_service(run: run_v2.ServicesClient) -> None:
    svc = run.get_service(name=SVC)
    assert svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER
    assert svc.template.vpc_access.egress == run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY
    assert svc.template.service_account == "patient-api@demo-project.iam.gserviceaccount.com"
    assert svc.template.encryption_key.endswith("/keyRings/demo-ring/cryptoKeys/phi-key")
    secret_env = [e for e in svc.template.containers[0].env if e.value_source.secret_key_ref.secret]
    assert [e.name for e in secret_env] == ["DB_PASSWORD"]
    assert svc.invoker_iam_disabled is False
    assert svc.generation == 1 and svc.etag.startswith('"')


def test_update_persists_moves_etag_and_completes_the_operation(
    run: run_v2.ServicesClient, standin: Standin
) -> None:
    before = run.get_service(name=SVC)
    before.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    op = run.update_service(service=before)
    after = op.result(timeout=LRO_TIMEOUT)

    assert after.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    assert after.etag != before.etag
    assert after.generation == before.generation + 1
    assert after.last_modifier == CALLER
    assert after.update_time > before.update_time
    reread = run.get_service(name=SVC)
    assert reread.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL and reread.etag == after.etag
    # The client sent the enum as an integer; the stand-in stores and returns the name.
    patch = standin.admin.requests(method="PATCH")[-1]
    assert "enum-encoding=int" in patch["query"] and json.loads(patch["body"])["ingress"] == 1
    assert _stored(standin)["ingress"] == "INGRESS_TRAFFIC_ALL"
    # The operation can be read back, done, with the typed Service in its response.
    fetched = run.get_operation(request={"name": op.operation.name})
    assert fetched.done and fetched.response.type_url.endswith("google.cloud.run.v2.Service")


def test_template_change_creates_a_new_revision(run: run_v2.ServicesClient) -> None:
    svc = run.get_service(name=SVC)
    svc.template.vpc_access.egress = run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC
    after = run.update_service(service=svc).result(timeout=LRO_TIMEOUT)
    assert after.template.vpc_access.egress == run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC
    assert after.latest_created_revision != svc.latest_created_revision
    assert after.latest_created_revision.startswith(f"{SVC}/revisions/patient-api-00002-")


def test_stale_etag_is_rejected_with_conflict_and_changes_nothing(
    run: run_v2.ServicesClient, standin: Standin
) -> None:
    first, second = run.get_service(name=SVC), run.get_service(name=SVC)
    first.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
    run.update_service(service=first).result(timeout=LRO_TIMEOUT)

    second.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    with pytest.raises(gexc.Conflict) as err:
        run.update_service(service=second)
    assert err.value.code == 409 and _rpc_status(err.value) == "ABORTED"
    assert _stored(standin)["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"


def test_update_mask_changes_only_the_masked_fields(run: run_v2.ServicesClient) -> None:
    svc = run.get_service(name=SVC)
    svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    svc.template.vpc_access.egress = run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC
    op = run.update_service(request={"service": svc, "update_mask": field_mask_pb2.FieldMask(paths=["ingress"])})
    after = op.result(timeout=LRO_TIMEOUT)
    assert after.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    assert after.template.vpc_access.egress == run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY


def test_update_without_mask_replaces_writable_fields(
    run: run_v2.ServicesClient, standin: Standin
) -> None:
    svc = run.get_service(name=SVC)
    svc.labels.clear()
    run.update_service(service=svc).result(timeout=LRO_TIMEOUT)
    stored = _stored(standin)
    assert "labels" not in stored
    assert stored["uid"] == svc.uid  # output-only fields are the server's, not the body's


def test_labels_and_annotations_persist_but_system_namespaces_are_rejected(
    run: run_v2.ServicesClient,
) -> None:
    svc = run.get_service(name=SVC)
    svc.labels["rampart-quarantined"] = "true"
    svc.annotations["rampart.dev/prior-ingress"] = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    after = run.update_service(service=svc).result(timeout=LRO_TIMEOUT)
    assert after.labels["rampart-quarantined"] == "true"
    assert after.annotations["rampart.dev/prior-ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"

    after.annotations["run.googleapis.com/ingress"] = "all"
    with pytest.raises(gexc.BadRequest, match="system namespace"):
        run.update_service(service=after)


def test_validate_only_does_not_persist(run: run_v2.ServicesClient, standin: Standin) -> None:
    svc = run.get_service(name=SVC)
    svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    result = run.update_service(request={"service": svc, "validate_only": True}).result(timeout=LRO_TIMEOUT)
    assert result.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    assert _stored(standin)["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert _stored(standin)["etag"] == svc.etag


def test_missing_service_is_not_found_unless_allow_missing(run: run_v2.ServicesClient) -> None:
    missing = f"{PARENT}/services/nope"
    with pytest.raises(gexc.NotFound):
        run.get_service(name=missing)
    template = run_v2.RevisionTemplate(containers=[run_v2.Container(image="us-docker.pkg.dev/x/y/z:1")])
    with pytest.raises(gexc.NotFound):
        run.update_service(service=run_v2.Service(name=missing, template=template))
    created = run.update_service(
        request={"service": run_v2.Service(name=missing, template=template), "allow_missing": True}
    ).result(timeout=LRO_TIMEOUT)
    assert created.name == missing and created.generation == 1
    assert created.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL  # the API default


def test_list_and_delete_services(run: run_v2.ServicesClient, standin: Standin) -> None:
    names = [s.name for s in run.list_services(request={"parent": PARENT, "page_size": 2})]
    assert sorted(names) == sorted(s["name"] for s in standin.admin.state()["services"])
    assert len(names) == 3
    assert len(standin.admin.requests(method="GET", path=r"/services$")) == 2  # two pages

    deleted = run.delete_service(name=SVC).result(timeout=LRO_TIMEOUT)
    assert deleted.name == SVC
    with pytest.raises(gexc.NotFound):
        run.get_service(name=SVC)


# -- IAM ------------------------------------------------------------------------------------------

def test_iam_policy_round_trip_keeps_conditions_audit_configs_and_etags(
    run: run_v2.ServicesClient,
) -> None:
    request = {"resource": SVC, "options": {"requested_policy_version": 3}}
    policy = run.get_iam_policy(request=request)
    assert [b.role for b in policy.bindings] == ["roles/run.invoker"]
    stale = policy_pb2.Policy()
    stale.CopyFrom(policy)

    policy.version = 3
    policy.bindings.add(
        role="roles/run.developer", members=["user:oncall@example.com"],
        condition={"title": "business-hours", "expression": "request.time.getHours('UTC') < 18"},
    )
    policy.audit_configs.add(service="allServices", audit_log_configs=[{"log_type": 3}])
    # IAM's default update mask is "bindings,etag": audit configs need an explicit mask.
    without_mask = run.set_iam_policy(request={"resource": SVC, "policy": policy})
    assert not without_mask.audit_configs and len(without_mask.bindings) == 2
    policy.etag = without_mask.etag
    mask = field_mask_pb2.FieldMask(paths=["bindings", "etag", "audit_configs"])
    written = run.set_iam_policy(request={"resource": SVC, "policy": policy, "update_mask": mask})
    assert written.etag != policy.etag
    base64.b64encode(written.etag)  # bytes the client decoded from base64

    reread = run.get_iam_policy(request=request)
    assert reread == written
    assert reread.bindings[1].condition.title == "business-hours"
    assert reread.audit_configs[0].audit_log_configs[0].log_type == policy_pb2.AuditLogConfig.DATA_READ

    stale.bindings[0].members.append("allUsers")
    with pytest.raises(gexc.Conflict) as err:
        run.set_iam_policy(request={"resource": SVC, "policy": stale})
    assert _rpc_status(err.value) == "ABORTED"
    assert "allUsers" not in run.get_iam_policy(request=request).bindings[0].members


def test_never_set_policy_reads_as_iams_empty_policy(standin: Standin) -> None:
    standin.admin.seed({"services": [{"name": f"{PARENT}/services/bare"}]})
    policy = clients.run_services().get_iam_policy(request={"resource": f"{PARENT}/services/bare"})
    assert policy.etag == base64.b64decode("ACAB") and not policy.bindings and policy.version == 1


def test_iam_rejects_malformed_members_and_unconditional_versions(run: run_v2.ServicesClient) -> None:
    policy = run.get_iam_policy(request={"resource": SVC})
    bad_member = policy_pb2.Policy()
    bad_member.CopyFrom(policy)
    bad_member.bindings[0].members.append("alice@example.com")
    with pytest.raises(gexc.BadRequest, match="invalid member"):
        run.set_iam_policy(request={"resource": SVC, "policy": bad_member})
    policy.bindings.add(role="roles/run.invoker", members=["user:a@example.com"],
                        condition={"title": "t", "expression": "true"})
    with pytest.raises(gexc.BadRequest, match="version 3"):
        run.set_iam_policy(request={"resource": SVC, "policy": policy})


def test_iam_on_missing_service_is_not_found(run: run_v2.ServicesClient) -> None:
    with pytest.raises(gexc.NotFound):
        run.get_iam_policy(request={"resource": f"{PARENT}/services/nope"})


# -- faults ---------------------------------------------------------------------------------------

# The REST clients pick the exception class from the HTTP status alone, so 403 is Forbidden (the
# parent of PermissionDenied), 409 Conflict (parent of Aborted), 400 BadRequest (parent of
# FailedPrecondition) and 504 GatewayTimeout (parent of DeadlineExceeded): catch the parents.
@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, gexc.BadRequest),
        (403, gexc.Forbidden),
        (404, gexc.NotFound),
        (409, gexc.Conflict),
        (429, gexc.TooManyRequests),
        (500, gexc.InternalServerError),
        (503, gexc.ServiceUnavailable),
        (504, gexc.GatewayTimeout),
    ],
)
def test_status_faults_map_to_api_core_exceptions(
    run: run_v2.ServicesClient, standin: Standin, status: int, exc_type: type[Exception]
) -> None:
    svc = run.get_service(name=SVC)
    svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    standin.admin.fault("PATCH", r"/services/patient-api$", status=status, count=1)
    # update_service has no default retry, so the first answer reaches the caller.
    with pytest.raises(exc_type) as err:
        run.update_service(service=svc)
    assert type(err.value) is exc_type and err.value.code == status
    assert "injected fault" in err.value.message
    assert run.update_service(service=svc).result(timeout=LRO_TIMEOUT).ingress == svc.ingress


def test_unauthenticated_fault_makes_anonymous_credentials_try_to_refresh(
    run: run_v2.ServicesClient, standin: Standin
) -> None:
    from google.auth.exceptions import InvalidOperation

    # google-auth answers a 401 by refreshing the credentials; anonymous ones cannot refresh.
    standin.admin.fault("GET", r"/services/patient-api$", status=401, count=1)
    with pytest.raises(InvalidOperation, match="cannot be refreshed"):
        run.get_service(name=SVC)


def test_delay_fault_slows_matching_requests_only(run: run_v2.ServicesClient, standin: Standin) -> None:
    standin.admin.fault("GET", r"/services/patient-api$", delay_ms=300, count=1)
    started = time.perf_counter()
    run.get_service(name=SVC)
    assert time.perf_counter() - started >= 0.3
    standin.admin.fault("GET", r"/services/patient-api$", delay_ms=500, count=1)
    with pytest.raises(requests.exceptions.ReadTimeout):  # not wrapped in api_core exceptions
        run.get_service(name=SVC, timeout=0.15)
    deadline = time.monotonic() + 5  # the timed-out request is logged when its delay ends
    while len(standin.admin.requests(method="GET")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [bool(r.get("faults")) for r in standin.admin.requests(method="GET")] == [True, True]


def test_drop_fault_surfaces_as_a_connection_error(run: run_v2.ServicesClient, standin: Standin) -> None:
    standin.admin.fault("GET", r"/services/patient-api$", drop=True, count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        run.get_service(name=SVC)
    assert run.get_service(name=SVC).name == SVC


def test_move_etag_makes_the_next_conditional_write_conflict(
    run: run_v2.ServicesClient, standin: Standin
) -> None:
    svc = run.get_service(name=SVC)
    svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    standin.admin.fault("PATCH", r"/services/patient-api$", move_etag=True, count=1)
    with pytest.raises(gexc.Conflict):
        run.update_service(service=svc)
    moved = run.get_service(name=SVC)
    assert moved.etag != svc.etag and moved.last_modifier == core.DEFAULT_ACTOR
    moved.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    assert run.update_service(service=moved).result(timeout=LRO_TIMEOUT).etag != moved.etag


def test_move_etag_on_set_iam_policy(run: run_v2.ServicesClient, standin: Standin) -> None:
    policy = run.get_iam_policy(request={"resource": SVC})
    standin.admin.fault("POST", r":setIamPolicy$", move_etag=True, count=1)
    with pytest.raises(gexc.Conflict):
        run.set_iam_policy(request={"resource": SVC, "policy": policy})
    fresh = run.get_iam_policy(request={"resource": SVC})
    assert run.set_iam_policy(request={"resource": SVC, "policy": fresh}).etag != fresh.etag


def test_skip_lets_the_first_matches_through(run: run_v2.ServicesClient, standin: Standin) -> None:
    standin.admin.fault("GET", r":getIamPolicy$", status=403, skip=1, count=1)
    run.get_iam_policy(request={"resource": SVC})
    with pytest.raises(gexc.Forbidden):
        run.get_iam_policy(request={"resource": SVC})
    run.get_iam_policy(request={"resource": SVC})


def test_probabilistic_faults_repeat_with_the_same_seed(
    run: run_v2.ServicesClient, standin: Standin
) -> None:
    def outcomes() -> list[bool]:
        result = []
        for _ in range(40):  # getIamPolicy has no default retry, so every answer is visible
            try:
                run.get_iam_policy(request={"resource": SVC})
                result.append(True)
            except gexc.ServiceUnavailable:
                result.append(False)
        return result

    standin.admin.fault("GET", r":getIamPolicy$", status=503, count=None, probability=0.5, seed=7)
    first = outcomes()
    standin.admin.clear_faults()
    standin.admin.fault("GET", r":getIamPolicy$", status=503, count=None, probability=0.5, seed=7)
    assert outcomes() == first
    assert 5 < first.count(False) < 35


def test_fault_specs_are_validated(standin: Standin) -> None:
    with pytest.raises(StandinError, match="unknown field"):
        standin.admin._call("POST", "/_standin/faults", {"method": "GET", "statsu": 503})
    with pytest.raises(StandinError, match="at least one effect"):
        standin.admin.fault("GET", "x")


# -- concurrent writers ---------------------------------------------------------------------------

def test_mutate_changes_state_and_moves_etags(run: run_v2.ServicesClient, standin: Standin) -> None:
    svc = run.get_service(name=SVC)
    policy = run.get_iam_policy(request={"resource": SVC})

    standin.admin.mutate(SVC, iam_add={"role": "roles/run.invoker", "member": "allUsers"})
    assert "allUsers" in run.get_iam_policy(request={"resource": SVC}).bindings[0].members
    with pytest.raises(gexc.Conflict):
        run.set_iam_policy(request={"resource": SVC, "policy": policy})

    standin.admin.mutate(SVC, patch={"ingress": "INGRESS_TRAFFIC_ALL", "template": {"vpcAccess": None}},
                         actor="mallory@example.com")
    changed = run.get_service(name=SVC)
    assert changed.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    assert not changed.template.vpc_access.egress
    assert changed.last_modifier == "mallory@example.com" and changed.generation == svc.generation + 1
    with pytest.raises(gexc.Conflict):
        run.update_service(service=svc)

    standin.admin.mutate(SVC, delete=True)
    with pytest.raises(gexc.NotFound):
        run.get_service(name=SVC)


def test_concurrent_read_modify_write_loses_no_update(run: run_v2.ServicesClient) -> None:
    wins: list[int] = []

    def writer(worker: int) -> None:
        for attempt in range(8):
            svc = run.get_service(name=SVC)
            svc.labels[f"writer-{worker}"] = str(attempt)
            try:
                run.update_service(service=svc).result(timeout=LRO_TIMEOUT)
                wins.append(worker)
            except gexc.Conflict:
                pass  # someone else wrote between our read and our write

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    final = run.get_service(name=SVC)
    # Every accepted write moved the generation exactly once; no write slipped past the etag check.
    assert final.generation == 1 + len(wins)
    assert {k for k in final.labels if k.startswith("writer-")} == {f"writer-{w}" for w in set(wins)}


# -- admin, request log, process ------------------------------------------------------------------

def test_request_log_records_api_calls_only(run: run_v2.ServicesClient, standin: Standin) -> None:
    standin.admin.clear_requests()
    run.get_service(name=SVC)
    standin.admin.state()  # admin calls are not logged
    (entry,) = standin.admin.requests()
    assert entry["method"] == "GET" and entry["path"] == f"/v2/{SVC}" and entry["status"] == 200
    assert entry["time"] > 0 and entry["durationMs"] >= 0
    standin.admin.clear_requests()
    assert standin.admin.requests() == []


def test_seed_is_all_or_nothing_and_state_round_trips(standin: Standin) -> None:
    standin.seed_example()
    state = standin.admin.state()
    with pytest.raises(StandinError, match="not in the state"):
        standin.admin.seed({"services": [{"name": f"{PARENT}/services/extra"}],
                            "cryptoKeys": [{"name": f"{PARENT}/keyRings/ghost/cryptoKeys/k"}]})
    assert standin.admin.state() == state
    standin.admin.reset()
    standin.admin.seed(state)
    assert standin.admin.state() == state


def test_enum_tables_match_the_installed_protos() -> None:
    assert proto_enum_paths(run_v2.Service.pb().DESCRIPTOR) == standin_run.RUN_SERVICE_ENUMS
    assert proto_enum_paths(policy_pb2.Policy.DESCRIPTOR) == iam.IAM_POLICY_ENUMS


def test_in_process_server_serves_the_real_client(monkeypatch: pytest.MonkeyPatch) -> None:
    with StandinServer(seed=load_seed(SEED_EXAMPLE)) as server:
        monkeypatch.setenv(clients.RUN_ENDPOINT_ENV, server.url)
        clients.reset()
        try:
            assert clients.run_services().get_service(name=SVC).name == SVC
            assert StandinAdmin(server.url).requests(method="GET")[0]["status"] == 200
        finally:
            clients.reset()


def test_request_log_is_a_bounded_ring_buffer() -> None:
    app = App(log_size=5)
    for i in range(12):
        app.handle("GET", f"{PARENT}/services/s{i}", "", b"")
    assert [e["path"] for e in app.log] == [f"{PARENT}/services/s{i}" for i in range(7, 12)]


def test_cli_refuses_a_non_loopback_host() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "infra.local.standin", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )
    assert proc.returncode == 2 and "loopback" in proc.stderr


def test_endpoint_override_must_be_loopback_http_or_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clients.RUN_ENDPOINT_ENV, "http://10.0.0.5:8080")
    with pytest.raises(ValueError, match=r"http://127\.0\.0\.1:PORT"):
        clients.endpoint_override(clients.RUN_ENDPOINT_ENV)
    monkeypatch.setenv(clients.RUN_ENDPOINT_ENV, "http://127.0.0.1:8089/")
    assert clients.endpoint_override(clients.RUN_ENDPOINT_ENV) == "http://127.0.0.1:8089"
