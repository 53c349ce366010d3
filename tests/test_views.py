"""The view adapters: the same state from an entry, a live read and an asset record reads the
same, for the parts no rule fixture covers (traffic, IAM deltas, update masks)."""

from __future__ import annotations

import copy
from typing import Any

from shared.event import parse
from shared.views import iam, kms, run
from tests.helpers import RULE_FIXTURES, load_json

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
