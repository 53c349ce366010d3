"""shared/views/plumbing.py: what a write to Rampart's own plumbing did, from hand-written
entries (logging.v2.json LogSink, pubsub.v1.json Subscription)."""

from __future__ import annotations

from typing import Any

from shared.event import AuditEvent
from shared.views import plumbing


def _event(method: str, resource_name: str, request: dict[str, Any] | None = None, *, service: str = "logging.googleapis.com",
           project: str = "p1", location: str = "", service_data: dict[str, Any] | None = None) -> AuditEvent:
    return AuditEvent(service, method, resource_name, project, location, "alice@example.com", "id-1", "2026-01-01T00:00:00Z",
                      "activity", 0, "", "", request=request or {}, service_data=service_data or {})


def test_kind_of_names_each_piece_of_plumbing() -> None:
    assert plumbing.kind_of("projects/p1/sinks/rampart") == "sink"
    assert plumbing.kind_of("projects/p1/topics/t") == "topic"
    assert plumbing.kind_of("projects/p1/subscriptions/s") == "subscription"
    assert plumbing.kind_of("projects/p1/buckets/b") == ""


def test_an_update_sink_reports_its_mask_filter_and_destination() -> None:
    event = _event("google.logging.v2.ConfigServiceV2.UpdateSink", "projects/p1/sinks/rampart",
                   {"updateMask": "filter, destination",
                    "sink": {"filter": "severity>=ERROR", "destination": "pubsub.googleapis.com/projects/p1/topics/x"}})
    view = plumbing.from_entry(event, "projects/p1/sinks/rampart")
    assert view == plumbing.PlumbingView(
        name="projects/p1/sinks/rampart", project="p1", kind="sink", change="UpdateSink", deleted=False,
        fields=("filter", "destination"), filter="severity>=ERROR", destination="pubsub.googleapis.com/projects/p1/topics/x",
        push_endpoint=None)


def test_kind_of_names_functions_services_accounts_roles_and_policies() -> None:
    assert plumbing.kind_of("folders/1/sinks/s") == "sink"
    assert plumbing.kind_of("billingAccounts/0A-1B/sinks/s") == "sink"
    assert plumbing.kind_of("projects/p1/locations/us/functions/f") == "function"
    assert plumbing.kind_of("projects/p1/locations/us/services/s") == "service"
    assert plumbing.kind_of("projects/p1/serviceAccounts/rampart@p1.iam.gserviceaccount.com") == "serviceAccount"
    assert plumbing.kind_of("organizations/9/roles/rampartRemediator") == "role"
    assert plumbing.kind_of("projects/p1") == "iamPolicy"
    assert plumbing.kind_of("folders/1") == "iamPolicy"
    assert plumbing.kind_of("") == ""


def test_locate_takes_a_plumbing_resource_name() -> None:
    assert plumbing.locate(_event("google.pubsub.v1.Publisher.DeleteTopic", "projects/p1/topics/t")) == "projects/p1/topics/t"
    assert plumbing.locate(_event("x.Y", "projects/p1/buckets/b")) is None


def test_locate_makes_a_cloud_run_v1_name_v2_with_the_entry_location() -> None:
    event = _event("google.cloud.run.v1.Services.ReplaceService", "namespaces/p1/services/rampart", location="us-central1")
    assert plumbing.locate(event) == "projects/p1/locations/us-central1/services/rampart"


def test_locate_of_a_short_cloud_run_v1_name_is_none() -> None:
    # "namespaces/p1/services" and "namespaces/p1" name no service: padded with "", not a service name.
    for name in ("namespaces/p1/services", "namespaces/p1"):
        assert plumbing.locate(_event("google.cloud.run.v1.Services.DeleteService", name, location="us-central1")) is None, name


def test_locate_puts_the_entry_project_into_a_service_account_name() -> None:
    event = _event("google.iam.admin.v1.DeleteServiceAccount", "projects/-/serviceAccounts/1234567890",
                   service="iam.googleapis.com")
    assert plumbing.locate(event) == "projects/p1/serviceAccounts/1234567890"
    no_project = _event("google.iam.admin.v1.DeleteServiceAccount", "projects/-/serviceAccounts/1234567890",
                        service="iam.googleapis.com", project="")
    assert plumbing.locate(no_project) == "projects/-/serviceAccounts/1234567890"


def test_locate_of_a_resource_manager_entry_without_a_name_is_its_project_policy() -> None:
    crm = "cloudresourcemanager.googleapis.com"
    assert plumbing.locate(_event("SetIamPolicy", "", service=crm)) == "projects/p1"
    assert plumbing.locate(_event("SetIamPolicy", "", service=crm, project="")) is None
    assert plumbing.locate(_event("SetIamPolicy", "", service="iam.googleapis.com")) is None
    assert plumbing.locate(_event("SetIamPolicy", "folders/7", service=crm)) == "folders/7"


def test_a_delete_is_a_deletion_with_its_method_last_part_as_change() -> None:
    view = plumbing.from_entry(_event("google.pubsub.v1.Publisher.DeleteTopic", "projects/p1/topics/t",
                                      service="pubsub.googleapis.com"), "projects/p1/topics/t")
    assert view == plumbing.PlumbingView(name="projects/p1/topics/t", project="p1", kind="topic", change="DeleteTopic",
                                         deleted=True, fields=(), filter=None, destination=None, push_endpoint=None)
    assert view.resource_type == "rampart.topic"
    assert view.location == "global"


def test_a_method_without_dots_is_its_own_change() -> None:
    view = plumbing.from_entry(_event("DeleteSink", "projects/p1/sinks/s"), "projects/p1/sinks/s")
    assert view is not None and (view.change, view.deleted) == ("DeleteSink", True)


def test_project_of_a_name_outside_projects_is_the_entry_project() -> None:
    view = plumbing.from_entry(_event("google.logging.v2.ConfigServiceV2.UpdateSink", "folders/1/sinks/s", project="p9"),
                               "folders/1/sinks/s")
    assert view is not None and (view.project, view.kind, view.deleted) == ("p9", "sink", False)


def test_fields_from_a_mask_object_else_the_fields_the_write_set() -> None:
    masked = plumbing.from_entry(_event("U.UpdateSink", "projects/p1/sinks/s", {
        "updateMask": {"paths": ["filter", 3, "exclusions"]}, "sink": {"name": "s", "disabled": True}}), "projects/p1/sinks/s")
    assert masked is not None and masked.fields == ("filter", "exclusions")
    unmasked = plumbing.from_entry(_event("U.UpdateSink", "projects/p1/sinks/s", {
        "sink": {"name": "s", "disabled": True, "filter": ""}}), "projects/p1/sinks/s")
    assert unmasked is not None and unmasked.fields == ("disabled", "filter")
    empty_mask = plumbing.from_entry(_event("U.UpdateSink", "projects/p1/sinks/s", {
        "updateMask": "", "sink": {"destination": "d"}}), "projects/p1/sinks/s")
    assert empty_mask is not None and empty_mask.fields == ("destination",)
    odd_mask = plumbing.from_entry(_event("U.UpdateSink", "projects/p1/sinks/s", {
        "update_mask": 5, "sink": {"filter": "f"}}), "projects/p1/sinks/s")
    assert odd_mask is not None and odd_mask.fields == ("filter",)
    comma = plumbing.from_entry(_event("U.UpdateSink", "projects/p1/sinks/s", {"update_mask": "filter,destination"}),
                                "projects/p1/sinks/s")
    assert comma is not None and comma.fields == ("filter", "destination")


def test_a_subscription_write_reports_its_push_endpoint_and_fields() -> None:
    name = "projects/p1/subscriptions/rampart"
    modify = plumbing.from_entry(_event("google.pubsub.v1.Subscriber.ModifyPushConfig", name, {
        "pushConfig": {"pushEndpoint": "https://evil.example/push"}}, service="pubsub.googleapis.com"), name)
    assert modify is not None and (modify.push_endpoint, modify.fields, modify.kind) == (
        "https://evil.example/push", (), "subscription")
    update = plumbing.from_entry(_event("google.pubsub.v1.Subscriber.UpdateSubscription", name, {
        "subscription": {"name": name, "pushConfig": {"push_endpoint": "https://evil.example/x"}, "ackDeadlineSeconds": 10}},
        service="pubsub.googleapis.com"), name)
    assert update is not None
    assert (update.push_endpoint, update.fields) == ("https://evil.example/x", ("pushConfig", "ackDeadlineSeconds"))
    both = plumbing.from_entry(_event("S.ModifyPushConfig", name, {
        "pushConfig": {"pushEndpoint": "https://a"}, "subscription": {"pushConfig": {"pushEndpoint": "https://b"}}}), name)
    assert both is not None and both.push_endpoint == "https://a"


def test_values_that_are_not_text_read_as_none() -> None:
    name = "projects/p1/sinks/s"
    view = plumbing.from_entry(_event("U.UpdateSink", name, {"sink": {"filter": 5, "destination": ["d"]},
                                                             "pushConfig": {"pushEndpoint": {"u": 1}}}), name)
    assert view is not None and (view.filter, view.destination, view.push_endpoint) == (None, None, None)


def test_an_iam_write_reports_the_grants_its_delta_removed() -> None:
    deltas = [{"action": "REMOVE", "role": "roles/pubsub.publisher",
               "member": "serviceAccount:rampart@p1.iam.gserviceaccount.com"},
              {"action": 2, "role": "roles/run.invoker", "member": "serviceAccount:push@p1.iam.gserviceaccount.com"},
              {"action": "ADD", "role": "roles/owner", "member": "user:mallory@example.com"},
              {"action": 1, "role": "roles/editor", "member": "user:mallory@example.com"},
              {"action": 3, "role": "roles/viewer", "member": "user:x@example.com"},
              {"action": "REMOVE", "role": 5, "member": "user:x@example.com"},
              {"action": "REMOVE", "role": "roles/viewer", "member": None}]
    event = _event("SetIamPolicy", "projects/p1", service="cloudresourcemanager.googleapis.com",
                   service_data={"policyDelta": {"bindingDeltas": deltas}})
    view = plumbing.from_entry(event, "projects/p1")
    assert view is not None and view.kind == "iamPolicy"
    assert view.removed == (("roles/pubsub.publisher", "serviceAccount:rampart@p1.iam.gserviceaccount.com"),
                            ("roles/run.invoker", "serviceAccount:push@p1.iam.gserviceaccount.com"))


def test_plumbing_is_judged_from_writes_only() -> None:
    assert plumbing.from_live({"name": "projects/p1/topics/t"}) is None
    assert plumbing.from_asset({"name": "//pubsub.googleapis.com/projects/p1/topics/t"}) is None
    assert plumbing.PLUMBING.name == "rampart.plumbing"
    assert plumbing.PLUMBING.asset_types == ()


def test_project_of_a_project_resource_is_the_one_in_its_name() -> None:
    view = plumbing.from_entry(_event("google.pubsub.v1.Publisher.UpdateTopic", "projects/p2/topics/t", project="p1"),
                               "projects/p2/topics/t")
    assert view is not None and view.project == "p2"
