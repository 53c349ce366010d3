"""The Resource Manager v3 stand-in (project, folder, organization IAM), through the real
resourcemanager_v3.ProjectsClient (REST)."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from google.iam.v1 import policy_pb2

from shared import clients
from tests.support.fixtures_standin import Standin

pytestmark = pytest.mark.integration

AGENT = "serviceAccount:service-1@gs-project-accounts.iam.gserviceaccount.com"
EDR = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


def test_project_policy_round_trip_with_a_conditional_binding_and_a_stale_etag(standin: Standin) -> None:
    standin.admin.seed({"projects": [{"name": "projects/phi-prod", "projectId": "phi-prod"}],
                        "policies": {"projects/phi-prod": {"bindings": [{"role": EDR, "members": [AGENT]}]}}})
    crm = clients.projects()
    pol = crm.get_iam_policy(request={"resource": "projects/phi-prod", "options": {"requested_policy_version": 3}})
    assert [(b.role, list(b.members)) for b in pol.bindings] == [(EDR, [AGENT])]
    stale = policy_pb2.Policy()
    stale.CopyFrom(pol)
    pol.version = 3
    pol.bindings.add(role="roles/run.admin", members=["user:x@gmail.com"],
                     condition={"title": "t", "expression": 'request.time < timestamp("2030-01-01T00:00:00Z")'})
    after = crm.set_iam_policy(request={"resource": "projects/phi-prod", "policy": pol})
    assert after.version == 3 and after.etag != pol.etag
    with pytest.raises(gexc.Conflict):
        crm.set_iam_policy(request={"resource": "projects/phi-prod", "policy": stale})
    with pytest.raises(gexc.NotFound):
        crm.get_iam_policy(request={"resource": "projects/nope"})
