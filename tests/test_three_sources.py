"""Every rule judges state, not entries: one state read from three sources (the audit entry,
a live API read through the real client library's types, a Cloud Asset Inventory record) gives
one finding. The cases are `tests/rules/<rule id>/sources/*.json` (each says where its shapes
come from); every rule has at least one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import functions
from shared.event import parse
from shared.model import Finding
from tests.helpers import RULE_FIXTURES, default_policy, load_json

POLICY = default_policy()
CASES = sorted(RULE_FIXTURES.glob("*/sources/*.json"))


def _live(kind: str, doc: dict[str, Any]) -> Any:
    """The live read as the client library returns it, so the live adapter meets the real types."""
    if kind == "iam.policy":
        from google.iam.v1 import policy_pb2
        from google.protobuf import json_format

        return doc["resource"], json_format.ParseDict(doc["policy"], policy_pb2.Policy())
    if kind in ("run.service", "run.traffic"):
        from google.cloud import run_v2

        return (run_v2.Service.from_json(json.dumps(doc)),)
    if kind == "orgpolicy.change":
        return (doc["name"], doc)
    if kind == "iam.denyPolicy":
        return (doc,)
    if kind == "run.workload":
        from google.cloud import run_v2

        message = run_v2.WorkerPool if "/workerPools/" in doc["name"] else run_v2.Job
        return (message.from_json(json.dumps(doc), ignore_unknown_fields=True),)
    if kind == "functions.function":
        return (doc,)  # Rampart reads functions over REST (no client library: shared.clients.functions_rest)
    from google.cloud import kms_v1

    message = {"kms.keyRing": kms_v1.KeyRing, "kms.cryptoKey": kms_v1.CryptoKey, "kms.keyPosture": kms_v1.CryptoKey,
               "kms.cryptoKeyVersion": kms_v1.CryptoKeyVersion}[kind]
    return (message.from_json(json.dumps(doc)),)


def _state(f: Finding | None) -> dict[str, Any]:
    """What a finding says about the resource (not who changed it: only an entry knows that)."""
    assert f is not None
    d = f.to_dict()
    for who in ("principal", "event_id", "method", "timestamp"):
        d.pop(who)
    return d


def test_every_rule_has_a_three_source_case() -> None:
    assert sorted({p.parent.parent.name for p in CASES}) == sorted(functions.RULE_IDS)


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.parent.name}/{p.stem}" for p in CASES])
def test_one_state_three_sources_one_finding(path: Path) -> None:
    rule = functions.rule(path.parent.parent.name)
    case = load_json(path)
    params = dataclasses.replace(POLICY.settings(rule.id).params, **case.get("params", {}))

    event = parse(load_json(path.parent.parent / case["entry"]))
    from_entry = rule.evaluate(event, params)
    assert from_entry is not None, f"{rule.id} found nothing in {case['entry']}"
    assert (from_entry.principal, from_entry.event_id) == (event.principal, event.event_id)  # the entry says who
    # A case leaves out a source that has no such record (deny policies are not Cloud Asset
    # Inventory resources; a Cloud Armor detach is a change, not a state) and says why in "about".
    assert "live" in case or "asset" in case or "No live" in case["about"], "say why a case has one source"
    if "live" in case:
        live_view = rule.kind.from_live(*_live(rule.kind.name, case["live"]))
        assert live_view is not None
        from_live = rule.check(live_view, params)
        assert _state(from_live) == _state(from_entry)
        assert from_live is not None and from_live.detail == from_entry.detail  # what remediation gets, too
    if "asset" in case:
        asset_view = rule.kind.from_asset(case["asset"])
        assert asset_view is not None
        from_asset = rule.check(asset_view, params)
        assert _state(from_asset) == _state(from_entry)
        assert from_asset is not None and from_asset.detail == from_entry.detail


@pytest.mark.parametrize("rule_id", functions.RULE_IDS)
def test_a_record_of_another_kind_is_no_finding(rule_id: str) -> None:
    """Adapters refuse records that are not their kind, rather than inventing a resource; a
    policy rule leaves alone the policies of resources it does not govern."""
    rule = functions.rule(rule_id)
    params = POLICY.settings(rule_id).params
    other = {"assetType": "compute.googleapis.com/Instance", "name": "//compute.googleapis.com/projects/p/zones/z/instances/i",
             "resource": {"data": {"name": "i", "status": "RUNNING"}}}
    if rule.kind.name != "iam.policy":
        assert rule.kind.from_asset(other) is None
        return
    view = rule.kind.from_asset({**other, "iamPolicy": {"bindings": [{"role": "roles/owner", "members": ["allUsers"]}]}})
    assert view is not None and view.grants() == [("roles/owner", "allUsers")]
    assert rule.check(view, params) is None
