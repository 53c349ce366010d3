"""shared.views.orgpolicy on its own: hand-written Org Policy v2 and Resource Manager v1 entries,
live reads and asset records in, the view's fields out (expected values written by hand, not
computed by the code under test). Shapes from orgpolicy.v2.json (GoogleCloudOrgpolicyV2Policy)
and cloudresourcemanager.v1.json (OrgPolicy)."""

from __future__ import annotations

from typing import Any

from google.cloud import orgpolicy_v2

from shared.event import AuditEvent
from shared.views import orgpolicy as op
from shared.views.orgpolicy import OrgPolicyView, PolicyRule

NAME = "projects/p1/policies/run.allowedIngress"
FOLDER_NAME = "folders/123/policies/iam.allowedPolicyMemberDomains"
V2 = "google.cloud.orgpolicy.v2.OrgPolicy."
V1 = "SetOrgPolicy"


def _event(method: str, request: Any = None, response: Any = None, resource_name: str = "",
           service: str = op.ORGPOLICY) -> AuditEvent:
    return AuditEvent(
        service=service, method=method, resource_name=resource_name, project="p1", location="global",
        principal="alice@example.com", insert_id="i-1", timestamp="2027-01-15T08:00:00Z", log_kind="activity",
        status_code=0, status_message="", resource_type="project",
        request=request if request is not None else {}, response=response if response is not None else {},
    )


def _view(name: str = NAME, parent: str = "projects/p1", constraint: str = "run.allowedIngress",
          rules: tuple[PolicyRule, ...] = (), inherit: bool | None = None, reset: bool = False,
          deleted: bool = False) -> OrgPolicyView:
    return OrgPolicyView(name, parent, constraint, rules, inherit, reset, deleted)


# ---------------------------------------------------------------------------
# Small readers.


def test_strings_keeps_the_strings_of_a_list_and_nothing_of_another_value() -> None:
    assert op._strings(["a", 1, "b", None]) == ("a", "b")
    assert op._strings("ab") == ()
    assert op._strings(None) == ()


def test_inherit_is_a_bool_or_none() -> None:
    assert op._inherit(True) is True
    assert op._inherit(False) is False
    assert op._inherit("true") is None


# ---------------------------------------------------------------------------
# The v2 shape.


def test_a_v2_policy_with_every_kind_of_rule() -> None:
    body = {"name": NAME, "spec": {"inheritFromParent": False, "reset": True, "rules": [
        {"enforce": True},
        {"allowAll": True},
        {"denyAll": True, "condition": {"expression": "resource.matchTag('env', 'dev')", "title": "dev"}},
        {"values": {"allowedValues": ["internal", 3], "deniedValues": ["all"]}},
        "not a rule",
        {"enforce": "yes", "allowAll": "true", "denyAll": 1},
    ]}}
    assert op._v2(NAME, body) == _view(rules=(
        PolicyRule(enforce=True),
        PolicyRule(allow_all=True),
        PolicyRule(deny_all=True, condition="resource.matchTag('env', 'dev')"),
        PolicyRule(allowed_values=("internal",), denied_values=("all",)),
        PolicyRule(),
    ), inherit=False, reset=True)


def test_a_v2_rule_with_a_condition_but_no_expression_is_still_conditional() -> None:
    body = {"spec": {"rules": [{"enforce": False, "condition": {"title": "t"}}, {"enforce": True, "condition": {}}]}}
    assert op._v2(NAME, body) == _view(rules=(PolicyRule(enforce=False, condition="(condition)"), PolicyRule(enforce=True)))


def test_a_v2_policy_takes_the_constraint_without_its_prefix_and_the_parent_from_the_name() -> None:
    name = "organizations/42/policies/constraints/gcp.resourceLocations"
    assert op._v2("folders/7/policies/constraints/gcp.resourceLocations", {}) is None  # a '/' after policies/
    assert op._v2(name, {}) is None
    assert op._v2(FOLDER_NAME, {"spec": {"reset": "true"}}) == _view(
        FOLDER_NAME, "folders/123", "iam.allowedPolicyMemberDomains")


def test_a_v2_name_of_another_form_has_no_view() -> None:
    assert op._v2("projects/p1/constraints/run.allowedIngress", {"spec": {}}) is None
    assert op._v2("billingAccounts/1/policies/c", {"spec": {}}) is None


def test_rules_of_spec_reads_a_declared_baseline_and_nothing_of_another_value() -> None:
    assert op.rules_of_spec({"rules": [{"values": {"allowedValues": ["internal"]}}]}) == (
        PolicyRule(allowed_values=("internal",)),)
    assert op.rules_of_spec([{"enforce": True}]) == ()
    assert op.rules_of_spec(None) == ()


def test_rules_of_spec_reads_every_kind_of_rule_in_order() -> None:
    spec = {"rules": [
        {"enforce": True},
        "not a rule",
        {"allowAll": True, "condition": {"expression": "resource.matchTag('env', 'dev')", "title": "dev"}},
        {"denyAll": True},
        {"values": {"allowedValues": ["internal", 3], "deniedValues": ["all", None]}},
        {"enforce": False, "allowAll": "true", "denyAll": 1},
    ]}
    assert op.rules_of_spec(spec) == (
        PolicyRule(enforce=True),
        PolicyRule(allow_all=True, condition="resource.matchTag('env', 'dev')"),
        PolicyRule(deny_all=True),
        PolicyRule(allowed_values=("internal",), denied_values=("all",)),
        PolicyRule(enforce=False),
    )


def test_rules_of_spec_keeps_a_condition_without_an_expression_conditional() -> None:
    spec = {"rules": [{"enforce": True, "condition": {"title": "t"}}, {"enforce": "no", "condition": {}}]}
    assert op.rules_of_spec(spec) == (PolicyRule(enforce=True, condition="(condition)"), PolicyRule())


def test_rules_of_spec_reads_snake_case_fields_too() -> None:
    spec = {"rules": [{"allow_all": True}, {"deny_all": True}, {"values": {"allowed_values": ["a"], "denied_values": ["b"]}}]}
    assert op.rules_of_spec(spec) == (PolicyRule(allow_all=True), PolicyRule(deny_all=True),
                                      PolicyRule(allowed_values=("a",), denied_values=("b",)))


# ---------------------------------------------------------------------------
# The v1 shape.


def test_a_v1_boolean_policy_that_enforces() -> None:
    policy = {"constraint": "constraints/iam.disableServiceAccountKeyCreation", "booleanPolicy": {"enforced": True}}
    assert op._v1("projects/p1", policy) == _view("projects/p1/policies/iam.disableServiceAccountKeyCreation",
                                                 constraint="iam.disableServiceAccountKeyCreation",
                                                 rules=(PolicyRule(enforce=True),))


def test_a_v1_empty_boolean_policy_does_not_enforce_and_a_non_mapping_one_is_no_rule() -> None:
    assert op._v1("projects/p1", {"constraint": "c.x", "booleanPolicy": {}}) == _view(
        "projects/p1/policies/c.x", constraint="c.x", rules=(PolicyRule(enforce=False),))
    assert op._v1("projects/p1", {"constraint": "c.x", "booleanPolicy": {"enforced": "true"}}) == _view(
        "projects/p1/policies/c.x", constraint="c.x", rules=(PolicyRule(enforce=False),))
    assert op._v1("projects/p1", {"constraint": "c.x", "booleanPolicy": True}) == _view(
        "projects/p1/policies/c.x", constraint="c.x")


def test_a_v1_list_policy_with_values_and_inheritance() -> None:
    policy = {"constraint": "constraints/run.allowedIngress", "listPolicy": {
        "allowedValues": ["internal", 1], "deniedValues": ["all"], "inheritFromParent": True}}
    assert op._v1("projects/p1", policy) == _view(rules=(
        PolicyRule(allowed_values=("internal",), denied_values=("all",)),), inherit=True)


def test_a_v1_list_policy_allowing_or_denying_all() -> None:
    allow = op._v1("folders/123", {"constraint": "c.x", "listPolicy": {"allValues": "ALLOW"}})
    deny = op._v1("organizations/9", {"constraint": "c.x", "listPolicy": {"allValues": "DENY"}})
    assert allow == _view("folders/123/policies/c.x", "folders/123", "c.x", (PolicyRule(allow_all=True),))
    assert deny == _view("organizations/9/policies/c.x", "organizations/9", "c.x", (PolicyRule(deny_all=True),))


def test_a_v1_policy_restoring_the_default_resets() -> None:
    assert op._v1("projects/p1", {"constraint": "c.x", "restoreDefault": {}}) == _view(
        "projects/p1/policies/c.x", constraint="c.x", reset=True)


def test_a_v1_policy_on_no_parent_or_without_a_plain_constraint_has_no_view() -> None:
    assert op._v1("projects/p1/locations/us", {"constraint": "c.x"}) is None
    assert op._v1("projects/p1", {"constraint": "constraints/"}) is None
    assert op._v1("projects/p1", {}) is None
    assert op._v1("projects/p1", {"constraint": "constraints/a/b"}) is None


def test_deleted_is_a_policy_with_nothing_of_its_own() -> None:
    assert op._deleted("organizations/9/policies/constraints/c.x") is None
    assert op._deleted("organizations/9/policies/c.x") == OrgPolicyView(
        "organizations/9/policies/c.x", "organizations/9", "c.x", (), None, False, deleted=True)
    assert op._deleted("organizations/9") is None


# ---------------------------------------------------------------------------
# Locating.


def test_a_v1_entry_is_located_by_its_resource_and_the_policy_constraint() -> None:
    event = _event(V1, {"resource": "projects/p1", "policy": {"constraint": "constraints/run.allowedIngress"}},
                   resource_name="projects/other", service=op.CRM)
    assert op.locate(event) == NAME


def test_a_v1_entry_without_a_resource_in_its_request_is_located_by_its_resource_name() -> None:
    event = _event("ClearOrgPolicy", {"constraint": "constraints/run.allowedIngress"}, resource_name="projects/p1",
                   service=op.CRM)
    assert op.locate(event) == NAME


def test_a_v1_entry_on_no_parent_or_constraint_locates_nothing() -> None:
    assert op.locate(_event(V1, {"resource": "projects/p1"}, service=op.CRM)) is None
    assert op.locate(_event(V1, {"resource": "projects/p1/x", "constraint": "c.x"}, service=op.CRM)) is None
    assert op.locate(_event(V1, {"resource": "projects/p1", "constraint": "a/b"}, service=op.CRM)) is None


def test_a_v2_entry_is_located_by_the_policy_name_then_the_request_name_then_the_resource_name() -> None:
    other = "projects/p2/policies/c.other"
    assert op.locate(_event(V2 + "UpdatePolicy", {"policy": {"name": NAME}, "name": other}, resource_name=other)) == NAME
    assert op.locate(_event(V2 + "DeletePolicy", {"policy": {"name": "x"}, "name": NAME}, resource_name=other)) == NAME
    assert op.locate(_event(V2 + "DeletePolicy", {"name": "projects/p1"}, resource_name=NAME)) == NAME


def test_a_v2_create_entry_is_located_by_parent_and_the_policy_name_last_part() -> None:
    event = _event(V2 + "CreatePolicy", {"parent": "projects/p1", "policy": {"name": "run.allowedIngress"}},
                   resource_name="projects/p1")
    assert op.locate(event) == NAME
    event = _event(V2 + "CreatePolicy", {"parent": "projects/p1", "policy": {"name": "a/b/run.allowedIngress"}})
    assert op.locate(event) == NAME


def test_a_v2_entry_with_nothing_to_name_a_policy_locates_nothing() -> None:
    assert op.locate(_event(V2 + "CreatePolicy", {"parent": "projects/p1", "policy": {}})) is None
    assert op.locate(_event(V2 + "CreatePolicy", {"parent": "projects/p1/x", "policy": {"name": "c.x"}})) is None


# ---------------------------------------------------------------------------
# From an entry: what a write set.


def test_a_v2_delete_and_a_v1_clear_leave_the_constraint_deleted_as_written() -> None:
    for event in (_event(V2 + "DeletePolicy", {"name": NAME}),
                  _event("ClearOrgPolicy", {"resource": "projects/p1"}, service=op.CRM)):
        view = op.from_entry(event, NAME)
        assert view == _view(deleted=True)
        assert view is not None and view.written is True


def test_a_delete_on_a_name_of_another_form_has_no_view() -> None:
    assert op.from_entry(_event(V2 + "DeletePolicy", {"name": "projects/p1"}), "projects/p1") is None


def test_a_v1_set_entry_reads_the_request_policy_as_written() -> None:
    event = _event(V1, {"resource": "projects/p1", "policy": {
        "constraint": "constraints/run.allowedIngress", "listPolicy": {"allowedValues": ["internal"]}}}, service=op.CRM)
    view = op.from_entry(event, NAME)
    assert view == _view(rules=(PolicyRule(allowed_values=("internal",)),))
    assert view is not None and view.written is True


def test_a_v1_set_entry_without_a_policy_has_no_view() -> None:
    assert op.from_entry(_event(V1, {"resource": "projects/p1"}, service=op.CRM), NAME) is None
    assert op.from_entry(_event(V1, {"resource": "projects/p1", "policy": {}}, service=op.CRM), NAME) is None


def test_a_v1_set_entry_on_a_name_of_another_form_has_no_view() -> None:
    event = _event(V1, {"resource": "projects/p1", "policy": {"constraint": "c.x"}}, service=op.CRM)
    assert op.from_entry(event, "projects/p1") is None


def test_a_v1_set_entry_on_a_project_named_policies_is_read_on_that_project() -> None:
    # Project ids are 6-30 lower-case letters, digits and hyphens (resource-manager/docs/creating-managing-projects),
    # so "policies" is one; the policy name then holds "/policies/" twice.
    event = _event(V1, {"resource": "projects/policies", "policy": {
        "constraint": "constraints/c.x", "booleanPolicy": {"enforced": True}}}, service=op.CRM)
    name = op.locate(event)
    assert name == "projects/policies/policies/c.x"
    assert op.from_entry(event, name) == _view(name, "projects/policies", "c.x", (PolicyRule(enforce=True),))


def test_a_v2_entry_reads_the_request_policy_or_else_the_response() -> None:
    request = _event(V2 + "UpdatePolicy", {"policy": {"name": NAME, "spec": {"rules": [{"denyAll": True}]}}},
                     {"name": NAME, "spec": {"rules": [{"allowAll": True}]}})
    response = _event(V2 + "CreatePolicy", {"parent": "projects/p1"},
                      {"name": NAME, "spec": {"rules": [{"allowAll": True}]}})
    from_request, from_response = op.from_entry(request, NAME), op.from_entry(response, NAME)
    assert from_request == _view(rules=(PolicyRule(deny_all=True),))
    assert from_response == _view(rules=(PolicyRule(allow_all=True),))
    assert from_request is not None and from_request.written is True
    assert from_response is not None and from_response.written is True


def test_a_v2_entry_without_a_policy_has_no_view() -> None:
    assert op.from_entry(_event(V2 + "UpdatePolicy", {"name": NAME}), NAME) is None


def test_a_state_read_is_not_written() -> None:
    view = op.from_live({"name": NAME, "spec": {}})
    assert view == _view()
    assert view is not None and view.written is False


# ---------------------------------------------------------------------------
# Live reads and asset records.


def test_nothing_read_is_a_deleted_policy() -> None:
    assert op.from_live(None, NAME) == _view(deleted=True)
    assert op.from_live({}, NAME) == _view(deleted=True)


def test_a_live_read_names_the_policy_by_its_body_or_the_name_asked_for() -> None:
    assert op.from_live({"name": NAME, "spec": {"rules": [{"enforce": True}]}}, "projects/p2/policies/c.x") == _view(
        rules=(PolicyRule(enforce=True),))
    assert op.from_live({"spec": {"inheritFromParent": True}}, NAME) == _view(inherit=True)


def test_a_live_read_as_a_client_object() -> None:
    policy = orgpolicy_v2.Policy(name=NAME, spec={"rules": [{"values": {"allowed_values": ["internal"]}}],
                                                  "inherit_from_parent": True})
    assert op.from_live(policy) == _view(rules=(PolicyRule(allowed_values=("internal",)),), inherit=True)


def test_a_v2_asset_record_is_named_by_its_full_name_or_its_data() -> None:
    data = {"name": NAME, "spec": {"rules": [{"enforce": True}]}}
    full = {"name": "//cloudresourcemanager.googleapis.com/projects/p1/policies/run.allowedIngress",
            "assetType": op.ASSET_TYPE, "resource": {"data": {"spec": {"rules": [{"enforce": True}]}}}}
    assert op.from_asset({"assetType": op.ASSET_TYPE, "resource": {"data": data}}) == _view(
        rules=(PolicyRule(enforce=True),))
    assert op.from_asset(full) == _view(rules=(PolicyRule(enforce=True),))


def test_a_v2_asset_record_without_data_has_no_view() -> None:
    assert op.from_asset({"name": "//cloudresourcemanager.googleapis.com/projects/p1/policies/run.allowedIngress",
                          "assetType": op.ASSET_TYPE, "orgPolicy": [{"constraint": "c.x"}]}) is None


def test_an_asset_of_another_type_gives_its_first_v1_org_policy() -> None:
    record = {"name": "//cloudresourcemanager.googleapis.com/folders/123", "assetType": "cloudresourcemanager.googleapis.com/Folder",
              "orgPolicy": [{"constraint": "constraints/c.a", "booleanPolicy": {"enforced": True}},
                            {"constraint": "constraints/c.b", "listPolicy": {"allValues": "DENY"}}]}
    assert op.from_asset(record) == _view("folders/123/policies/c.a", "folders/123", "c.a", (PolicyRule(enforce=True),))
    assert op.from_asset({"name": "//cloudresourcemanager.googleapis.com/folders/123", "assetType": "x"}) is None


def test_org_policies_from_asset_gives_one_view_per_readable_constraint() -> None:
    record = {"name": "//cloudresourcemanager.googleapis.com/projects/p1", "orgPolicy": [
        {"constraint": "constraints/c.a", "booleanPolicy": {"enforced": True}},
        "not a policy",
        {"constraint": "constraints/a/b"},
        {"constraint": "c.b", "restoreDefault": {}},
    ]}
    assert op.org_policies_from_asset(record) == (
        _view("projects/p1/policies/c.a", constraint="c.a", rules=(PolicyRule(enforce=True),)),
        _view("projects/p1/policies/c.b", constraint="c.b", reset=True),
    )
