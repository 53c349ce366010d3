"""shared/views/run.py, one adapter or helper at a time: a Cloud Run service, job or worker pool
from a hand-written audit entry, live read or Asset Inventory record, with the expected view
written out by hand (Cloud Run Admin API v1 and v2 shapes: run.v1.json, run.v2.json)."""

from __future__ import annotations

from typing import Any

from shared.event import AuditEvent
from shared.views import run

SVC = "projects/p1/locations/us-central1/services/web"


def _event(request: dict[str, Any] | None = None, response: dict[str, Any] | None = None, *,
           resource_name: str = "", project: str = "p1", location: str = "us-central1") -> AuditEvent:
    return AuditEvent("run.googleapis.com", "google.cloud.run.v2.Services.UpdateService", resource_name, project, location,
                      "alice@example.com", "id-1", "2026-01-01T00:00:00Z", "activity", 0, "", "cloud_run_revision",
                      request=request or {}, response=response or {})


def test_a_v2_live_service_with_every_field_reads_as_written() -> None:
    view = run.from_live({
        "name": SVC, "ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY", "invokerIamDisabled": True, "labels": {"team": "a"},
        "template": {"serviceAccount": "web@p1.iam.gserviceaccount.com",
                     "encryptionKey": "projects/p1/locations/us/keyRings/r/cryptoKeys/k",
                     "vpcAccess": {"connector": "projects/p1/locations/us-central1/connectors/c", "egress": "ALL_TRAFFIC"},
                     "containers": [{"name": "app", "env": [{"name": "A", "value": "1"},
                                                             {"name": "B", "valueSource": {"secretKeyRef": {"secret": "s"}}}]}]},
        "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "web-00002-xyz", "percent": 100,
                     "tag": "blue"}],
    })
    assert view == run.ServiceView(
        name=SVC, project="p1", location="us-central1", ingress="INGRESS_TRAFFIC_INTERNAL_ONLY", invoker_iam_disabled=True,
        service_account="web@p1.iam.gserviceaccount.com", vpc_connector="projects/p1/locations/us-central1/connectors/c",
        vpc_egress="ALL_TRAFFIC", has_vpc_access=True, encryption_key="projects/p1/locations/us/keyRings/r/cryptoKeys/k",
        env=(run.EnvVar("app", "A", "1"), run.EnvVar("app", "B", None)),
        traffic=(run.Traffic("web-00002-xyz", 100, False, "blue"),), labels={"team": "a"})


def _svc(**changes: Any) -> run.ServiceView:
    """The view of a bare v2 service named SVC (every field at its default), with `changes`."""
    base = run.ServiceView(name=SVC, project="p1", location="us-central1", ingress="INGRESS_TRAFFIC_ALL",
                           invoker_iam_disabled=False, service_account="", vpc_connector="", vpc_egress="",
                           has_vpc_access=False, encryption_key="")
    return run.ServiceView(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **changes})


# ---------------------------------------------------------------------------
# ServiceView's own answers.


def test_serving_revisions_are_the_named_revisions_with_traffic_once_each_in_order() -> None:
    view = _svc(traffic=(run.Traffic("b", 50, False), run.Traffic("a", 0, False, "t"), run.Traffic("", 30, True),
                         run.Traffic("b", 20, False, "x")))
    assert view.serving_revisions == ("b", "")


def test_pinned_targets_are_named_revisions_with_traffic_or_a_tag() -> None:
    shared = run.Traffic("a", 40, False)
    tagged = run.Traffic("b", 0, False, "blue")
    latest_named = run.Traffic("c", 60, True)
    idle = run.Traffic("d", 0, False)
    unnamed = run.Traffic("", 0, False, "green")
    view = _svc(traffic=(shared, tagged, latest_named, idle, unnamed))
    assert view.pinned() == (shared, tagged)


def test_a_named_revision_with_one_percent_of_traffic_is_pinned() -> None:
    one = run.Traffic("a", 1, False)
    assert _svc(traffic=(one, run.Traffic("", 99, True))).pinned() == (one,)


def test_a_view_without_traffic_routes_everything_to_the_latest() -> None:
    assert _svc().traffic == (run.Traffic("", 100, True, ""),)
    assert _svc().serving_revisions == ("",)
    assert _svc().pinned() == ()
    assert run.ServiceView.resource_type == "run.service"


# ---------------------------------------------------------------------------
# Entries: the body, the name.


V1_BODY = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "p1", "annotations": {"run.googleapis.com/ingress": "internal"}},
           "spec": {"template": {"spec": {"serviceAccountName": "web@p1.iam.gserviceaccount.com"}}}}


def test_from_entry_reads_the_request_service() -> None:
    event = _event({"service": {"name": SVC, "ingress": "INGRESS_TRAFFIC_NONE"}}, {"name": SVC, "ingress": 1})
    assert run.from_entry(event, SVC) == _svc(ingress="INGRESS_TRAFFIC_NONE")


def test_from_entry_falls_back_to_a_response_with_metadata_or_a_template() -> None:
    with_template = _event({"name": SVC}, {"name": SVC, "template": {"serviceAccount": "a@p1.iam.gserviceaccount.com"}})
    assert run.from_entry(with_template, SVC) == _svc(service_account="a@p1.iam.gserviceaccount.com")
    with_metadata = _event({}, V1_BODY)
    assert run.from_entry(with_metadata, SVC) == _svc(ingress="INGRESS_TRAFFIC_INTERNAL_ONLY",
                                                      service_account="web@p1.iam.gserviceaccount.com")


def test_from_entry_without_a_service_body_is_none() -> None:
    assert run.from_entry(_event({"name": SVC}, {"name": SVC, "ingress": 2}), SVC) is None
    assert run.from_entry(_event({"service": {}}, {}), SVC) is None


def test_from_entry_takes_project_and_location_from_the_name_else_the_entry() -> None:
    event = _event({"service": {"ingress": 1}}, project="p7", location="eu-west4")
    assert run.from_entry(event, SVC) == _svc()
    other = run.from_entry(event, "namespaces/p1/services/web")
    assert other == _svc(name="namespaces/p1/services/web", project="p7", location="eu-west4")


def test_from_entry_of_a_v1_create_without_ingress_takes_the_response_annotation() -> None:
    body = {"metadata": {"name": "web", "namespace": "p1"}, "spec": {}}
    answered = _event({"service": body}, {"metadata": {"annotations": {"run.googleapis.com/ingress": "none"}}})
    assert run.from_entry(answered, SVC) == _svc(ingress="INGRESS_TRAFFIC_NONE")
    unanswered = _event({"service": body}, {})
    assert run.from_entry(unanswered, SVC) == _svc(ingress="INGRESS_TRAFFIC_ALL")


def test_from_entry_of_a_v1_body_prefers_its_own_annotation_over_the_response() -> None:
    event = _event({"service": V1_BODY}, {"metadata": {"annotations": {"run.googleapis.com/ingress": "none"}}})
    view = run.from_entry(event, SVC)
    assert view is not None and view.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY"


def test_locate_prefers_a_v2_name_from_the_entry_then_the_body() -> None:
    assert run.locate(_event({"service": {"name": SVC}})) == SVC
    assert run.locate(_event({}, {"metadata": {"name": "web"}, "template": {}}, resource_name=SVC)) == SVC
    assert run.locate(_event({}, {"name": SVC, "template": {"containers": []}})) == SVC
    assert run.locate(_event({}, {"name": SVC, "metadata": {"name": "web"}})) == SVC


def test_locate_does_not_read_a_response_whose_metadata_and_template_are_empty() -> None:
    assert run.locate(_event({}, {"name": SVC, "template": {}, "metadata": {}})) is None


def test_locate_reads_a_response_body_only_with_metadata_or_a_template() -> None:
    assert run.locate(_event({}, {"name": SVC})) is None


def test_locate_of_an_entry_with_no_name_at_all_is_none() -> None:
    assert run.locate(_event({"service": {}})) is None


# ---------------------------------------------------------------------------
# Live reads.


def test_from_live_of_a_client_object_reads_it_as_its_rest_json() -> None:
    from google.cloud import run_v2

    svc = run_v2.Service(name=SVC, ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER,
                         invoker_iam_disabled=True, labels={"rampart-quarantine": "1"},
                         template=run_v2.RevisionTemplate(service_account="sa@p1.iam.gserviceaccount.com"),
                         traffic=[run_v2.TrafficTarget(
                             type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, percent=100)])
    assert run.from_live(svc) == _svc(ingress="INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", invoker_iam_disabled=True,
                                      service_account="sa@p1.iam.gserviceaccount.com", labels={"rampart-quarantine": "1"},
                                      traffic=(run.Traffic("", 100, True, ""),))


def test_from_live_of_a_client_object_reads_the_same_with_enum_numbers() -> None:
    from google.cloud import run_v2

    types = run_v2.TrafficTargetAllocationType
    svc = run_v2.Service(name=SVC, ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_NONE, template=run_v2.RevisionTemplate(
        vpc_access=run_v2.VpcAccess(connector=CONNECTOR, egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC)), traffic=[
        run_v2.TrafficTarget(type_=types.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, revision="web-1", percent=10),
        run_v2.TrafficTarget(type_=types.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION, revision="web-2", percent=80),
        run_v2.TrafficTarget(percent=10)])
    expected = _svc(ingress="INGRESS_TRAFFIC_NONE", vpc_connector=CONNECTOR, vpc_egress="ALL_TRAFFIC", has_vpc_access=True,
                    traffic=(run.Traffic("web-1", 10, True), run.Traffic("web-2", 80, False), run.Traffic("", 10, True)))
    assert run.from_live(svc) == expected
    for numbers in (False, True):
        body = run_v2.Service.to_dict(svc, use_integers_for_enums=numbers, preserving_proto_field_name=False)
        assert run.from_live(body) == expected, numbers


def test_from_live_takes_project_and_location_from_the_name() -> None:
    assert run.from_live({"name": "projects/p2/locations/eu/services/x"}) == _svc(
        name="projects/p2/locations/eu/services/x", project="p2", location="eu")
    assert run.from_live({}) == _svc(name="", project="", location="")


# ---------------------------------------------------------------------------
# Asset Inventory records.


def test_from_asset_reads_a_v2_feed_record() -> None:
    record = {"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service",
              "resource": {"data": {"name": SVC, "ingress": "INGRESS_TRAFFIC_NONE", "invokerIamDisabled": True}}}
    assert run.from_asset(record) == _svc(ingress="INGRESS_TRAFFIC_NONE", invoker_iam_disabled=True)


def test_from_asset_of_another_type_or_without_data_is_none() -> None:
    assert run.from_asset({"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Job",
                           "resource": {"data": {"name": SVC}}}) is None
    assert run.from_asset({"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service",
                           "resource": {"data": {}}}) is None


def test_from_asset_of_a_v1_record_named_in_v2_form_keeps_that_name() -> None:
    record = {"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service",
              "resource": {"location": "ignored", "data": {**V1_BODY, "metadata": {**V1_BODY["metadata"], "namespace": "123"}}}}
    assert run.from_asset(record) == _svc(ingress="INGRESS_TRAFFIC_INTERNAL_ONLY",
                                          service_account="web@p1.iam.gserviceaccount.com")


def test_from_asset_of_a_v1_record_named_in_v1_form_builds_the_v2_name() -> None:
    record = {"name": "//run.googleapis.com/namespaces/123/services/web", "assetType": "run.googleapis.com/Service",
              "resource": {"location": "europe-north1",
                           "data": {"metadata": {"name": "web", "namespace": "p5",
                                                 "labels": {"cloud.googleapis.com/location": "x"}},
                                    "spec": {}}}}
    assert run.from_asset(record) == _svc(name="projects/p5/locations/europe-north1/services/web", project="p5",
                                          location="europe-north1", labels={"cloud.googleapis.com/location": "x"})


def test_from_asset_location_falls_back_to_the_record_then_the_v1_label() -> None:
    data = {"metadata": {"name": "web", "namespace": "p5", "labels": {"cloud.googleapis.com/location": "asia-south1"}},
            "spec": {}}
    top = {"name": "//run.googleapis.com/namespaces/p5/services/web", "assetType": "run.googleapis.com/Service",
           "location": "us-west2", "resource": {"data": data}}
    assert run.from_asset(top) == _svc(name="projects/p5/locations/us-west2/services/web", project="p5", location="us-west2",
                                       labels={"cloud.googleapis.com/location": "asia-south1"})
    labelled = {"name": "//run.googleapis.com/namespaces/p5/services/web", "assetType": "run.googleapis.com/Service",
                "resource": {"data": data}}
    assert run.from_asset(labelled) == _svc(name="projects/p5/locations/asia-south1/services/web", project="p5",
                                            location="asia-south1", labels={"cloud.googleapis.com/location": "asia-south1"})


def test_from_asset_of_a_v1_record_without_an_ingress_annotation_is_all() -> None:
    record = {"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service",
              "resource": {"data": {"metadata": {"name": "web",
                                                 "annotations": {"run.googleapis.com/invoker-iam-disabled": "TRUE"}}}}}
    assert run.from_asset(record) == _svc(invoker_iam_disabled=True)


def test_from_asset_of_a_search_result_reads_its_versioned_resource() -> None:
    record = {"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service",
              "versionedResources": [{"version": "v2", "resource": {"name": SVC, "ingress": 3}}]}
    assert run.from_asset(record) == _svc(ingress="INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER")


def test_from_asset_of_a_v2_record_without_a_location_in_its_name_takes_the_record_location() -> None:
    record = {"name": "//run.googleapis.com/projects/p1", "assetType": "run.googleapis.com/Service",
              "resource": {"location": "us-east4", "data": {"ingress": 2}}}
    assert run.from_asset(record) == _svc(name="projects/p1", location="us-east4", ingress="INGRESS_TRAFFIC_INTERNAL_ONLY")


# ---------------------------------------------------------------------------
# The v1 (Knative) shape, field by field.

CONNECTOR = "projects/p1/locations/us-central1/connectors/c"
KEY = "projects/p1/locations/us-central1/keyRings/r/cryptoKeys/k"


def _v1(metadata: dict[str, Any] | None = None, template_annotations: dict[str, Any] | None = None,
        spec: dict[str, Any] | None = None, traffic: list[Any] | None = None) -> run.ServiceView | None:
    body: dict[str, Any] = {"metadata": metadata or {"name": "web"},
                            "spec": {"template": {"metadata": {"annotations": template_annotations or {}}, "spec": spec or {}}}}
    if traffic is not None:
        body["spec"]["traffic"] = traffic
    return run.from_entry(_event({"service": body}), SVC)


def test_v1_ingress_annotation_values_read_as_v2_names() -> None:
    for value, expected in (("all", "INGRESS_TRAFFIC_ALL"), ("internal", "INGRESS_TRAFFIC_INTERNAL_ONLY"),
                            ("internal-and-cloud-load-balancing", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"),
                            ("none", "INGRESS_TRAFFIC_NONE")):
        view = _v1({"annotations": {"run.googleapis.com/ingress": value}})
        assert view is not None and view.ingress == expected, value


def test_v1_ingress_annotation_as_a_digit_string_reads_as_the_enum_number() -> None:
    for value, expected in (("4", "INGRESS_TRAFFIC_NONE"), ("2", "INGRESS_TRAFFIC_INTERNAL_ONLY"), ("7", "UNKNOWN_7")):
        view = _v1({"annotations": {"run.googleapis.com/ingress": value}})
        assert view is not None and view.ingress == expected, value


def test_v1_asset_record_with_an_unreadable_ingress_annotation_is_the_api_default() -> None:
    for value in (4, "", None, ["none"]):
        record = {"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service",
                  "resource": {"data": {"metadata": {"name": "web", "annotations": {"run.googleapis.com/ingress": value}}}}}
        assert run.from_asset(record) == _svc(), value


def test_v1_ingress_annotation_that_is_empty_or_not_text_reads_as_the_fallback() -> None:
    for value in ("", 4, None):
        event = _event({"service": {"metadata": {"annotations": {"run.googleapis.com/ingress": value}}, "spec": {}}},
                       {"metadata": {"annotations": {"run.googleapis.com/ingress": "internal"}}})
        view = run.from_entry(event, SVC)
        assert view is not None and view.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY", value


def test_v1_ingress_fallback_that_is_no_enum_value_reads_as_all() -> None:
    event = _event({"service": {"metadata": {"name": "web"}, "spec": {}}},
                   {"metadata": {"annotations": {"run.googleapis.com/ingress": {"x": 1}}}})
    view = run.from_entry(event, SVC)
    assert view is not None and view.ingress == "INGRESS_TRAFFIC_ALL"


def test_v1_invoker_iam_disabled_is_the_text_true_in_any_case_or_a_json_true() -> None:
    for value, expected in (("true", True), ("True", True), (True, True), ("false", False), ("yes", False), (1, False),
                            (None, False)):
        view = _v1({"annotations": {"run.googleapis.com/invoker-iam-disabled": value}})
        assert view is not None and view.invoker_iam_disabled is expected, value


def test_v1_template_reads_identity_connector_egress_key_and_labels() -> None:
    view = _v1({"name": "web", "labels": {"env": "prod"}},
               {"run.googleapis.com/vpc-access-connector": CONNECTOR, "run.googleapis.com/vpc-access-egress": "all-traffic",
                "run.googleapis.com/encryption-key": KEY},
               {"serviceAccountName": "web@p1.iam.gserviceaccount.com",
                "containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}]})
    assert view == _svc(service_account="web@p1.iam.gserviceaccount.com", vpc_connector=CONNECTOR, vpc_egress="ALL_TRAFFIC",
                        has_vpc_access=True, encryption_key=KEY, env=(run.EnvVar("app", "A", "1"),), labels={"env": "prod"})


def test_v1_encryption_key_on_the_service_applies_when_the_template_has_none() -> None:
    view = _v1({"name": "web", "annotations": {"run.googleapis.com/encryption-key": KEY}})
    assert view is not None and view.encryption_key == KEY
    ignored = _v1({"name": "web", "annotations": {"run.googleapis.com/encryption-key": "other"}},
                  {"run.googleapis.com/encryption-key": KEY})
    assert ignored is not None and ignored.encryption_key == KEY
    not_text = _v1({"name": "web", "annotations": {"run.googleapis.com/encryption-key": ["k"]}},
                   {"run.googleapis.com/encryption-key": 5})
    assert not_text is not None and not_text.encryption_key == ""


def test_v1_vpc_access_by_network_interfaces_defaults_egress_to_private_ranges() -> None:
    view = _v1(template_annotations={"run.googleapis.com/network-interfaces": '[{"network":"default"}]'})
    assert view is not None
    assert (view.has_vpc_access, view.vpc_connector, view.vpc_egress) == (True, "", "PRIVATE_RANGES_ONLY")


def test_v1_without_vpc_access_has_no_egress_even_if_annotated() -> None:
    view = _v1(template_annotations={"run.googleapis.com/vpc-access-egress": "all-traffic"})
    assert view is not None
    assert (view.has_vpc_access, view.vpc_connector, view.vpc_egress) == (False, "", "")


def test_v1_connector_that_is_not_text_counts_as_vpc_access_with_no_connector_name() -> None:
    view = _v1(template_annotations={"run.googleapis.com/vpc-access-connector": {"name": "c"},
                                     "run.googleapis.com/vpc-access-egress": "private-ranges-only"})
    assert view is not None
    assert (view.has_vpc_access, view.vpc_connector, view.vpc_egress) == (True, "", "PRIVATE_RANGES_ONLY")


def test_v1_egress_aliases_and_numbers() -> None:
    for value, expected in (("all", "ALL_TRAFFIC"), ("private-ranges-only", "PRIVATE_RANGES_ONLY"), (1, "ALL_TRAFFIC"),
                            ("2", "PRIVATE_RANGES_ONLY"), (None, "PRIVATE_RANGES_ONLY")):
        view = _v1(template_annotations={"run.googleapis.com/vpc-access-connector": CONNECTOR,
                                         "run.googleapis.com/vpc-access-egress": value})
        assert view is not None and view.vpc_egress == expected, value


def test_v1_traffic_targets_read_revision_percent_latest_and_tag() -> None:
    view = _v1(traffic=[{"revisionName": "web-00001-abc", "percent": 70, "tag": "old"},
                        {"latestRevision": True, "percent": "30"},
                        {"revisionName": "web-00002-def", "latestRevision": "true", "percent": 0},
                        "not a target"])
    assert view is not None
    assert view.traffic == (run.Traffic("web-00001-abc", 70, False, "old"), run.Traffic("", 30, True, ""),
                            run.Traffic("web-00002-def", 0, False, ""))


def test_v1_traffic_with_no_mapping_target_routes_to_the_latest() -> None:
    view = _v1(traffic=["x", 3])
    assert view is not None and view.traffic == (run.Traffic("", 100, True, ""),)


def test_percent_reads_ints_and_short_digit_strings_only() -> None:
    targets = [{"revisionName": r, "percent": p} for r, p in
               (("a", 100), ("b", "100"), ("c", "1000"), ("d", True), ("e", 12.5), ("f", "-1"), ("g", "²"), ("h", None),
                ("i", "007"))]
    view = _v1(traffic=targets)
    assert view is not None
    assert [t.percent for t in view.traffic] == [100, 100, 0, 0, 0, 0, 0, 0, 7]


def test_traffic_revision_names_keep_their_last_path_part() -> None:
    live = run.from_live({"name": SVC, "traffic": [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "projects/p1/locations/us/services/web/revisions/web-1",
         "percent": 100}]})
    assert live is not None and live.traffic == (run.Traffic("web-1", 100, False, ""),)


# ---------------------------------------------------------------------------
# Environment variables.


def test_env_skips_an_entry_that_is_not_a_mapping_and_reads_on() -> None:
    view = _v1(spec={"containers": [{"name": "app", "env": ["junk", {"name": "A", "value": "1"}]}]})
    assert view is not None and view.env == (run.EnvVar("app", "A", "1"),)


def test_env_of_each_container_with_references_as_none() -> None:
    view = _v1(spec={"containers": [
        {"name": "app", "env": [{"name": "PLAIN", "value": "v"}, {"name": "EMPTY"},
                                {"name": "REF", "valueFrom": {"secretKeyRef": {"name": "s", "key": "1"}}},
                                {"name": "REF2", "value_from": {}, "value": "shadow"}, "junk"]},
        {"name": "side", "env": [{"name": "NUM", "value": 5}, {"name": "SNAKE", "value_source": {}},
                                 {"name": "V2", "valueSource": {}}]}]})
    assert view is not None
    assert view.env == (run.EnvVar("app", "PLAIN", "v"), run.EnvVar("app", "EMPTY", ""), run.EnvVar("app", "REF", None),
                        run.EnvVar("app", "REF2", None), run.EnvVar("side", "NUM", None), run.EnvVar("side", "SNAKE", None),
                        run.EnvVar("side", "V2", None))


# ---------------------------------------------------------------------------
# The v2 shape, field by field.


def test_v2_ingress_unset_or_unspecified_is_the_default_all() -> None:
    for value in (None, "", 0, "INGRESS_TRAFFIC_UNSPECIFIED"):
        view = run.from_live({"name": SVC, "ingress": value})
        assert view is not None and view.ingress == "INGRESS_TRAFFIC_ALL", value


def test_v2_ingress_numbers_names_and_v1_aliases() -> None:
    for value, expected in ((2, "INGRESS_TRAFFIC_INTERNAL_ONLY"), ("4", "INGRESS_TRAFFIC_NONE"),
                            ("INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"),
                            ("internal", "INGRESS_TRAFFIC_INTERNAL_ONLY"), (9, "UNKNOWN_9"), (True, "")):
        view = run.from_live({"name": SVC, "ingress": value})
        assert view is not None and view.ingress == expected, value


def test_v2_invoker_iam_disabled_only_when_json_true() -> None:
    for value, expected in ((True, True), ("true", False), (1, False), (False, False)):
        view = run.from_live({"name": SVC, "invokerIamDisabled": value})
        assert view is not None and view.invoker_iam_disabled is expected, value
    snake = run.from_live({"name": SVC, "invoker_iam_disabled": True})
    assert snake is not None and snake.invoker_iam_disabled is True


def test_v2_vpc_access_by_network_interfaces_with_unspecified_egress_is_private_ranges() -> None:
    for egress in (None, "VPC_EGRESS_UNSPECIFIED", 0):
        view = run.from_live({"name": SVC,
                              "template": {"vpcAccess": {"networkInterfaces": [{"network": "n"}], "egress": egress}}})
        assert view is not None, egress
        assert (view.has_vpc_access, view.vpc_connector, view.vpc_egress) == (True, "", "PRIVATE_RANGES_ONLY"), egress


def test_v2_egress_is_read_only_with_vpc_access() -> None:
    view = run.from_live({"name": SVC, "template": {"vpcAccess": {"egress": "ALL_TRAFFIC", "networkInterfaces": []}}})
    assert view is not None and (view.has_vpc_access, view.vpc_egress) == (False, "")
    numbered = run.from_live({"name": SVC, "template": {"vpcAccess": {"connector": CONNECTOR, "egress": 2}}})
    assert numbered is not None and (numbered.has_vpc_access, numbered.vpc_egress) == (True, "PRIVATE_RANGES_ONLY")
    aliased = run.from_live({"name": SVC, "template": {"vpcAccess": {"connector": CONNECTOR, "egress": "all-traffic"}}})
    assert aliased is not None and aliased.vpc_egress == "ALL_TRAFFIC"


def test_v2_traffic_latest_by_type_name_number_or_an_untyped_target_without_revision() -> None:
    view = run.from_live({"name": SVC, "traffic": [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 10},
        {"type": 1, "percent": 10},
        {"percent": 10},
        {"revision": "web-2", "percent": 10},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "web-3", "percent": 10},
        {"type": 2, "percent": 10},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED", "revision": "web-4", "percent": 40, "tag": "t"}]})
    assert view is not None
    assert [t.latest for t in view.traffic] == [True, True, True, False, False, False, False]
    assert view.traffic[-1] == run.Traffic("web-4", 40, False, "t")


def test_v2_traffic_with_an_unset_type_and_no_revision_is_the_latest_however_unset_reads() -> None:
    for unset in ("TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED", 0, "", None):
        view = run.from_live({"name": SVC, "traffic": [{"type": unset, "percent": 100}, {"type": unset, "revision": "web-1"}]})
        assert view is not None, unset
        assert view.traffic == (run.Traffic("", 100, True, ""), run.Traffic("web-1", 0, False, "")), unset


def test_v2_traffic_of_a_client_object_reads_types_as_rest_json_does() -> None:
    from google.cloud import run_v2

    types = run_v2.TrafficTargetAllocationType
    latest, by_revision = types.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, types.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    svc = run_v2.Service(name=SVC, traffic=[
        run_v2.TrafficTarget(type_=latest, revision="web-1", percent=10),
        run_v2.TrafficTarget(type_=by_revision, revision="web-2", percent=20, tag="blue"),
        run_v2.TrafficTarget(percent=70)])
    view = run.from_live(svc)
    assert view is not None
    assert view.traffic == (run.Traffic("web-1", 10, True, ""), run.Traffic("web-2", 20, False, "blue"),
                            run.Traffic("", 70, True, ""))
    assert view.pinned() == (run.Traffic("web-2", 20, False, "blue"),)


def test_v2_labels_as_written() -> None:
    view = run.from_live({"name": SVC, "labels": {"rampart": "quarantined"}})
    assert view is not None and view.labels == {"rampart": "quarantined"}


def test_is_v1_by_spec_or_by_metadata_without_template() -> None:
    # a v1 body reads its ingress from annotations; a v2 body from `ingress`
    ann = {"annotations": {"run.googleapis.com/ingress": "none"}}
    v1_by_spec = run.from_entry(_event({"service": {"spec": {}, "metadata": ann, "template": {}, "ingress": 2}}), SVC)
    assert v1_by_spec is not None and v1_by_spec.ingress == "INGRESS_TRAFFIC_NONE"
    v1_by_metadata = run.from_entry(_event({"service": {"metadata": ann, "ingress": 2}}), SVC)
    assert v1_by_metadata is not None and v1_by_metadata.ingress == "INGRESS_TRAFFIC_NONE"
    v2 = run.from_entry(_event({"service": {"metadata": ann, "template": {}, "ingress": 2}}), SVC)
    assert v2 is not None and v2.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    plain = run.from_entry(_event({"service": {"ingress": 2}}), SVC)
    assert plain is not None and plain.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY"


# ---------------------------------------------------------------------------
# Jobs and worker pools.

JOB = "projects/p1/locations/us-central1/jobs/nightly"
POOL = "projects/p1/locations/us-central1/workerPools/queue"
SA = "nightly@p1.iam.gserviceaccount.com"
TASK = {"serviceAccount": SA, "encryptionKey": KEY, "vpcAccess": {"connector": CONNECTOR, "egress": "ALL_TRAFFIC"},
        "containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}
TEMPLATE = run.Template(SA, CONNECTOR, "ALL_TRAFFIC", True, KEY, (run.EnvVar("c", "A", "1"),))
EMPTY = run.Template("", "", "", False, "", ())


def _wl_event(request: dict[str, Any] | None = None, response: dict[str, Any] | None = None, *, resource_name: str = "",
              location: str = "us-central1") -> AuditEvent:
    return AuditEvent("run.googleapis.com", "google.cloud.run.v2.Jobs.UpdateJob", resource_name, "p1", location,
                      "alice@example.com", "id-1", "2026-01-01T00:00:00Z", "activity", 0, "", "cloud_run_job",
                      request=request or {}, response=response or {})


def test_workload_parts_of_a_job_a_worker_pool_and_anything_else() -> None:
    assert run.workload_parts(JOB) == ("p1", "us-central1", "run.job")
    assert run.workload_parts("projects/p2/locations/eu/workerPools/w") == ("p2", "eu", "run.workerPool")
    assert run.workload_parts(SVC) is None
    assert run.workload_parts("namespaces/p1/jobs/nightly") is None


def test_a_v2_job_reads_its_task_template_and_a_pool_its_revision_template() -> None:
    assert run.workload_from_live({"name": JOB, "template": {"template": TASK}}) == run.WorkloadView(
        JOB, "p1", "us-central1", "run.job", TEMPLATE)
    assert run.workload_from_live({"name": POOL, "template": TASK}) == run.WorkloadView(
        POOL, "p1", "us-central1", "run.workerPool", TEMPLATE)
    assert run.workload_from_live({"name": JOB, "template": TASK}) == run.WorkloadView(JOB, "p1", "us-central1", "run.job", EMPTY)


def test_a_workload_view_answers_from_its_template() -> None:
    view = run.WorkloadView(POOL, "p1", "us-central1", "run.workerPool", TEMPLATE)
    assert (view.kind, view.service_account, view.vpc_connector, view.vpc_egress, view.has_vpc_access, view.encryption_key,
            view.env) == ("workerPool", SA, CONNECTOR, "ALL_TRAFFIC", True, KEY, (run.EnvVar("c", "A", "1"),))
    assert run.WorkloadView(JOB, "p1", "us-central1", "run.job", TEMPLATE).kind == "job"


V1_JOB = {"apiVersion": "run.googleapis.com/v1", "kind": "Job",
          "metadata": {"name": "nightly", "annotations": {"run.googleapis.com/encryption-key": KEY,
                                                          "run.googleapis.com/vpc-access-connector": "ignored"}},
          "spec": {"template": {"metadata": {"annotations": {"run.googleapis.com/vpc-access-connector": CONNECTOR,
                                                             "run.googleapis.com/vpc-access-egress": "all-traffic"}},
                                "spec": {"template": {"spec": {"serviceAccountName": SA, "containers": [
                                    {"name": "c", "env": [{"name": "A", "value": "1"}]}]}}}}}}


def test_a_v1_job_reads_its_execution_template_with_both_annotation_levels() -> None:
    assert run.workload_from_live({**V1_JOB, "name": JOB}) == run.WorkloadView(JOB, "p1", "us-central1", "run.job", TEMPLATE)


def test_a_v1_job_key_annotation_on_its_execution_template_counts_too() -> None:
    body = {"spec": {"template": {"metadata": {"annotations": {"run.googleapis.com/encryption-key": KEY}}}}}
    view = run.workload_from_live({**body, "name": JOB})
    assert view is not None and view.template == run.Template("", "", "", False, KEY, ())
    not_text = run.workload_from_live({"name": JOB, "apiVersion": "run.googleapis.com/v1",
                                       "metadata": {"annotations": {"run.googleapis.com/encryption-key": 7}}})
    assert not_text is not None and not_text.template == EMPTY


def test_a_v1_job_is_known_by_its_api_version_without_a_spec() -> None:
    body = {"name": JOB, "apiVersion": "run.googleapis.com/v1",
            "metadata": {"annotations": {"run.googleapis.com/encryption-key": KEY}},
            "template": {"template": TASK}}
    view = run.workload_from_live(body)
    assert view is not None and view.template == run.Template("", "", "", False, KEY, ())
    v2 = run.workload_from_live({**body, "apiVersion": "run.googleapis.com/v2"})
    assert v2 is not None and v2.template == TEMPLATE


def test_a_v1_job_is_known_by_its_spec_without_an_api_version() -> None:
    view = run.workload_from_live({"name": JOB, "spec": V1_JOB["spec"], "template": {"template": {"serviceAccount": "other"}}})
    assert view is not None
    assert view.template == run.Template(SA, CONNECTOR, "ALL_TRAFFIC", True, "", (run.EnvVar("c", "A", "1"),))


def test_a_worker_pool_has_no_v1_shape() -> None:
    assert run.workload_from_live({**V1_JOB, "name": POOL}) is None


def test_a_workload_not_named_as_one_is_none() -> None:
    assert run.workload_from_live({"name": SVC, "template": {"template": TASK}}) is None


def test_workload_from_live_of_a_client_object() -> None:
    from google.cloud import run_v2

    job = run_v2.Job(name=JOB, template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(
        service_account=SA, encryption_key=KEY,
        vpc_access=run_v2.VpcAccess(connector=CONNECTOR, egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC),
        containers=[run_v2.Container(name="c", env=[run_v2.EnvVar(name="A", value="1")])])))
    assert run.workload_from_live(job) == run.WorkloadView(JOB, "p1", "us-central1", "run.job", TEMPLATE)


def test_workload_from_live_of_a_client_object_reads_the_same_with_any_to_dict_options() -> None:
    from google.cloud import run_v2

    pool = run_v2.WorkerPool(name=POOL, template=run_v2.WorkerPoolRevisionTemplate(
        service_account=SA, encryption_key=KEY,
        vpc_access=run_v2.VpcAccess(network_interfaces=[run_v2.VpcAccess.NetworkInterface(network="n")],
                                    egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC),
        containers=[run_v2.Container(name="c", env=[
            run_v2.EnvVar(name="A", value="1"),
            run_v2.EnvVar(name="S", value_source=run_v2.EnvVarSource(secret_key_ref=run_v2.SecretKeySelector(secret="s"))),
        ])]))
    expected = run.WorkloadView(POOL, "p1", "us-central1", "run.workerPool", run.Template(
        SA, "", "ALL_TRAFFIC", True, KEY, (run.EnvVar("c", "A", "1"), run.EnvVar("c", "S", None))))
    assert run.workload_from_live(pool) == expected
    for numbers in (False, True):
        for snake in (False, True):
            body = run_v2.WorkerPool.to_dict(pool, use_integers_for_enums=numbers, preserving_proto_field_name=snake)
            assert run.workload_from_live(body) == expected, (numbers, snake)


def test_workload_from_entry_reads_the_request_job_or_worker_pool() -> None:
    job = _wl_event({"job": {"template": {"template": TASK}}}, {"template": {"template": {"serviceAccount": "other"}}})
    assert run.workload_from_entry(job, JOB) == run.WorkloadView(JOB, "p1", "us-central1", "run.job", TEMPLATE)
    pool = _wl_event({"workerPool": {"template": TASK}}, {"template": {"serviceAccount": "other"}})
    assert run.workload_from_entry(pool, POOL) == run.WorkloadView(POOL, "p1", "us-central1", "run.workerPool", TEMPLATE)


def test_workload_from_entry_falls_back_to_a_response_with_a_template_or_a_spec() -> None:
    templated = _wl_event({"name": JOB}, {"name": JOB, "template": {}})
    assert run.workload_from_entry(templated, JOB) == run.WorkloadView(JOB, "p1", "us-central1", "run.job", EMPTY)
    specced = _wl_event({"name": JOB}, {"name": JOB, "spec": V1_JOB["spec"]})
    view = run.workload_from_entry(specced, JOB)
    assert view is not None and view.service_account == SA


def test_workload_from_entry_without_a_body_is_none() -> None:
    assert run.workload_from_entry(_wl_event({"name": JOB}, {"name": JOB, "spec": {}}), JOB) is None
    assert run.workload_from_entry(_wl_event({"name": JOB}, {"name": JOB}), JOB) is None
    assert run.workload_from_entry(_wl_event({"job": {}}, {}), JOB) is None


def test_locate_workload_reads_each_name_candidate() -> None:
    assert run.locate_workload(_wl_event(resource_name=JOB)) == JOB
    assert run.locate_workload(_wl_event({"name": POOL})) == POOL
    assert run.locate_workload(_wl_event({"resource": JOB})) == JOB
    assert run.locate_workload(_wl_event({"job": {"name": JOB}})) == JOB
    assert run.locate_workload(_wl_event({"name": "x"}, {"name": POOL, "template": {}})) == POOL


def test_locate_workload_takes_the_first_candidate_in_order() -> None:
    assert run.locate_workload(_wl_event({"name": POOL, "resource": "projects/p9/locations/eu/jobs/j"}, resource_name=JOB)) == JOB
    assert run.locate_workload(_wl_event({"name": POOL, "resource": JOB})) == POOL


def test_locate_workload_makes_a_v1_job_name_v2_with_the_entry_location() -> None:
    assert run.locate_workload(_wl_event(resource_name="namespaces/p3/jobs/nightly", location="asia-east2")) == (
        "projects/p3/locations/asia-east2/jobs/nightly")
    assert run.locate_workload(_wl_event(resource_name="namespaces/p3/jobs/nightly", location="")) is None


def test_locate_workload_of_a_create_joins_parent_and_id() -> None:
    parent = "projects/p1/locations/us-central1"
    assert run.locate_workload(_wl_event({"parent": parent, "jobId": "nightly"})) == JOB
    assert run.locate_workload(_wl_event({"parent": parent, "workerPoolId": "queue"})) == POOL
    assert run.locate_workload(_wl_event({"parent": parent, "worker_pool_id": "queue"})) == POOL


def test_locate_workload_without_a_valid_name_is_none() -> None:
    assert run.locate_workload(_wl_event({"jobId": "nightly"})) is None
    assert run.locate_workload(_wl_event({"parent": "projects/p1", "workerPoolId": "queue"})) is None
    assert run.locate_workload(_wl_event({"parent": "projects/p1/locations/us-central1"}, resource_name=SVC)) is None


def test_workload_from_asset_reads_a_job_or_pool_record_only() -> None:
    job = {"name": f"//run.googleapis.com/{JOB}", "assetType": "run.googleapis.com/Job",
           "resource": {"data": {"template": {"template": TASK}}}}
    assert run.workload_from_asset(job) == run.WorkloadView(JOB, "p1", "us-central1", "run.job", TEMPLATE)
    pool = {"name": f"//run.googleapis.com/{POOL}", "assetType": "run.googleapis.com/WorkerPool",
            "resource": {"data": {"template": TASK}}}
    assert run.workload_from_asset(pool) == run.WorkloadView(POOL, "p1", "us-central1", "run.workerPool", TEMPLATE)
    assert run.workload_from_asset({**job, "assetType": "run.googleapis.com/Service"}) is None
    assert run.workload_from_asset({**job, "resource": {"data": {}}}) is None


def _narrowed_checks(kind: Any, name: str, other: str, collection_body: dict[str, Any], other_body: dict[str, Any]) -> None:
    own = run.WorkloadView(name, "p1", "us-central1", kind.name, TEMPLATE)
    types = {"run.job": "run.googleapis.com/Job", "run.workerPool": "run.googleapis.com/WorkerPool"}
    assert kind.asset_types == (types[kind.name],)
    assert kind.locate(_wl_event(resource_name=name)) == name
    assert kind.locate(_wl_event(resource_name=other)) is None
    assert kind.locate(_wl_event()) is None
    assert kind.from_entry(_wl_event(collection_body), name) == own
    assert kind.from_entry(_wl_event(other_body), other) is None
    assert kind.from_entry(_wl_event(), name) is None
    live = {"name": name, **collection_body[next(iter(collection_body))]}
    assert kind.from_live(live) == own
    assert kind.from_live({"name": other, **other_body[next(iter(other_body))]}) is None
    assert kind.from_live({"name": SVC}) is None
    asset_type = kind.asset_types[0]
    assert kind.from_asset({"name": f"//run.googleapis.com/{name}", "assetType": asset_type,
                            "resource": {"data": collection_body[next(iter(collection_body))]}}) == own
    other_type = "run.googleapis.com/WorkerPool" if asset_type.endswith("Job") else "run.googleapis.com/Job"
    assert kind.from_asset({"name": f"//run.googleapis.com/{other}", "assetType": other_type,
                            "resource": {"data": other_body[next(iter(other_body))]}}) is None
    assert kind.from_asset({"assetType": "x"}) is None


def test_the_job_kind_refuses_worker_pools() -> None:
    for kind in (run.JOB, run._narrowed("run.job", "jobs", "run.googleapis.com/Job")):
        assert kind.name == "run.job"
        _narrowed_checks(kind, JOB, POOL, {"job": {"template": {"template": TASK}}}, {"workerPool": {"template": TASK}})


def test_the_worker_pool_kind_refuses_jobs() -> None:
    for kind in (run.WORKER_POOL, run._narrowed("run.workerPool", "workerPools", "run.googleapis.com/WorkerPool")):
        assert kind.name == "run.workerPool"
        _narrowed_checks(kind, POOL, JOB, {"workerPool": {"template": TASK}}, {"job": {"template": {"template": TASK}}})


def test_the_workload_kind_takes_both() -> None:
    assert run.WORKLOAD.name == "run.workload"
    assert run.WORKLOAD.asset_types == ("run.googleapis.com/Job", "run.googleapis.com/WorkerPool")
    assert run.SERVICE.asset_types == ("run.googleapis.com/Service",)
