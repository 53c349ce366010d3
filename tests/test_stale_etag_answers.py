"""A stale etag, however the API words it: the sources disagree, so Rampart must handle every answer.

AIP-154 (google.aip.dev/154, since aip-dev/google.aip.dev PR #705 and #837) says a mismatched etag
is ABORTED, HTTP 409, and IAM's setIamPolicy answers that; the same AIP said FAILED_PRECONDITION
(HTTP 400) before, and FAILED_PRECONDITION is what google/rpc/code.proto's own guidance suggests for
a failed precondition; HTTP's If-Match precondition (RFC 9110 section 13.1.1) fails 412. Cloud Run
v2's discovery document only says the etag "may be used to detect modification conflict during
updates". So for each answer, through the public entry points (the rule's `RULE.evaluate` and
`remediate` via `run_remediation`) and the real clients against the stand-in:
  * another writer did move the etag: Rampart reads again, re-plans and remediates;
  * nothing moved (a refusal that only looks like a conflict): a FAILED record, not a retry loop.
The stand-in's fault switch answers the chosen status after moving (or not) the etag.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from shared.actions import ActionContext, run_remediation
from shared.event import parse
from shared.model import Action, ActionRecord, Mode, Outcome
from tests.helpers import load_json

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
SLACKBOT = "projects/test-project-1234/locations/asia-northeast1/services/cloud-run-slack-bot"
EXFIL = "projects/some-project/locations/us-west1/services/cloudrun-exfil"
KMS_RING = "projects/test-project/locations/us/keyRings/test-keyring"
KMS_KEY = f"{KMS_RING}/cryptoKeys/test-key"
KMS_ROLE = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
KMS_AGENT = "serviceAccount:service-111111111111@gcp-sa-financialservices.iam.gserviceaccount.com"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"

# (HTTP status, google.rpc status): the answers a stale etag may get, with their sources above.
STALE_ETAG_ANSWERS = [
    pytest.param(409, "ABORTED", id="409-ABORTED-aip154"),
    pytest.param(400, "FAILED_PRECONDITION", id="400-FAILED_PRECONDITION-aip154-before-pr705"),
    pytest.param(412, "FAILED_PRECONDITION", id="412-http-if-match"),
]


def _remediate(rule_id: str, fixture: Path, action: Action) -> ActionRecord:
    mod = importlib.import_module(f"functions.{rule_id}")
    params = mod.Params()
    finding = mod.RULE.evaluate(parse(load_json(fixture)), params)
    assert finding is not None, f"{rule_id} did not fire on {fixture.name}"
    ctx = ActionContext(mode=Mode.ENFORCE, action=action, clock=lambda: 1795430000.0)
    return run_remediation(mod.remediate, finding, params, ctx)


def _service(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "labels": {"team": "bots"}, "template": {"containers": [{"image": IMAGE}]}, **fields}


def _writes(standin: Any, path: str) -> list[int]:
    return [r["status"] for r in standin.admin.requests(path=path) if r["method"] != "GET"]


# -- Run: a service write (PATCH .../services/S with the service's etag) ---------------------------

def _seed_open_ingress(standin: Any) -> None:
    standin.admin.seed({"services": [_service(SLACKBOT, ingress="INGRESS_TRAFFIC_ALL")]})
    standin.admin.clear_requests()


def _revert_ingress() -> ActionRecord:
    return _remediate("run_ingress_open", DATA / "run" / "slackbot-replaceservice-success.json", Action.REVERT)


@pytest.mark.parametrize(("status", "rpc_status"), STALE_ETAG_ANSWERS)
def test_service_write_on_a_moved_etag_is_replanned(standin: Any, status: int, rpc_status: str) -> None:
    _seed_open_ingress(standin)
    standin.admin.fault("PATCH", "cloud-run-slack-bot$", move_etag=True, status=status, rpc_status=rpc_status,
                        message="etag mismatch", count=1)
    rec = _revert_ingress()
    assert rec.outcome is Outcome.REMEDIATED and rec.attempts == 2, rec.reason
    assert _writes(standin, "cloud-run-slack-bot$") == [status, 200]
    state = standin.admin.state()
    assert next(s for s in state["services"] if s["name"] == SLACKBOT)["ingress"] != "INGRESS_TRAFFIC_ALL"


@pytest.mark.parametrize(("status", "rpc_status"), STALE_ETAG_ANSWERS)
def test_service_write_refused_with_no_concurrent_change_fails_once(standin: Any, status: int, rpc_status: str) -> None:
    _seed_open_ingress(standin)
    standin.admin.fault("PATCH", "cloud-run-slack-bot$", status=status, rpc_status=rpc_status,
                        message="etag mismatch", count=None)
    rec = _revert_ingress()
    assert rec.outcome is Outcome.FAILED
    assert "has not changed since it was read" in rec.reason
    assert _writes(standin, "cloud-run-slack-bot$") == [status]


# -- Run: an IAM write (POST .../services/S:setIamPolicy with the policy's etag) -------------------

@pytest.mark.parametrize(("status", "rpc_status"), STALE_ETAG_ANSWERS)
def test_run_policy_write_on_a_moved_etag_is_replanned(standin: Any, status: int, rpc_status: str) -> None:
    standin.admin.seed({"services": [_service(EXFIL)], "policies": {EXFIL: {"bindings": [
        {"role": "roles/run.invoker", "members": ["allUsers", "user:someone@company.com"]}]}}})
    standin.admin.clear_requests()
    standin.admin.fault("POST", ":setIamPolicy$", move_etag=True, status=status, rpc_status=rpc_status, count=1)
    rec = _remediate("run_public_invoker", DATA / "run" / "panther-gcp-cloud-run-set-iam-policy-allusers.json",
                     Action.REVERT)
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert _writes(standin, ":setIamPolicy$") == [status, 200]
    members = standin.admin.state()["policies"][EXFIL]["bindings"][0]["members"]
    assert members == ["user:someone@company.com"]


# -- KMS: an IAM write on a crypto key --------------------------------------------------------------

def _seed_key_without_agent(standin: Any) -> None:
    standin.admin.seed({
        "keyRings": [{"name": KMS_RING}],
        "cryptoKeys": [{"name": KMS_KEY}],
        "policies": {KMS_KEY: {"bindings": [{"role": KMS_ROLE, "members": ["user:alice@lotr.com"]}]}},
    })
    standin.admin.clear_requests()


def _restore_agent() -> ActionRecord:
    return _remediate("kms_agent_binding_removed", DATA / "kms" / "key_setiam_remove_agent.json", Action.RESTORE)


@pytest.mark.parametrize(("status", "rpc_status"), STALE_ETAG_ANSWERS)
def test_kms_policy_write_on_a_moved_etag_is_replanned(standin: Any, status: int, rpc_status: str) -> None:
    _seed_key_without_agent(standin)
    standin.admin.fault("POST", ":setIamPolicy$", move_etag=True, status=status, rpc_status=rpc_status, count=1)
    rec = _restore_agent()
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert _writes(standin, ":setIamPolicy$") == [status, 200]
    members = standin.admin.state()["policies"][KMS_KEY]["bindings"][0]["members"]
    assert KMS_AGENT in members and "user:alice@lotr.com" in members


@pytest.mark.parametrize(("status", "rpc_status"), STALE_ETAG_ANSWERS)
def test_kms_policy_write_refused_with_no_concurrent_change_fails_once(standin: Any, status: int, rpc_status: str) -> None:
    _seed_key_without_agent(standin)
    standin.admin.fault("POST", ":setIamPolicy$", status=status, rpc_status=rpc_status, count=None)
    rec = _restore_agent()
    assert rec.outcome is Outcome.FAILED
    assert "has not changed since it was read" in rec.reason
    assert _writes(standin, ":setIamPolicy$") == [status]
