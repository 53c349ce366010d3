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
        "template": {"serviceAccount": "web@p1.iam.gserviceaccount.com", "encryptionKey": "projects/p1/locations/us/keyRings/r/cryptoKeys/k",
                     "vpcAccess": {"connector": "projects/p1/locations/us-central1/connectors/c", "egress": "ALL_TRAFFIC"},
                     "containers": [{"name": "app", "env": [{"name": "A", "value": "1"},
                                                             {"name": "B", "valueSource": {"secretKeyRef": {"secret": "s"}}}]}]},
        "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "web-00002-xyz", "percent": 100, "tag": "blue"}],
    })
    assert view == run.ServiceView(
        name=SVC, project="p1", location="us-central1", ingress="INGRESS_TRAFFIC_INTERNAL_ONLY", invoker_iam_disabled=True,
        service_account="web@p1.iam.gserviceaccount.com", vpc_connector="projects/p1/locations/us-central1/connectors/c",
        vpc_egress="ALL_TRAFFIC", has_vpc_access=True, encryption_key="projects/p1/locations/us/keyRings/r/cryptoKeys/k",
        env=(run.EnvVar("app", "A", "1"), run.EnvVar("app", "B", None)),
        traffic=(run.Traffic("web-00002-xyz", 100, False, "blue"),), labels={"team": "a"})
