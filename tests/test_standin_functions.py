"""The Cloud Functions v2 stand-in, driven through the real functions_v2.FunctionServiceClient (REST),
and what it shows: a fix made on a function's Cloud Run service does not survive the next deploy."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from google.cloud import functions_v2, run_v2
from google.protobuf import field_mask_pb2

from infra.local.standin import cloudfunctions_v2 as standin_fn
from shared import clients
from tests.support.fixtures_standin import Standin, proto_enum_paths

pytestmark = pytest.mark.integration

PARENT = "projects/demo-project/locations/us-central1"
FN = f"{PARENT}/functions/intake"
SVC = f"{PARENT}/services/intake"
LRO = 5.0
Ingress = functions_v2.ServiceConfig.IngressSettings


@pytest.fixture
def fns(standin: Standin) -> functions_v2.FunctionServiceClient:
    standin.admin.seed({
        "services": [{"name": SVC, "ingress": "INGRESS_TRAFFIC_ALL"}],
        "functions": [{"name": FN, "serviceConfig": {"service": SVC}, "buildConfig": {"runtime": "python312"}}],
    })
    return clients.functions()


def _deploy_new_code(fns: functions_v2.FunctionServiceClient) -> None:
    """What `gcloud functions deploy` without --ingress-settings sends: ingress is not in the mask."""
    fn = fns.get_function(name=FN)
    fn.build_config.entry_point = "handle_v2"
    fns.update_function(function=fn, update_mask=field_mask_pb2.FieldMask(paths=["build_config.entry_point"])).result(LRO)


def test_defaults_are_the_apis_open_ones(fns: functions_v2.FunctionServiceClient) -> None:
    fn = fns.get_function(name=FN)
    assert fn.service_config.ingress_settings == Ingress.ALLOW_ALL
    assert fn.service_config.service_account_email.endswith("-compute@developer.gserviceaccount.com")
    assert fn.service_config.service == SVC and fn.state == functions_v2.Function.State.ACTIVE


def test_a_fix_on_the_run_service_is_undone_by_the_next_function_deploy(
    fns: functions_v2.FunctionServiceClient,
) -> None:
    run = clients.run_services()
    svc = run.get_service(name=SVC)
    svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER
    run.update_service(service=svc).result(LRO)
    _deploy_new_code(fns)
    assert run.get_service(name=SVC).ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL


def test_a_fix_through_the_functions_api_survives_the_next_deploy(fns: functions_v2.FunctionServiceClient) -> None:
    fn = fns.get_function(name=FN)
    fn.service_config.ingress_settings = Ingress.ALLOW_INTERNAL_AND_GCLB
    done = fns.update_function(
        function=fn, update_mask=field_mask_pb2.FieldMask(paths=["service_config.ingress_settings"])
    ).result(LRO)
    assert done.service_config.ingress_settings == Ingress.ALLOW_INTERNAL_AND_GCLB
    _deploy_new_code(fns)
    assert fns.get_function(name=FN).service_config.ingress_settings == Ingress.ALLOW_INTERNAL_AND_GCLB
    svc = clients.run_services().get_service(name=SVC)
    assert svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER


def test_masked_update_changes_only_the_masked_field(fns: functions_v2.FunctionServiceClient) -> None:
    fn = fns.get_function(name=FN)
    fn.service_config.ingress_settings = Ingress.ALLOW_INTERNAL_ONLY
    fn.build_config.runtime = "python39"
    fns.update_function(function=fn, update_mask=field_mask_pb2.FieldMask(paths=["service_config.ingress_settings"])).result(LRO)
    after = fns.get_function(name=FN)
    assert after.service_config.ingress_settings == Ingress.ALLOW_INTERNAL_ONLY
    assert after.build_config.runtime == "python312"


def test_iam_policy_round_trip_and_missing_function(fns: functions_v2.FunctionServiceClient) -> None:
    pol = fns.get_iam_policy(request={"resource": FN})
    pol.bindings.add(role="roles/cloudfunctions.invoker", members=["allUsers"])
    fns.set_iam_policy(request={"resource": FN, "policy": pol})
    assert [b.members for b in fns.get_iam_policy(request={"resource": FN}).bindings] == [["allUsers"]]
    with pytest.raises(gexc.NotFound):
        fns.get_function(name=f"{PARENT}/functions/nope")


def test_enum_tables_match_the_installed_protos() -> None:
    assert proto_enum_paths(functions_v2.Function.pb().DESCRIPTOR) == standin_fn.FUNCTION_ENUMS
