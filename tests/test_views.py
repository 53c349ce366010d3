"""The view adapters: the same state from an entry, a live read and an asset record reads the
same, for the parts no rule fixture covers (traffic, IAM deltas, update masks)."""

from __future__ import annotations

import copy
import json
from typing import Any

from shared.event import parse
from shared.views import functions as functions_view
from shared.views import iam, kms, orgpolicy, run
from tests.helpers import ROOT, RULE_FIXTURES, load_json

NAME = "projects/test-project-1234/locations/asia-northeast1/services/cloud-run-slack-bot"


def _v1_entry(traffic: list[dict[str, Any]]) -> Any:
    doc = load_json(RULE_FIXTURES / "run_ingress_open" / "positive_v1_replace_all.json")
    doc["protoPayload"]["request"]["service"]["spec"]["traffic"] = traffic
    return parse(doc)


def test_traffic_split_reads_the_same_from_every_source() -> None:
    event = _v1_entry([{"revisionName": "cloud-run-slack-bot-00001-abc", "percent": 90},
                       {"latestRevision": True, "percent": 10}])
    entry = run.from_entry(event, run.locate(event) or "")
    live = run.from_live({"name": NAME, "traffic": [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "cloud-run-slack-bot-00001-abc", "percent": 90},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 10}]})
    asset = run.from_asset({"name": f"//run.googleapis.com/{NAME}", "assetType": run.ASSET_TYPE, "resource": {
        "location": "asia-northeast1", "data": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                            "metadata": {"name": "cloud-run-slack-bot", "namespace": "test-project-1234"},
                                            "spec": {"traffic": [
                                                {"revisionName": "cloud-run-slack-bot-00001-abc", "percent": 90},
                                                {"latestRevision": True, "percent": 10}]}}}})
    assert entry is not None and live is not None and asset is not None
    assert entry.traffic == live.traffic == asset.traffic
    assert entry.serving_revisions == ("cloud-run-slack-bot-00001-abc", "")
    assert entry.name == live.name == asset.name == NAME


def test_iam_delta_rebuilds_the_prior_policy_and_trusts_the_delta_over_an_abridged_body() -> None:
    doc = load_json(RULE_FIXTURES / "kms_public_member" / "positive_key_delta_allauthenticated.json")
    event = parse(doc)
    view = iam.from_entry(event, iam.locate(event) or "")
    assert view is not None and view.resource_type == "kms.cryptoKey"
    assert "allAuthenticatedUsers" in view.members("roles/cloudkms.cryptoKeyEncrypterDecrypter")  # added, body abridged
    assert view.prior is not None and all("allAuthenticatedUsers" not in b.members for b in view.prior)
    delta = iam.delta_of(event)
    assert delta is not None and delta.added == (("roles/cloudkms.cryptoKeyEncrypterDecrypter", "allAuthenticatedUsers"),)


def test_an_update_mask_without_the_field_states_nothing_about_it() -> None:
    doc = load_json(RULE_FIXTURES / "kms_version_disabled" / "positive_disabled.json")
    masked = copy.deepcopy(doc)
    masked["protoPayload"]["request"]["updateMask"] = "labels"
    name = "projects/test-project/locations/us/keyRings/test-keyring/cryptoKeys/test-key/cryptoKeyVersions/1"
    stated = kms.version_from_entry(parse(doc), name)
    unstated = kms.version_from_entry(parse(masked), name)
    assert stated is not None and stated.state == "DISABLED"
    assert unstated is not None and unstated.state == ""
    key = kms.key_from_entry(parse(load_json(RULE_FIXTURES / "kms_rotation" / "negative_update_labels_only.json")),
                             "projects/p/locations/us/keyRings/r/cryptoKeys/k")
    assert key is not None and "rotation_period" not in key.known


# ---------------------------------------------------------------------------
# Jobs, worker pools, functions, org policies: one state, three sources, one view.

JOB = "projects/p1/locations/us-central1/jobs/nightly"
POOL = "projects/p1/locations/us-central1/workerPools/queue"
TASK = {"serviceAccount": "nightly@p1.iam.gserviceaccount.com", "encryptionKey": "projects/p1/locations/us-central1/keyRings/r/cryptoKeys/k",
        "vpcAccess": {"connector": "projects/p1/locations/us-central1/connectors/c", "egress": "ALL_TRAFFIC"},
        "containers": [{"image": "us-docker.pkg.dev/p1/app/job:1", "env": [{"name": "DB_PASSWORD", "value": "x"}]}]}


def _entry(method: str, request: dict[str, Any], resource_name: str = "") -> Any:
    """A minimal Admin Activity entry in the shape of the corpus' Cloud Run entries."""
    return parse({"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "status": {},
                                   "authenticationInfo": {"principalEmail": "dev@example.com"},
                                   "serviceName": method.split(".v2.")[0].replace("google.cloud.", "") + ".googleapis.com",
                                   "methodName": method, "resourceName": resource_name, "request": request},
                  "insertId": "x1", "timestamp": "2026-11-23T09:30:00Z",
                  "logName": "projects/p1/logs/cloudaudit.googleapis.com%2Factivity", "resource": {"type": "x", "labels": {}}})


def test_job_and_worker_pool_read_the_same_from_every_source() -> None:
    from google.cloud import run_v2

    event = _entry("google.cloud.run.v2.Jobs.CreateJob", {"parent": "projects/p1/locations/us-central1", "jobId": "nightly",
                                                           "job": {"template": {"template": TASK}}})
    job = run.JOB.from_entry(event, run.JOB.locate(event) or "")
    live = run.JOB.from_live(run_v2.Job.from_json(json.dumps({"name": JOB, "template": {"template": TASK}})))
    asset = run.JOB.from_asset({"name": f"//run.googleapis.com/{JOB}", "assetType": "run.googleapis.com/Job",
                                "resource": {"data": {"name": JOB, "template": {"template": TASK}}}})
    assert job is not None and job == live == asset
    assert job.template.vpc_egress == "ALL_TRAFFIC" and job.template.env[0].plain_value == "x"

    event = _entry("google.cloud.run.v2.WorkerPools.UpdateWorkerPool", {"workerPool": {"name": POOL, "template": TASK}})
    pool = run.WORKER_POOL.from_entry(event, run.WORKER_POOL.locate(event) or "")
    live_pool = run.WORKER_POOL.from_live(run_v2.WorkerPool.from_json(json.dumps({"name": POOL, "template": TASK})))
    asset_pool = run.WORKER_POOL.from_asset({"name": f"//run.googleapis.com/{POOL}", "assetType": "run.googleapis.com/WorkerPool",
                                             "versionedResources": [{"version": "v2", "resource": {"name": POOL, "template": TASK}}]})
    assert pool is not None and pool == live_pool == asset_pool and pool.resource_type == "run.workerPool"
    assert pool.template == job.template


def test_function_reads_the_same_from_every_source() -> None:
    event = parse(load_json(ROOT / "tests" / "data" / "functions" / "mybazaar-updatefunction-8mcj5xd2plr.json"))
    name = functions_view.FUNCTION.locate(event) or ""
    entry = functions_view.FUNCTION.from_entry(event, name)
    body = {"name": name, "serviceConfig": {"availableCpu": "1", "availableMemory": "256Mi", "ingressSettings": "ALLOW_ALL",
                                           "service": "projects/mybazaar-c4881/locations/us-central1/services/loginwithpin"},
            "state": "ACTIVE", "environment": "GEN_2"}
    live = functions_view.FUNCTION.from_live(body)
    asset = functions_view.FUNCTION.from_asset({"name": f"//cloudfunctions.googleapis.com/{name}",
                                                "assetType": "cloudfunctions.googleapis.com/Function", "resource": {"data": body}})
    assert entry is not None and live is not None and asset is not None
    assert {"ingress", "service_account", "vpc", "env"} <= entry.known  # named by the update mask
    for field in ("name", "project", "location", "ingress", "service_account", "vpc_connector", "vpc_egress", "env"):
        assert getattr(entry, field) == getattr(live, field) == getattr(asset, field), field
    assert entry.ingress == "ALLOW_ALL"  # in the mask, unset in the body: the API default
    assert live.run_service.endswith("/services/loginwithpin")


def test_org_policy_reads_the_same_from_every_source() -> None:
    name = "projects/p1/policies/run.allowedIngress"
    policy = {"name": name, "spec": {"rules": [{"values": {"allowedValues": ["is:internal-and-cloud-load-balancing"]}}]}}
    event = _entry("google.cloud.orgpolicy.v2.OrgPolicy.UpdatePolicy", {"policy": policy}, name)
    entry = orgpolicy.ORG_POLICY.from_entry(event, orgpolicy.ORG_POLICY.locate(event) or "")
    live = orgpolicy.ORG_POLICY.from_live(policy)
    asset = orgpolicy.ORG_POLICY.from_asset({"name": f"//orgpolicy.googleapis.com/{name}", "assetType": orgpolicy.ASSET_TYPE,
                                             "resource": {"data": policy}})
    (v1,) = orgpolicy.org_policies_from_asset({"name": "//cloudresourcemanager.googleapis.com/projects/p1", "orgPolicy": [
        {"constraint": "constraints/run.allowedIngress", "listPolicy": {"allowedValues": ["is:internal-and-cloud-load-balancing"]}}]})
    assert entry is not None and entry == live == asset == v1
    assert entry.constraint == "run.allowedIngress" and entry.project == "p1" and not entry.enforced
