"""shared/views/functions.py: a Cloud Run function (Cloud Functions v2 `Function`,
cloudfunctions.v2.json) from a hand-written entry, live read or asset record."""

from __future__ import annotations

from shared.views import functions as fv

FN = "projects/p1/locations/us-central1/functions/hook"


def test_a_live_function_with_a_connector_reads_as_written() -> None:
    view = fv.from_live({"name": FN, "kmsKeyName": "projects/p1/locations/us/keyRings/r/cryptoKeys/k", "serviceConfig": {
        "ingressSettings": "ALLOW_INTERNAL_ONLY", "serviceAccountEmail": "hook@p1.iam.gserviceaccount.com",
        "vpcConnector": "projects/p1/locations/us-central1/connectors/c", "vpcConnectorEgressSettings": "ALL_TRAFFIC",
        "environmentVariables": {"A": "1"}, "secretEnvironmentVariables": [{"key": "S", "secret": "s", "version": "1"}],
        "service": "projects/p1/locations/us-central1/services/hook"}})
    assert view == fv.FunctionView(
        name=FN, project="p1", location="us-central1", ingress="ALLOW_INTERNAL_ONLY",
        service_account="hook@p1.iam.gserviceaccount.com", vpc_connector="projects/p1/locations/us-central1/connectors/c",
        vpc_egress="ALL_TRAFFIC", encryption_key="projects/p1/locations/us/keyRings/r/cryptoKeys/k",
        env=(fv.EnvVar("", "A", "1"), fv.EnvVar("", "S", None)), run_service="projects/p1/locations/us-central1/services/hook",
        has_vpc_access=True, known=fv.ALL_FIELDS)
