"""shared.views.iam on its own: hand-written SetIamPolicy entries (with and without a
policyDelta), live getIamPolicy answers and Asset Inventory records in, the policy view out
(expected values written by hand, not computed by the code under test). Shapes from
google.iam.v1 (Policy, Binding, Expr; AuditData.policyDelta.bindingDeltas) and cloudasset.v1.json
(IamPolicySearchResult, Asset.iamPolicy)."""

from __future__ import annotations

from typing import Any

from google.iam.v1 import policy_pb2
from google.type import expr_pb2

from shared.event import AuditEvent
from shared.views import iam
from shared.views.iam import Binding, Condition, IamDelta, PolicyView

KEY = "projects/p1/locations/us/keyRings/ring/cryptoKeys/k1"
SERVICE = "projects/p1/locations/europe-west1/services/web"
ENC = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
INVOKER = "roles/run.invoker"
DEV = Condition("request.time < timestamp('2027-02-01T00:00:00Z')", "until Feb", "temporary")


def _event(request: Any = None, response: Any = None, service_data: Any = None, resource_name: str = "",
           service: str = "cloudkms.googleapis.com", location: str = "us") -> AuditEvent:
    return AuditEvent(
        service=service, method="SetIamPolicy", resource_name=resource_name, project="p1", location=location,
        principal="alice@example.com", insert_id="i-1", timestamp="2027-01-15T08:00:00Z", log_kind="activity",
        status_code=0, status_message="", resource_type="cloudkms_cryptokey",
        request=request if request is not None else {}, response=response if response is not None else {},
        service_data=service_data if service_data is not None else {},
    )


def _delta(*deltas: dict[str, Any]) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.iam.v1.logging.AuditData", "policyDelta": {"bindingDeltas": list(deltas)}}


def _key_view(bindings: tuple[Binding, ...], prior: tuple[Binding, ...] | None = None, complete: bool = True) -> PolicyView:
    return PolicyView(KEY, "p1", "us", "kms.cryptoKey", bindings, prior, complete)


# ---------------------------------------------------------------------------
# The view's questions.


def test_members_of_a_role_with_and_without_conditional_grants() -> None:
    view = _key_view((Binding(ENC, ("user:a@example.com", "user:b@example.com")),
                      Binding(ENC, ("user:c@example.com",), DEV),
                      Binding(INVOKER, ("allUsers",))))
    assert view.members(ENC) == {"user:a@example.com", "user:b@example.com", "user:c@example.com"}
    assert view.members(ENC, conditional=False) == {"user:a@example.com", "user:b@example.com"}
    assert view.members(INVOKER, conditional=False) == {"allUsers"}
    assert view.members("roles/owner") == set()


def test_grants_are_sorted_pairs_without_repeats_and_only_of_the_members_asked() -> None:
    view = _key_view((Binding(INVOKER, ("user:b@example.com", "allUsers")),
                      Binding(ENC, ("user:b@example.com",)),
                      Binding(ENC, ("user:b@example.com",), DEV)))
    assert view.grants() == [(ENC, "user:b@example.com"), (INVOKER, "allUsers"), (INVOKER, "user:b@example.com")]
    assert view.grants(["allUsers", "allAuthenticatedUsers"]) == [(INVOKER, "allUsers")]
    assert view.grants(iter(["user:b@example.com"])) == [(ENC, "user:b@example.com"), (INVOKER, "user:b@example.com")]
    assert view.grants([]) == []


# ---------------------------------------------------------------------------
# Raw JSON readers.


def test_a_condition_with_its_title_and_description() -> None:
    raw = {"expression": DEV.expression, "title": "until Feb", "description": "temporary"}
    assert iam._condition(raw) == DEV
    assert iam._condition({"expression": "true"}) == Condition("true", "", "")


def test_no_condition_is_none() -> None:
    assert iam._condition({}) is None
    assert iam._condition(None) is None
    assert iam._condition("request.time < x") is None


def test_bindings_of_a_policy_keep_order_roles_string_members_and_conditions() -> None:
    policy = {"etag": "BwX", "bindings": [
        {"role": ENC, "members": ["user:a@example.com", 7, "group:g@example.com"]},
        {"role": INVOKER, "members": ["allUsers"], "condition": {"expression": DEV.expression, "title": "until Feb",
                                                                 "description": "temporary"}},
        {"members": ["user:x@example.com"]},
    ]}
    assert iam.bindings_of(policy) == (
        Binding(ENC, ("user:a@example.com", "group:g@example.com")),
        Binding(INVOKER, ("allUsers",), DEV),
        Binding("", ("user:x@example.com",)),
    )
    assert iam.bindings_of({}) == ()


def test_a_delta_action_as_a_name_or_a_number() -> None:
    assert iam._delta_action("ADD") == "ADD"
    assert iam._delta_action("REMOVE") == "REMOVE"
    assert iam._delta_action(1) == "ADD"
    assert iam._delta_action(2) == "REMOVE"
    assert iam._delta_action(0) == ""
    assert iam._delta_action(True) == ""
    assert iam._delta_action(None) == ""


# ---------------------------------------------------------------------------
# The delta.


def test_delta_of_an_entry_lists_the_pairs_added_and_removed() -> None:
    event = _event(service_data=_delta(
        {"action": "ADD", "role": ENC, "member": "allUsers"},
        {"action": 2, "role": INVOKER, "member": "user:a@example.com"},
        {"action": 1, "role": INVOKER, "member": "allAuthenticatedUsers", "condition": {"expression": "true"}},
        {"action": "ACTION_UNSPECIFIED", "role": ENC, "member": "user:b@example.com"},
    ))
    assert iam.delta_of(event) == IamDelta(added=((ENC, "allUsers"), (INVOKER, "allAuthenticatedUsers")),
                                           removed=((INVOKER, "user:a@example.com"),))


def test_an_entry_without_a_delta_has_none() -> None:
    assert iam.delta_of(_event(service_data={"policyDelta": {}})) is None
    assert iam.delta_of(_event()) is None


def test_deltas_read_each_change_with_its_condition() -> None:
    event = _event(service_data=_delta({"action": "ADD", "role": ENC, "member": "allUsers", "condition": {
        "expression": DEV.expression, "title": "until Feb", "description": "temporary"}}))
    assert iam._deltas(event) == [("ADD", ENC, "allUsers", DEV)]


# ---------------------------------------------------------------------------
# Applying a delta.


def test_apply_drops_members_removed_and_bindings_left_empty() -> None:
    bindings = (Binding(ENC, ("user:a@example.com", "user:b@example.com")), Binding(INVOKER, ("allUsers",)))
    drop = {(ENC, "user:a@example.com", None), (INVOKER, "allUsers", None)}
    assert iam._apply(bindings, drop, []) == (Binding(ENC, ("user:b@example.com",)),)


def test_apply_drops_only_the_grant_with_the_same_condition() -> None:
    bindings = (Binding(ENC, ("user:a@example.com",)), Binding(ENC, ("user:a@example.com",), DEV))
    assert iam._apply(bindings, {(ENC, "user:a@example.com", DEV)}, []) == (Binding(ENC, ("user:a@example.com",)),)


def test_apply_adds_to_the_binding_of_the_same_role_and_condition_once() -> None:
    bindings = (Binding(ENC, ("user:a@example.com",)), Binding(ENC, ("user:c@example.com",), DEV))
    add = [(ENC, "user:b@example.com", None), (ENC, "user:a@example.com", None), (INVOKER, "allUsers", None),
           (ENC, "user:d@example.com", DEV)]
    assert iam._apply(bindings, set(), add) == (
        Binding(ENC, ("user:a@example.com", "user:b@example.com")),
        Binding(ENC, ("user:c@example.com", "user:d@example.com"), DEV),
        Binding(INVOKER, ("allUsers",)),
    )


def test_apply_merges_bindings_of_the_same_role_and_condition() -> None:
    bindings = (Binding(ENC, ("user:a@example.com",)), Binding(ENC, ("user:b@example.com", "user:a@example.com")))
    assert iam._apply(bindings, set(), []) == (Binding(ENC, ("user:a@example.com", "user:b@example.com")),)


# ---------------------------------------------------------------------------
# Locating.


def test_an_entry_is_located_by_its_request_resource_then_its_resource_name() -> None:
    assert iam.locate(_event({"resource": KEY}, resource_name="projects/p1")) == KEY
    assert iam.locate(_event({}, resource_name=KEY)) == KEY
    assert iam.locate(_event({})) is None


def test_a_cloud_run_v1_name_is_made_v2() -> None:
    event = _event({"resource": "namespaces/p1/services/web"}, service="run.googleapis.com", location="europe-west1")
    assert iam.locate(event) == SERVICE


def test_a_cloud_run_v2_name_is_kept() -> None:
    event = _event({"resource": SERVICE}, resource_name="namespaces/p1/services/other", service="run.googleapis.com",
                   location="europe-west1")
    assert iam.locate(event) == SERVICE


def test_a_cloud_run_job_in_the_v2_form_is_kept_whatever_the_entry_resource_name() -> None:
    job = "projects/p1/locations/europe-west1/jobs/nightly"
    event = _event({"resource": job}, resource_name="namespaces/p1/jobs/nightly", service="run.googleapis.com",
                   location="europe-west1")
    assert iam.locate(event) == job


def test_a_cloud_run_entry_naming_no_service_locates_nothing() -> None:
    assert iam.locate(_event({}, service="run.googleapis.com")) is None


def test_a_non_run_entry_keeps_its_resource_as_it_is() -> None:
    assert iam.locate(_event({"resource": "namespaces/p1/services/web"})) == "namespaces/p1/services/web"


# ---------------------------------------------------------------------------
# From an entry.


def test_an_entry_without_a_delta_is_the_request_policy() -> None:
    event = _event({"resource": KEY, "policy": {"bindings": [{"role": ENC, "members": ["allUsers"]}]}},
                   {"bindings": [{"role": INVOKER, "members": ["allUsers"]}]})
    assert iam.from_entry(event, KEY) == _key_view((Binding(ENC, ("allUsers",)),))


def test_an_entry_whose_request_has_no_policy_is_its_response_policy() -> None:
    event = _event({"resource": KEY, "policy": "redacted"}, {"bindings": [{"role": INVOKER, "members": ["allUsers"]}]})
    assert iam.from_entry(event, KEY) == _key_view((Binding(INVOKER, ("allUsers",)),))


def test_an_entry_with_a_delta_trusts_it_over_an_abridged_body_and_rebuilds_the_prior_policy() -> None:
    event = _event({"resource": KEY, "policy": {"bindings": [
        {"role": ENC, "members": ["user:a@example.com", "user:gone@example.com"]},
        {"role": INVOKER, "members": ["user:b@example.com"]}]}},
        service_data=_delta({"action": "ADD", "role": ENC, "member": "allUsers"},
                            {"action": "REMOVE", "role": ENC, "member": "user:gone@example.com"},
                            {"action": "ADD", "role": INVOKER, "member": "user:b@example.com"}))
    assert iam.from_entry(event, KEY) == _key_view(
        (Binding(ENC, ("user:a@example.com", "allUsers")), Binding(INVOKER, ("user:b@example.com",))),
        prior=(Binding(ENC, ("user:a@example.com", "user:gone@example.com")),),
    )


def test_an_entry_with_only_a_delta_is_incomplete() -> None:
    event = _event({"resource": KEY}, service_data=_delta(
        {"action": "ADD", "role": ENC, "member": "allUsers", "condition": {"expression": "true"}},
        {"action": "REMOVE", "role": INVOKER, "member": "user:a@example.com"}))
    assert iam.from_entry(event, KEY) == _key_view(
        (Binding(ENC, ("allUsers",), Condition("true")),), prior=(Binding(INVOKER, ("user:a@example.com",)),),
        complete=False)


def test_an_entry_on_a_cloud_run_service_names_its_project_location_and_type() -> None:
    event = _event({"resource": SERVICE, "policy": {"bindings": [{"role": INVOKER, "members": ["allUsers"]}]}},
                   service="run.googleapis.com")
    assert iam.from_entry(event, SERVICE) == PolicyView(
        SERVICE, "p1", "europe-west1", "run.service", (Binding(INVOKER, ("allUsers",)),))


def test_an_entry_on_a_project_has_no_location_or_known_type() -> None:
    event = _event({"resource": "projects/p1", "policy": {"bindings": []}})
    assert iam.from_entry(event, "projects/p1") == PolicyView("projects/p1", "p1", "", "", ())


# ---------------------------------------------------------------------------
# Live reads and asset records.


def test_a_live_policy_as_json() -> None:
    policy = {"version": 3, "etag": "BwX", "bindings": [{"role": ENC, "members": ["user:a@example.com"], "condition": {
        "expression": DEV.expression, "title": "until Feb", "description": "temporary"}}]}
    assert iam.from_live(KEY, policy) == _key_view((Binding(ENC, ("user:a@example.com",), DEV),))


def test_a_live_policy_as_a_protobuf_message() -> None:
    policy = policy_pb2.Policy(version=3, etag=b"BwX", bindings=[
        policy_pb2.Binding(role=ENC, members=["user:a@example.com", "allUsers"]),
        policy_pb2.Binding(role=INVOKER, members=["allUsers"], condition=expr_pb2.Expr(
            expression=DEV.expression, title="until Feb", description="temporary"))])
    assert iam.from_live(KEY, policy) == _key_view(
        (Binding(ENC, ("user:a@example.com", "allUsers")), Binding(INVOKER, ("allUsers",), DEV)))


def test_a_search_all_iam_policies_result() -> None:
    record = {"resource": f"//cloudkms.googleapis.com/{KEY}", "project": "projects/123",
              "policy": {"bindings": [{"role": ENC, "members": ["allUsers"]}]}}
    assert iam.from_asset(record) == _key_view((Binding(ENC, ("allUsers",)),))


def test_an_asset_feed_record_with_its_iam_policy() -> None:
    record = {"name": f"//cloudkms.googleapis.com/{KEY}", "assetType": "cloudkms.googleapis.com/CryptoKey",
              "iamPolicy": {"bindings": [{"role": ENC, "members": ["allUsers"]}]}}
    assert iam.from_asset(record) == _key_view((Binding(ENC, ("allUsers",)),))


def test_an_asset_record_without_a_policy_is_an_empty_policy_and_without_a_name_none() -> None:
    assert iam.from_asset({"name": f"//cloudkms.googleapis.com/{KEY}"}) == _key_view(())
    assert iam.from_asset({"policy": {"bindings": [{"role": ENC, "members": ["allUsers"]}]}}) is None
