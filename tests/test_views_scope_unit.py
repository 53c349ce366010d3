"""shared/views/scope.py: which resource a policy is on, with hand-written expected answers."""

from __future__ import annotations

from typing import Any

from shared.event import AuditEvent
from shared.views import scope


def test_scope_of_names_each_kind_of_policy_holder() -> None:
    assert scope.scope_of("projects/p1") == "project"
    assert scope.scope_of("folders/123") == "folder"
    assert scope.scope_of("organizations/456") == "organization"
    assert scope.scope_of("projects/p1/locations/us/keyRings/r") == "kms.keyRing"


def test_scope_of_names_each_cloud_run_and_kms_policy_holder() -> None:
    assert scope.scope_of("projects/p1/locations/us/services/web") == "run.service"
    assert scope.scope_of("projects/p1/locations/us/functions/hook") == "run.function"
    assert scope.scope_of("projects/p1/locations/us/jobs/nightly") == "run.job"
    assert scope.scope_of("projects/p1/locations/us/workerPools/pool") == "run.workerPool"
    assert scope.scope_of("projects/p1/locations/us/keyRings/r/cryptoKeys/k") == "kms.cryptoKey"


def test_scope_of_anything_else_is_empty() -> None:
    assert scope.scope_of("projects/p1/topics/t") == ""
    assert scope.scope_of("") == ""
    assert scope.scope_of("projects/p1/locations/us/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1") == ""


def _event(service: str, resource_name: str = "", request: dict[str, Any] | None = None,
           labels: dict[str, Any] | None = None) -> AuditEvent:
    return AuditEvent(service, "SetIamPolicy", resource_name, "p1", "", "alice@example.com", "id-1", "2026-01-01T00:00:00Z",
                      "activity", 0, "", "project", request=request or {}, resource_labels=labels or {})


CRM = "cloudresourcemanager.googleapis.com"


def test_locate_takes_the_resource_name_when_it_is_a_hierarchy_node() -> None:
    assert scope.locate(_event(CRM, "folders/12", {"resource": "projects/p2"})) == "folders/12"


def test_locate_takes_the_request_resource_when_the_resource_name_is_not_a_node() -> None:
    event = _event(CRM, "projects/p1/locations/us/services/web", {"resource": "organizations/34"})
    assert scope.locate(event) == "organizations/34"


def test_locate_of_a_resource_manager_entry_falls_back_to_its_labels_in_order() -> None:
    assert scope.locate(_event(CRM, "1234", {"resource": "1234"},
                               {"organization_id": "9", "folder_id": "8", "project_id": "p7"})) == "organizations/9"
    assert scope.locate(_event(CRM, "1234", {}, {"folder_id": "8", "project_id": "p7"})) == "folders/8"
    assert scope.locate(_event(CRM, "", {}, {"project_id": "p7"})) == "projects/p7"


def test_locate_of_a_resource_manager_entry_skips_labels_that_are_not_ids() -> None:
    assert scope.locate(_event(CRM, "1234", {}, {"organization_id": "", "folder_id": 8, "project_id": "a/b"})) is None
    assert scope.locate(_event(CRM, "1234", {}, {"organization_id": "x/y", "project_id": "p7"})) == "projects/p7"


def test_locate_of_another_service_is_the_iam_views_answer() -> None:
    # iam_views.locate: the request's resource, else the resource name (not read from labels).
    event = _event("run.googleapis.com", "projects/p1/locations/us/services/web", {}, {"project_id": "p7"})
    assert scope.locate(event) == "projects/p1/locations/us/services/web"
    assert scope.locate(_event("cloudkms.googleapis.com", "", {"resource": "projects/p1/locations/us/keyRings/r"})) == (
        "projects/p1/locations/us/keyRings/r")


def test_the_policy_kind_is_the_iam_policy_kind_located_by_scope() -> None:
    assert scope.POLICY.name == "iam.policy"
    assert scope.POLICY.locate is scope.locate
