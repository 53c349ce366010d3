"""shared.views.armor on its own: hand-written Compute Engine write entries in, the Cloud Armor
view out (expected values written by hand, not computed by the code under test). Shapes from
compute.v1.json: backendServices.setSecurityPolicy / regionBackendServices.setSecurityPolicy take
a SecurityPolicyReference {securityPolicy}; securityPolicies.removeRule takes ?priority=,
patchRule / addRule a SecurityPolicyRule, patch a SecurityPolicy. The method names as Compute
logs them (v1.compute.*, beta.compute.*) and the operation first/last split from the corpus
(compute/c7n-route-create.json)."""

from __future__ import annotations

from typing import Any

from shared.event import AuditEvent
from shared.views import armor
from shared.views.armor import ArmorView

BACKEND = "projects/p1/global/backendServices/web"
REGIONAL = "projects/p1/regions/europe-west1/backendServices/web"
POLICY = "projects/p1/global/securityPolicies/edge"
REGIONAL_POLICY = "projects/p1/regions/us-east1/securityPolicies/edge"
POLICY_URL = "https://www.googleapis.com/compute/v1/projects/p1/global/securityPolicies/edge"


def _event(method: str, name: str, request: Any = None, *, first: bool = False, last: bool = False) -> AuditEvent:
    return AuditEvent(
        service=armor.COMPUTE, method=method, resource_name=name, project="p1", location="global",
        principal="alice@example.com", insert_id="i-1", timestamp="2027-01-15T08:00:00Z", log_kind="activity",
        status_code=0, status_message="", resource_type="gce_backend_service", operation_id="op-1",
        operation_first=first, operation_last=last, request=request if request is not None else {},
    )


def test_locate_takes_a_backend_service_or_a_security_policy_name() -> None:
    for name in (BACKEND, REGIONAL, POLICY, REGIONAL_POLICY):
        assert armor.locate(_event("v1.compute.x", name)) == name


def test_locate_refuses_other_names_and_names_unsafe_in_a_url() -> None:
    for name in ("projects/p1/global/urlMaps/m", "projects/p1/zones/z/backendServices/web",
                 "projects/p1/global/backendServices/web?x=1", "projects/p1/global/securityPolicies/a b",
                 f"{BACKEND}/extra", ""):
        assert armor.locate(_event("v1.compute.x", name)) is None


def test_a_backend_service_detached_from_its_policy() -> None:
    event = _event("v1.compute.backendServices.setSecurityPolicy", BACKEND, {"securityPolicy": ""}, first=True)
    assert armor.from_entry(event, BACKEND) == ArmorView(
        BACKEND, "p1", "global", "backendService", True, "", (), "backendServices.setSecurityPolicy")


def test_a_regional_backend_service_given_a_policy() -> None:
    event = _event("beta.compute.regionBackendServices.setSecurityPolicy", REGIONAL, {"securityPolicy": POLICY_URL})
    view = armor.from_entry(event, REGIONAL)
    assert view == ArmorView(REGIONAL, "p1", "europe-west1", "backendService", False, POLICY_URL, (),
                             "regionBackendServices.setSecurityPolicy")
    assert view is not None and view.resource_type == "compute.backendService"


def test_another_write_to_a_backend_service_is_not_judged() -> None:
    for method in ("v1.compute.backendServices.patch", "v1.compute.backendServices.update", "v1.backendServices.x", ""):
        assert armor.from_entry(_event(method, BACKEND, {"securityPolicy": ""}), BACKEND) is None


def test_the_operation_end_is_not_judged_but_its_start_and_a_single_entry_are() -> None:
    body = {"securityPolicy": ""}
    method = "v1.compute.backendServices.setSecurityPolicy"
    assert armor.from_entry(_event(method, BACKEND, body, last=True), BACKEND) is None
    assert armor.from_entry(_event(method, BACKEND, body, first=True), BACKEND) is not None
    assert armor.from_entry(_event(method, BACKEND, body, first=True, last=True), BACKEND) is not None
    assert armor.from_entry(_event(method, BACKEND, body), BACKEND) is not None


def test_a_rule_removed_weakens_it_whatever_the_priority_type() -> None:
    removed = armor.from_entry(_event("v1.compute.securityPolicies.removeRule", POLICY, {"priority": 1000}), POLICY)
    assert removed == ArmorView(POLICY, "p1", "global", "securityPolicy", False, "", ("1000",),
                                "securityPolicies.removeRule")
    assert removed is not None and removed.resource_type == "compute.securityPolicy"
    as_text = armor.from_entry(_event("v1.compute.securityPolicies.removeRule", REGIONAL_POLICY, {"priority": "7"}),
                               REGIONAL_POLICY)
    assert as_text == ArmorView(REGIONAL_POLICY, "p1", "us-east1", "securityPolicy", False, "", ("7",),
                                "securityPolicies.removeRule")


def test_a_rule_removed_without_a_readable_priority_is_question_mark() -> None:
    for request in ({}, {"priority": True}, {"priority": [1]}):
        view = armor.from_entry(_event("v1.compute.securityPolicies.removeRule", POLICY, request), POLICY)
        assert view is not None and view.weakened_rules == ("?",)


def test_a_rule_patched_or_added_to_allow_weakens_it() -> None:
    for method in ("v1.compute.securityPolicies.patchRule", "v1.compute.securityPolicies.addRule"):
        view = armor.from_entry(_event(method, POLICY, {"priority": 10, "action": "allow"}), POLICY)
        assert view == ArmorView(POLICY, "p1", "global", "securityPolicy", False, "", ("10",), method[11:])


def test_a_rule_patched_or_added_to_deny_weakens_nothing() -> None:
    for method in ("v1.compute.securityPolicies.patchRule", "v1.compute.securityPolicies.addRule"):
        view = armor.from_entry(_event(method, POLICY, {"priority": 10, "action": "deny(403)"}), POLICY)
        assert view == ArmorView(POLICY, "p1", "global", "securityPolicy", False, "", (), method[11:])


def test_a_policy_patch_weakens_the_rules_it_sets_to_allow() -> None:
    request = {"rules": [{"priority": 10, "action": "allow"}, {"priority": 20, "action": "deny(403)"},
                         {"priority": "30", "action": "allow"}]}
    view = armor.from_entry(_event("v1.compute.securityPolicies.patch", POLICY, request), POLICY)
    assert view == ArmorView(POLICY, "p1", "global", "securityPolicy", False, "", ("10", "30"),
                             "securityPolicies.patch")


def test_another_write_to_a_security_policy_is_not_judged() -> None:
    for method in ("v1.compute.securityPolicies.insert", "v1.compute.securityPolicies.setLabels"):
        assert armor.from_entry(_event(method, POLICY, {"priority": 1, "action": "allow"}), POLICY) is None


def test_a_name_of_neither_kind_is_not_judged() -> None:
    event = _event("v1.compute.securityPolicies.removeRule", "projects/p1/global/urlMaps/m", {"priority": 1})
    assert armor.from_entry(event, "projects/p1/global/urlMaps/m") is None


def test_live_reads_and_asset_records_are_not_judged() -> None:
    assert armor.from_live({"name": "edge", "rules": []}) is None
    assert armor.from_asset({"name": f"//compute.googleapis.com/{POLICY}"}) is None
