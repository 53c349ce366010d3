"""shared/views/names.py: canonical resource names from every source, with the expected parts
written out by hand (Cloud Run v1 `namespaces/P/services/S` and v2 names, KMS names)."""

from __future__ import annotations

from typing import Any

from shared.event import AuditEvent
from shared.views import names


def test_kms_name_splits_a_version_name_into_its_parts() -> None:
    parts = names.kms_name("projects/p1/locations/us/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3")
    assert parts == names.KmsName("p1", "us", "r", "k", "3")
    assert parts.resource_type == "kms.cryptoKeyVersion"
    assert parts.key_name == "projects/p1/locations/us/keyRings/r/cryptoKeys/k"


def test_kms_name_of_a_key_ring_and_a_key_leaves_the_rest_empty() -> None:
    ring = names.kms_name("projects/p1/locations/europe-west1/keyRings/r1")
    assert ring == names.KmsName("p1", "europe-west1", "r1", "", "")
    assert ring.resource_type == "kms.keyRing"
    assert ring.key_name == "projects/p1/locations/europe-west1/keyRings/r1"
    key = names.kms_name("projects/p1/locations/europe-west1/keyRings/r1/cryptoKeys/k1")
    assert key == names.KmsName("p1", "europe-west1", "r1", "k1", "")
    assert key.resource_type == "kms.cryptoKey"
    assert key.key_name == "projects/p1/locations/europe-west1/keyRings/r1/cryptoKeys/k1"


def test_kms_name_of_anything_else_is_none() -> None:
    assert names.kms_name("projects/p1/locations/us/services/web") is None
    assert names.kms_name("projects/p1/locations/us/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1/x") is None


def test_run_service_parts_of_a_v2_name_only() -> None:
    assert names.run_service_parts("projects/p1/locations/us-east1/services/web") == ("p1", "us-east1")
    assert names.run_service_parts("namespaces/p1/services/web") is None


def test_project_location_of_each_form_of_name() -> None:
    assert names.project_location("projects/p1/locations/us/services/web") == ("p1", "us")
    assert names.project_location("projects/p1/locations/us") == ("p1", "us")
    assert names.project_location("projects/p1/locations/us/keyRings/r/cryptoKeys/k") == ("p1", "us")
    assert names.project_location("projects/p1/topics/t") == ("p1", "")
    assert names.project_location("projects/p1") == ("p1", "")
    assert names.project_location("projects") == ("", "")
    assert names.project_location("folders/f1/locations/us") == ("", "")
    assert names.project_location("folders/f1") == ("", "")
    assert names.project_location("a/b/c/d") == ("", "")
    assert names.project_location("") == ("", "")


def test_resource_type_of_each_known_name() -> None:
    assert names.resource_type_of("projects/p1/locations/us/services/web") == "run.service"
    assert names.resource_type_of("projects/p1/locations/us/keyRings/r") == "kms.keyRing"
    assert names.resource_type_of("projects/p1/locations/us/keyRings/r/cryptoKeys/k") == "kms.cryptoKey"
    assert names.resource_type_of("projects/p1/locations/us/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2") == (
        "kms.cryptoKeyVersion")
    assert names.resource_type_of("projects/p1/topics/t") == ""


def test_from_full_name_drops_the_service_host_only() -> None:
    assert names.from_full_name("//run.googleapis.com/projects/p1/locations/us/services/web") == (
        "projects/p1/locations/us/services/web")
    assert names.from_full_name("///projects/p1") == "projects/p1"  # an empty host
    assert names.from_full_name("//run.googleapis.com") == ""
    assert names.from_full_name("projects/p1/locations/us/services/web") == "projects/p1/locations/us/services/web"


def _event(request: dict[str, Any] | None = None, *, resource_name: str = "", project: str = "p9",
           location: str = "asia-east1") -> AuditEvent:
    return AuditEvent("run.googleapis.com", "google.cloud.run.v1.Services.ReplaceService", resource_name, project, location,
                      "alice@example.com", "id-1", "2026-01-01T00:00:00Z", "activity", 0, "", "cloud_run_revision",
                      request=request or {})


V2 = "projects/p1/locations/us-east1/services/web"


def test_run_service_name_takes_the_first_v2_candidate_in_order() -> None:
    assert names.run_service_name(_event({"name": "projects/p2/locations/eu/services/b", "resource": V2}, resource_name=V2)) == (
        V2, "p1", "us-east1")
    assert names.run_service_name(_event({"name": V2, "resource": "projects/p2/locations/eu/services/b"})) == (
        V2, "p1", "us-east1")
    assert names.run_service_name(_event({"resource": V2})) == (V2, "p1", "us-east1")


def test_run_service_name_reads_the_service_body_last() -> None:
    assert names.run_service_name(_event(), {"name": V2}) == (V2, "p1", "us-east1")
    assert names.run_service_name(_event({"resource": "projects/p2/locations/eu/services/b"}), {"name": V2}) == (
        "projects/p2/locations/eu/services/b", "p2", "eu")


def test_run_service_name_makes_a_v1_name_v2_with_the_entry_location() -> None:
    assert names.run_service_name(_event(resource_name="namespaces/p3/services/api")) == (
        "projects/p3/locations/asia-east1/services/api", "p3", "asia-east1")
    assert names.run_service_name(_event({"name": "namespaces/p3/services/api"}, resource_name="x")) == (
        "projects/p3/locations/asia-east1/services/api", "p3", "asia-east1")


def test_run_service_name_prefers_a_v2_candidate_over_an_earlier_v1_one() -> None:
    assert names.run_service_name(_event({"name": V2}, resource_name="namespaces/p3/services/api")) == (V2, "p1", "us-east1")


def test_run_service_name_of_a_create_joins_parent_and_service_id() -> None:
    assert names.run_service_name(_event({"parent": "projects/p4/locations/me-west1", "serviceId": "new"})) == (
        "projects/p4/locations/me-west1/services/new", "p4", "me-west1")


def test_run_service_name_without_a_service_form_is_the_entry_own() -> None:
    assert names.run_service_name(_event({"parent": "projects/p4/locations/me-west1"}, resource_name="r")) == (
        "r", "p9", "asia-east1")
    assert names.run_service_name(_event({"parent": "projects/p4", "serviceId": "new"}, resource_name="r")) == (
        "r", "p9", "asia-east1")
    assert names.run_service_name(_event(resource_name="r"), {"name": "namespaces-like"}) == ("r", "p9", "asia-east1")
