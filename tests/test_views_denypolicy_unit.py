"""shared.views.denypolicy on its own: hand-written IAM v2 CreatePolicy / UpdatePolicy entries and
live reads in, the deny policy view out (expected values written by hand, not computed by the code
under test). Shapes from iam.v2.json (GoogleIamV2Policy: rules[].denyRule with deniedPrincipals,
exceptionPrincipals, deniedPermissions, exceptionPermissions, denialCondition)."""

from __future__ import annotations

from typing import Any

from shared.event import AuditEvent
from shared.views import denypolicy as dp
from shared.views.denypolicy import DenyPolicyView, DenyRule

ATTACHMENT = "cloudresourcemanager.googleapis.com%2Fprojects%2Fp1"
PARENT = f"policies/{ATTACHMENT}/denypolicies"
NAME = f"{PARENT}/no-decrypt"
DECRYPT = "cloudkms.googleapis.com/cryptoKeyVersions.useToDecrypt"
ALL = "principalSet://goog/public:all"


def _event(request: Any = None, response: Any = None, resource_name: str = "") -> AuditEvent:
    return AuditEvent(
        service="iam.googleapis.com", method="google.iam.v2.Policies.CreatePolicy", resource_name=resource_name,
        project="p1", location="global", principal="alice@example.com", insert_id="i-1",
        timestamp="2027-01-15T08:00:00Z", log_kind="activity", status_code=0, status_message="",
        resource_type="audited_resource", request=request if request is not None else {},
        response=response if response is not None else {},
    )


POLICY = {"name": NAME, "displayName": "no decrypt", "rules": [
    {"description": "r1", "denyRule": {
        "deniedPrincipals": [ALL, 7], "exceptionPrincipals": ["principal://goog/subject/admin@example.com"],
        "deniedPermissions": [DECRYPT], "exceptionPermissions": ["cloudkms.googleapis.com/cryptoKeys.get"],
        "denialCondition": {"expression": "resource.matchTag('p1/env', 'prod')"}}},
    {"description": "not a deny rule"},
    {"denyRule": {"deniedPrincipals": [ALL], "deniedPermissions": [DECRYPT], "denialCondition": {}}},
]}
RULES = (
    DenyRule((ALL,), ("principal://goog/subject/admin@example.com",), (DECRYPT,),
             ("cloudkms.googleapis.com/cryptoKeys.get",), True),
    DenyRule((ALL,), (), (DECRYPT,), (), False),
)


def test_a_policy_with_its_deny_rules_and_decoded_attachment_point() -> None:
    view = dp._view(NAME, POLICY)
    assert view == DenyPolicyView(NAME, "cloudresourcemanager.googleapis.com/projects/p1", RULES)
    assert view is not None and view.project == "p1" and view.location == "global"


def test_a_policy_on_a_folder_or_organization_names_it_as_its_project() -> None:
    name = "policies/cloudresourcemanager.googleapis.com%2Ffolders%2F123/denypolicies/d"
    view = dp._view(name, {})
    assert view == DenyPolicyView(name, "cloudresourcemanager.googleapis.com/folders/123", ())
    assert view is not None and view.project == "folders/123"


def test_a_name_of_another_form_has_no_view() -> None:
    assert dp._view("projects/p1/denypolicies/d", POLICY) is None
    assert dp._view(f"{NAME}/extra", POLICY) is None


def test_strings_keeps_only_the_strings_of_a_list() -> None:
    assert dp._strings({"a": ["x", 1, "y"]}, "a") == ("x", "y")
    assert dp._strings({"a": "x"}, "a") == ()


def test_an_entry_is_located_by_the_policy_name_then_its_resource_name() -> None:
    assert dp.locate(_event({"policy": {"name": NAME}}, resource_name=f"{PARENT}/other")) == NAME
    assert dp.locate(_event({"policy": {"name": "x"}}, resource_name=NAME)) == NAME


def test_a_create_entry_is_located_by_parent_and_policy_id() -> None:
    event = _event({"parent": PARENT, "policyId": "no-decrypt", "policy": {}}, resource_name=PARENT)
    assert dp.locate(event) == NAME


def test_an_entry_naming_no_deny_policy_locates_nothing() -> None:
    assert dp.locate(_event({"parent": PARENT})) is None
    assert dp.locate(_event({"policyId": "d"})) is None


def test_an_entry_reads_the_request_policy_or_else_the_response() -> None:
    request = _event({"policy": POLICY}, {"name": "operations/x", "metadata": {}})
    response = _event({"parent": PARENT, "policyId": "no-decrypt"}, POLICY)
    expected = DenyPolicyView(NAME, "cloudresourcemanager.googleapis.com/projects/p1", RULES)
    assert dp.from_entry(request, NAME) == expected
    assert dp.from_entry(response, NAME) == expected


def test_an_entry_without_a_policy_has_no_view() -> None:
    assert dp.from_entry(_event({"parent": PARENT}), NAME) is None


def test_a_live_read_is_named_by_its_body() -> None:
    assert dp.from_live(POLICY) == DenyPolicyView(NAME, "cloudresourcemanager.googleapis.com/projects/p1", RULES)
    assert dp.from_live({"rules": POLICY["rules"]}) is None


def test_deny_policies_are_not_asset_records() -> None:
    assert dp.from_asset({"name": NAME, "assetType": "iam.googleapis.com/DenyPolicy"}) is None
