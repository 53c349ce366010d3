"""shared/views/functions.py: a Cloud Run function (Cloud Functions v2 `Function`,
cloudfunctions.v2.json) from a hand-written entry, live read or asset record."""

from __future__ import annotations

from typing import Any

import proto

from shared.event import AuditEvent
from shared.views import functions as fv

FN = "projects/p1/locations/us-central1/functions/hook"
CONNECTOR = "projects/p1/locations/us-central1/connectors/c"
KEY = "projects/p1/locations/us/keyRings/r/cryptoKeys/k"


def _fn(**changes: Any) -> fv.FunctionView:
    """The view of a bare function named FN (every field at its default), with `changes`."""
    base: dict[str, Any] = {"name": FN, "project": "p1", "location": "us-central1", "ingress": "ALLOW_ALL", "service_account": "",
                            "vpc_connector": "", "vpc_egress": "", "encryption_key": "", "env": (), "run_service": "",
                            "has_vpc_access": False, "known": fv.ALL_FIELDS}
    return fv.FunctionView(**{**base, **changes})


def test_a_live_function_with_a_connector_reads_as_written() -> None:
    view = fv.from_live({"name": FN, "kmsKeyName": KEY, "serviceConfig": {
        "ingressSettings": "ALLOW_INTERNAL_ONLY", "serviceAccountEmail": "hook@p1.iam.gserviceaccount.com",
        "vpcConnector": CONNECTOR, "vpcConnectorEgressSettings": "ALL_TRAFFIC",
        "environmentVariables": {"A": "1"}, "secretEnvironmentVariables": [{"key": "S", "secret": "s", "version": "1"}],
        "service": "projects/p1/locations/us-central1/services/hook"}})
    assert view == fv.FunctionView(
        name=FN, project="p1", location="us-central1", ingress="ALLOW_INTERNAL_ONLY",
        service_account="hook@p1.iam.gserviceaccount.com", vpc_connector=CONNECTOR,
        vpc_egress="ALL_TRAFFIC", encryption_key=KEY,
        env=(fv.EnvVar("", "A", "1"), fv.EnvVar("", "S", None)), run_service="projects/p1/locations/us-central1/services/hook",
        has_vpc_access=True, known=fv.ALL_FIELDS)


def test_a_bare_live_function_has_the_api_defaults() -> None:
    assert fv.from_live({"name": FN}) == _fn()
    assert fv.FunctionView.resource_type == "functions.function"


def test_a_function_not_named_as_one_is_none() -> None:
    assert fv.from_live({"name": "projects/p1/functions/hook"}) is None  # no location
    assert fv.from_live({"name": "projects/p1/locations/us-central1/services/hook"}) is None
    assert fv.from_live({"name": "folders/1/locations/us-central1/functions/hook"}) is None
    assert fv.from_live({}) is None


def test_ingress_settings_by_name_or_number_and_unset_is_allow_all() -> None:
    for value, expected in (("ALLOW_INTERNAL_AND_GCLB", "ALLOW_INTERNAL_AND_GCLB"), (2, "ALLOW_INTERNAL_ONLY"),
                            ("INGRESS_SETTINGS_UNSPECIFIED", "ALLOW_ALL"), (0, "ALLOW_ALL"), ("", "ALLOW_ALL"),
                            (None, "ALLOW_ALL")):
        assert fv.from_live({"name": FN, "serviceConfig": {"ingressSettings": value}}) == _fn(ingress=expected), value
    snake = fv.from_live({"name": FN, "service_config": {"ingress_settings": "ALLOW_INTERNAL_ONLY"}})
    assert snake == _fn(ingress="ALLOW_INTERNAL_ONLY")


def test_environment_variables_that_are_not_text_read_as_none() -> None:
    view = fv.from_live({"name": FN, "serviceConfig": {"environmentVariables": {"N": 5, "T": "t"},
                                                       "secretEnvironmentVariables": [{"key": "S1"}, {"secret": "x"}]}})
    assert view == _fn(env=(fv.EnvVar("", "N", None), fv.EnvVar("", "T", "t"), fv.EnvVar("", "S1", None),
                            fv.EnvVar("", "", None)))


def test_a_connector_with_unspecified_or_no_egress_defaults_to_private_ranges() -> None:
    for value in (None, "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED", 0):
        view = fv.from_live({"name": FN, "serviceConfig": {"vpcConnector": CONNECTOR, "vpcConnectorEgressSettings": value}})
        assert view == _fn(vpc_connector=CONNECTOR, vpc_egress="PRIVATE_RANGES_ONLY", has_vpc_access=True), value
    numbered = fv.from_live({"name": FN, "serviceConfig": {"vpcConnector": CONNECTOR, "vpcConnectorEgressSettings": 2}})
    assert numbered == _fn(vpc_connector=CONNECTOR, vpc_egress="ALL_TRAFFIC", has_vpc_access=True)


def test_direct_vpc_egress_is_read_only_with_a_network_interface() -> None:
    direct = fv.from_live({"name": FN, "serviceConfig": {"directVpcNetworkInterface": [{"network": "n"}],
                                                         "directVpcEgress": "VPC_EGRESS_ALL_TRAFFIC"}})
    assert direct == _fn(vpc_egress="ALL_TRAFFIC", has_vpc_access=True)
    private = fv.from_live({"name": FN, "serviceConfig": {"directVpcNetworkInterface": [{"network": "n"}],
                                                          "directVpcEgress": "VPC_EGRESS_PRIVATE_RANGES_ONLY"}})
    assert private == _fn(vpc_egress="PRIVATE_RANGES_ONLY", has_vpc_access=True)
    unset = fv.from_live({"name": FN, "serviceConfig": {"directVpcNetworkInterface": [{"network": "n"}]}})
    assert unset == _fn(vpc_egress="PRIVATE_RANGES_ONLY", has_vpc_access=True)
    unknown = fv.from_live({"name": FN, "serviceConfig": {"directVpcNetworkInterface": [{}], "directVpcEgress": "ALL_TRAFFIC"}})
    assert unknown == _fn(vpc_egress="PRIVATE_RANGES_ONLY", has_vpc_access=True)
    no_interface = fv.from_live({"name": FN, "serviceConfig": {"directVpcNetworkInterface": [],
                                                               "directVpcEgress": "VPC_EGRESS_ALL_TRAFFIC"}})
    assert no_interface == _fn()


def test_a_connector_wins_over_direct_vpc_egress() -> None:
    view = fv.from_live({"name": FN, "serviceConfig": {"vpcConnector": CONNECTOR, "directVpcNetworkInterface": [{"network": "n"}],
                                                       "directVpcEgress": "VPC_EGRESS_ALL_TRAFFIC"}})
    assert view == _fn(vpc_connector=CONNECTOR, vpc_egress="PRIVATE_RANGES_ONLY", has_vpc_access=True)


def test_run_service_only_in_its_full_form() -> None:
    assert fv.from_live({"name": FN, "serviceConfig": {"service": "hook"}}) == _fn()
    assert fv.from_live({"name": FN, "serviceConfig": {"service": "projects/p1/locations/us-central1/services/hook"}}) == _fn(
        run_service="projects/p1/locations/us-central1/services/hook")


# ---------------------------------------------------------------------------
# A live read as a client message (proto-plus), here a message with the Function's field names.


class _IngressSettings(proto.Enum):
    INGRESS_SETTINGS_UNSPECIFIED = 0
    ALLOW_ALL = 1
    ALLOW_INTERNAL_ONLY = 2
    ALLOW_INTERNAL_AND_GCLB = 3


class _EgressSettings(proto.Enum):
    VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED = 0
    PRIVATE_RANGES_ONLY = 1
    ALL_TRAFFIC = 2


class _SecretEnvVar(proto.Message):
    key = proto.Field(proto.STRING, number=1)
    secret = proto.Field(proto.STRING, number=2)


class _ServiceConfig(proto.Message):
    ingress_settings = proto.Field(proto.ENUM, number=1, enum=_IngressSettings)
    service_account_email = proto.Field(proto.STRING, number=2)
    environment_variables = proto.MapField(proto.STRING, proto.STRING, number=3)
    vpc_connector = proto.Field(proto.STRING, number=4)
    vpc_connector_egress_settings = proto.Field(proto.ENUM, number=5, enum=_EgressSettings)
    secret_environment_variables = proto.RepeatedField(_SecretEnvVar, number=6)


class _Function(proto.Message):
    name = proto.Field(proto.STRING, number=1)
    service_config = proto.Field(_ServiceConfig, number=2)
    kms_key_name = proto.Field(proto.STRING, number=3)


def test_from_live_of_a_client_message_reads_it_as_rest_json() -> None:
    message = _Function(name=FN, kms_key_name=KEY, service_config=_ServiceConfig(
        ingress_settings=_IngressSettings.ALLOW_INTERNAL_ONLY, service_account_email="hook@p1.iam.gserviceaccount.com",
        environment_variables={"A": "1"}))
    assert fv.from_live(message) == _fn(ingress="ALLOW_INTERNAL_ONLY", service_account="hook@p1.iam.gserviceaccount.com",
                                        encryption_key=KEY, env=(fv.EnvVar("", "A", "1"),))


def test_from_live_of_a_client_message_reads_the_same_with_any_to_dict_options() -> None:
    message = _Function(name=FN, service_config=_ServiceConfig(
        ingress_settings=_IngressSettings.ALLOW_INTERNAL_AND_GCLB, vpc_connector=CONNECTOR,
        vpc_connector_egress_settings=_EgressSettings.ALL_TRAFFIC, secret_environment_variables=[_SecretEnvVar(key="S")]))
    expected = _fn(ingress="ALLOW_INTERNAL_AND_GCLB", vpc_connector=CONNECTOR, vpc_egress="ALL_TRAFFIC", has_vpc_access=True,
                   env=(fv.EnvVar("", "S", None),))
    assert fv.from_live(message) == expected
    for numbers in (False, True):
        for snake in (False, True):
            body = _Function.to_dict(message, use_integers_for_enums=numbers, preserving_proto_field_name=snake)
            assert fv.from_live(body) == expected, (numbers, snake)


# ---------------------------------------------------------------------------
# Entries.


def _event(method: str = "CreateFunction", request: dict[str, Any] | None = None, response: dict[str, Any] | None = None,
           resource_name: str = "") -> AuditEvent:
    return AuditEvent("cloudfunctions.googleapis.com", f"google.cloud.functions.v2.FunctionService.{method}", resource_name, "p1",
                      "us-central1", "alice@example.com", "id-1", "2026-01-01T00:00:00Z", "activity", 0, "", "cloud_function",
                      request=request or {}, response=response or {})


def test_locate_reads_the_request_function_then_the_response() -> None:
    assert fv.locate(_event(request={"function": {"name": FN}}, response={"name": "projects/p2/locations/eu/functions/x"})) == FN
    assert fv.locate(_event(response={"name": FN})) == FN


def test_locate_of_a_create_joins_parent_and_function_id() -> None:
    assert fv.locate(_event(request={"parent": "projects/p1/locations/us-central1", "functionId": "hook"})) == FN
    assert fv.locate(_event(request={"parent": "projects/p1/locations/us-central1", "function_id": "hook",
                                     "function": {"name": "hook"}})) == FN


def test_locate_falls_back_to_the_resource_name() -> None:
    assert fv.locate(_event(request={"parent": "projects/p1/locations/us-central1"}, resource_name=FN)) == FN
    assert fv.locate(_event(request={"functionId": "hook"}, resource_name=FN)) == FN
    assert fv.locate(_event(request={"function": {"name": "hook"}})) is None


def test_from_entry_of_a_create_states_every_field() -> None:
    event = _event(request={"function": {"name": FN, "serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_ONLY"}},
                            "updateMask": "labels"}, response={"name": FN, "serviceConfig": {}})
    assert fv.from_entry(event, FN) == _fn(ingress="ALLOW_INTERNAL_ONLY")


def test_from_entry_of_an_update_without_a_mask_states_every_field() -> None:
    event = _event("UpdateFunction", {"function": {"name": FN, "kmsKeyName": KEY}})
    assert fv.from_entry(event, FN) == _fn(encryption_key=KEY)


def test_from_entry_of_an_update_states_only_the_masked_fields() -> None:
    body = {"name": FN, "serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_ONLY"}}
    event = _event("UpdateFunction", {"function": body, "updateMask": "service_config.ingress_settings,kmsKeyName, labels"})
    assert fv.from_entry(event, FN) == _fn(ingress="ALLOW_INTERNAL_ONLY", known=frozenset({"ingress", "encryption_key"}))
    paths = _event("UpdateFunction", {"function": body, "updateMask": {"paths": ["serviceConfig.vpcConnector",
                                                                                   "serviceConfig.environmentVariables"]}})
    assert fv.from_entry(paths, FN) == _fn(ingress="ALLOW_INTERNAL_ONLY", known=frozenset({"vpc", "env"}))
    other = _event("UpdateFunction", {"function": body, "updateMask": "labels"})
    assert fv.from_entry(other, FN) == _fn(ingress="ALLOW_INTERNAL_ONLY", known=frozenset())


def test_from_entry_of_an_update_of_the_whole_service_config_states_every_field() -> None:
    for mask in ("service_config", "labels,serviceConfig"):
        event = _event("UpdateFunction", {"function": {"name": FN}, "updateMask": mask})
        assert fv.from_entry(event, FN) == _fn(), mask


def test_from_entry_of_an_update_of_the_whole_service_config_reads_the_request_function() -> None:
    event = _event("UpdateFunction", {"function": {"name": FN, "serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_ONLY"}},
                                      "updateMask": "service_config"})
    assert fv.from_entry(event, FN) == _fn(ingress="ALLOW_INTERNAL_ONLY")


def test_from_entry_of_a_deploy_last_entry_reads_the_response() -> None:
    with_config = _event(response={"serviceConfig": {"serviceAccountEmail": "a@p1.iam.gserviceaccount.com"}})
    assert fv.from_entry(with_config, FN) == _fn(service_account="a@p1.iam.gserviceaccount.com")
    named = _event(response={"name": FN, "kmsKeyName": KEY})
    assert fv.from_entry(named, FN) == _fn(encryption_key=KEY)


def test_from_entry_without_a_function_anywhere_is_none() -> None:
    assert fv.from_entry(_event(response={"done": True}), FN) is None
    assert fv.from_entry(_event(request={"function": {}}), FN) is None


def test_from_asset_reads_a_v2_function_record_only() -> None:
    record = {"name": f"//cloudfunctions.googleapis.com/{FN}", "assetType": "cloudfunctions.googleapis.com/Function",
              "resource": {"data": {"name": FN, "serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_AND_GCLB"}}}}
    assert fv.from_asset(record) == _fn(ingress="ALLOW_INTERNAL_AND_GCLB")
    first_gen = {**record, "resource": {"data": {"name": FN, "httpsTrigger": {}}}}
    assert fv.from_asset(first_gen) is None
    assert fv.from_asset({**record, "resource": {"data": {}}}) is None
    assert fv.from_asset({**record, "assetType": "run.googleapis.com/Service"}) is None


def test_the_function_kind() -> None:
    assert fv.FUNCTION.name == "functions.function"
    assert fv.FUNCTION.asset_types == ("cloudfunctions.googleapis.com/Function",)
