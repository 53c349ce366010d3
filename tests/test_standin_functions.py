"""The Cloud Functions v2 stand-in over REST, as Rampart calls it (shared.clients.functions_rest),
and what it shows: a fix made on a function's Cloud Run service does not survive the next deploy."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import run_v2

from infra.local.standin import cloudfunctions_v2 as standin_fn
from shared import clients
from shared.actions import rest_call
from tests.support.contract import discovery
from tests.support.fixtures_standin import Standin

pytestmark = pytest.mark.integration

PARENT = "projects/demo-project/locations/us-central1"
FN = f"{PARENT}/functions/intake"
SVC = f"{PARENT}/services/intake"
LRO = 5.0


def fns(method: str, path: str, **kw: Any) -> Any:
    return rest_call(clients.functions_rest(), method, f"v2/{path}", LRO, **kw)


@pytest.fixture
def deployed(standin: Standin) -> Standin:
    standin.admin.seed({
        "services": [{"name": SVC, "ingress": "INGRESS_TRAFFIC_ALL"}],
        "functions": [{"name": FN, "serviceConfig": {"service": SVC}, "buildConfig": {"runtime": "python312"}}],
    })
    return standin


def _deploy_new_code() -> None:
    """What `gcloud functions deploy` without --ingress-settings sends: ingress is not in the mask."""
    op = fns("PATCH", FN, params={"updateMask": "buildConfig.entryPoint"}, json={"buildConfig": {"entryPoint": "handle_v2"}})
    assert op["done"] and op["response"]["buildConfig"]["entryPoint"] == "handle_v2"


def test_defaults_are_the_apis_open_ones(deployed: Standin) -> None:
    fn = fns("GET", FN)
    assert fn["serviceConfig"]["ingressSettings"] == "ALLOW_ALL"
    assert fn["serviceConfig"]["serviceAccountEmail"].endswith("-compute@developer.gserviceaccount.com")
    assert fn["serviceConfig"]["service"] == SVC and fn["state"] == "ACTIVE"


def test_a_fix_on_the_run_service_is_undone_by_the_next_function_deploy(deployed: Standin) -> None:
    run = clients.run_services()
    svc = run.get_service(name=SVC)
    svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER
    run.update_service(service=svc).result(LRO)
    _deploy_new_code()
    assert run.get_service(name=SVC).ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL


def test_a_fix_through_the_functions_api_survives_the_next_deploy(deployed: Standin) -> None:
    op = fns("PATCH", FN, params={"updateMask": "serviceConfig.ingressSettings"},
             json={"serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_AND_GCLB"}})
    assert op["response"]["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_AND_GCLB"
    _deploy_new_code()
    assert fns("GET", FN)["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_AND_GCLB"
    svc = clients.run_services().get_service(name=SVC)
    assert svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER


def test_masked_update_changes_only_the_masked_field(deployed: Standin) -> None:
    fns("PATCH", FN, params={"updateMask": "service_config.ingress_settings"},
        json={"serviceConfig": {"ingressSettings": 2}, "buildConfig": {"runtime": "python39"}})  # snake mask, int enum
    after = fns("GET", FN)
    assert after["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_ONLY"
    assert after["buildConfig"]["runtime"] == "python312"


def test_iam_policy_round_trip_and_missing_function(deployed: Standin) -> None:
    pol = fns("GET", f"{FN}:getIamPolicy")
    pol["bindings"] = [{"role": "roles/cloudfunctions.invoker", "members": ["allUsers"]}]
    fns("POST", f"{FN}:setIamPolicy", json={"policy": pol})
    assert [b["members"] for b in fns("GET", f"{FN}:getIamPolicy")["bindings"]] == [["allUsers"]]
    with pytest.raises(gexc.NotFound):
        fns("GET", f"{PARENT}/functions/nope")


def test_enum_tables_hold_the_discovery_documents_values() -> None:
    doc = discovery("cloudfunctions.v2.json")
    sc = doc.schemas["ServiceConfig"]["properties"]
    assert list(standin_fn.INGRESS.values()) == sc["ingressSettings"]["enum"]
    assert list(standin_fn.CONNECTOR_EGRESS.values()) == sc["vpcConnectorEgressSettings"]["enum"]
