"""The sweep beyond Run services and KMS, end to end against the stand-in through the real clients:
a Cloud Run function (searchAllResources, cloudfunctions.googleapis.com/Function), a project's IAM
policy (searchAllIamPolicies, cloudresourcemanager.googleapis.com/Project) and an org policy
(searchAllResources, orgpolicy.googleapis.com/Policy), each seeded violating; dry-run finds all
three and writes nothing, enforce fixes what the policy lets it (re-reading live state through
the event path's remediations), and `main.py scan` finds the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from infra.local.estate import compliant_function, estate
from shared.config import parse_policy
from shared.sweep.lister import ASSET_ENDPOINT_ENV, AssetLister
from shared.sweep.local import run
from shared.sweep.shard import SweepContext
from tests.helpers import ROOT

P0, P1 = "proj-00000", "proj-00001"
FN = f"projects/{P0}/locations/us-central1/functions/checkout"
ORG_POLICY = f"projects/{P0}/policies/run.allowedIngress"
OUTSIDER = "user:mallory@gmail.com"
BASELINE = {"rules": [{"values": {"allowedValues": ["internal-and-cloud-load-balancing"]}}]}
ENFORCE = ("sweep: {max_mode: enforce}\n"
           "rules:\n"
           "  org_policy_relaxed:\n"
           "    params:\n"
           "      baseline:\n"
           "        run.allowedIngress: " + json.dumps(BASELINE) + "\n")


@pytest.fixture
def seeded(standin: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(ASSET_ENDPOINT_ENV, standin.url)
    seed, planted = estate(projects=2, services=4, keys=2, folders=1, violation_rate=0.0)
    assert planted == []
    bad_fn = compliant_function(FN, P0, "us-central1")
    bad_fn["serviceConfig"] = {**bad_fn["serviceConfig"], "ingressSettings": "ALLOW_ALL"}
    good_fn = compliant_function(f"projects/{P1}/locations/us-east1/functions/ok", P1, "us-east1")
    seed["functions"] = [bad_fn, good_fn]
    seed["orgPolicies"] = [{"name": ORG_POLICY, "spec": {"rules": [{"allowAll": True}]}},
                           {"name": f"projects/{P1}/policies/run.allowedIngress", "spec": BASELINE}]
    seed["policies"] = {
        f"projects/{P1}": {"bindings": [{"role": "roles/viewer", "members": [OUTSIDER]}]},
        f"projects/{P0}": {"bindings": [{"role": "roles/viewer", "members": ["group:ops@example.com"]}]},
    }
    standin.admin.seed(seed)
    standin.planted = sorted([("function_ingress_open", FN), ("iam_outsider_member", f"projects/{P1}"),
                              ("org_policy_relaxed", ORG_POLICY)])
    return standin


TRUSTED = "trusted_domains: [example.com]\n"


def found(rep: Any) -> list[tuple[str, str]]:
    return sorted((i["rule"], i["resource"]) for i in rep.tally.items)


def lister() -> AssetLister:
    return AssetLister(qps=50, page_size=3, backoff_seconds=0.01)


def test_a_dry_run_sweep_finds_the_function_the_project_policy_and_the_org_policy(seeded: Any) -> None:
    ctx = SweepContext(loaded=parse_policy(TRUSTED), alert=False)
    rep = run(("organizations/1000",), ctx, lister=lister(), workers=2)
    assert rep.complete and rep.max_mode == "dry-run", rep.tally.errors
    assert found(rep) == seeded.planted
    # Nothing certain to restore the org policy to (no baseline declared): alerted, for a human.
    assert {i["rule"]: i["outcome"] for i in rep.tally.items} == {
        "function_ingress_open": "dry_run", "iam_outsider_member": "dry_run", "org_policy_relaxed": "alerted"}
    assert not [r for r in seeded.admin.requests() if r["method"] not in ("GET",) and ":getIamPolicy" not in r["path"]]
    assert rep.tally.seen["cloudfunctions.googleapis.com/Function"] == 2
    assert rep.tally.seen["orgpolicy.googleapis.com/Policy"] == 2
    assert rep.tally.seen["iam:cloudresourcemanager.googleapis.com/Project"] == 2
    assert not rep.tally.skipped, rep.tally.skipped
    # The compliant ones were judged, not skipped: each rule counted them compliant.
    assert rep.tally.compliant[f"{P0}|iam_outsider_member"] == 1 and rep.tally.compliant[f"{P1}|org_policy_relaxed"] == 1
    assert rep.tally.compliant[f"{P1}|function_ingress_open"] == 1


def test_an_enforcing_sweep_fixes_them_through_the_event_remediations(seeded: Any) -> None:
    ctx = SweepContext(loaded=parse_policy(TRUSTED + ENFORCE), alert=False)
    rep = run(("organizations/1000",), ctx, lister=lister(), workers=2)
    assert rep.complete, rep.tally.errors
    assert {(i["rule"], i["resource"], i["outcome"]) for i in rep.tally.items} == {(r, n, "remediated") for r, n in seeded.planted}
    state = seeded.admin.state()
    fn = next(f for f in state["functions"] if f["name"] == FN)
    assert fn["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_AND_GCLB"
    assert OUTSIDER not in json.dumps(state["policies"][f"projects/{P1}"])
    org = next(p for p in state["orgPolicies"] if p["name"] == ORG_POLICY)
    assert org["spec"]["rules"] == BASELINE["rules"]
    again = run(("organizations/1000",), ctx, lister=lister(), workers=2)
    assert again.complete and found(again) == [] and again.tally.actions == 0


def test_enforce_without_a_baseline_alerts_the_org_policy_and_fixes_the_rest(seeded: Any) -> None:
    ctx = SweepContext(loaded=parse_policy(TRUSTED + "sweep: {max_mode: enforce}"), alert=False)
    rep = run(("projects/" + P0, "projects/" + P1), ctx, lister=lister(), workers=1)
    outcomes = {i["rule"]: i["outcome"] for i in rep.tally.items}
    assert outcomes == {"function_ingress_open": "remediated", "iam_outsider_member": "remediated",
                        "org_policy_relaxed": "alerted"}
    org = next(p for p in seeded.admin.state()["orgPolicies"] if p["name"] == ORG_POLICY)
    assert org["spec"]["rules"] == [{"allowAll": True}]  # nothing certain to restore: a human decides


def test_a_policy_in_alert_mode_is_never_raised_by_an_enforcing_sweep(seeded: Any) -> None:
    policy = TRUSTED + ENFORCE + "  iam_outsider_member: {mode: alert}\n"
    rep = run(("organizations/1000",), SweepContext(loaded=parse_policy(policy), alert=False), lister=lister(), workers=1)
    item = next(i for i in rep.tally.items if i["rule"] == "iam_outsider_member")
    assert item["outcome"] == "alerted" and OUTSIDER in json.dumps(seeded.admin.state()["policies"][f"projects/{P1}"])


def test_records_without_data_are_read_live(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.sweep.lister as lister_mod

    monkeypatch.setattr(lister_mod, "READ_MASK", "name,assetType,updateTime")
    ctx = SweepContext(loaded=parse_policy(TRUSTED), alert=False, rules=("function_ingress_open", "org_policy_relaxed"))
    rep = run(("organizations/1000",), ctx, lister=lister(), workers=1)
    assert rep.tally.reads == 4 and not rep.tally.skipped
    assert found(rep) == [p for p in seeded.planted if p[0] != "iam_outsider_member"]


def test_scan_finds_all_three(seeded: Any) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(TRUSTED + "sweep: {qps: 6}\n")
    url = seeded.url
    env = {**os.environ, ASSET_ENDPOINT_ENV: url, "RAMPART_RUN_ENDPOINT": url, "RAMPART_KMS_ENDPOINT": url,
           "RAMPART_FUNCTIONS_ENDPOINT": url, "RAMPART_RESOURCE_MANAGER_ENDPOINT": url, "RAMPART_ORGPOLICY_ENDPOINT": url}
    try:
        p = subprocess.run([sys.executable, "main.py", "scan", "--policy", f.name, "--no-alert", "--json",
                            "--scope", "organizations/1000", "--fail-on", "critical"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    finally:
        Path(f.name).unlink()
    assert p.returncode == 3, p.stderr[-2000:]  # iam_outsider_member and org_policy_relaxed are critical
    rep = json.loads(p.stdout)
    assert rep["complete"] and rep["max_mode"] == "dry-run"
    assert sorted((i["rule"], i["resource"]) for i in rep["items"]) == seeded.planted
