"""The sweep through the real google-cloud-asset, Run and KMS clients against the stand-in:
listing, retries, a scope it may not search, acting in enforce and dry-run, and `main.py scan`."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from infra.local.estate import estate
from shared.config import parse_policy
from shared.sweep import shard as shard_mod
from shared.sweep.lister import IAM, RESOURCES, AssetLister, ScopeNotSwept
from shared.sweep.local import run
from shared.sweep.shard import SweepContext
from tests.helpers import ROOT


@pytest.fixture
def estate_standin(standin: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from shared.sweep.lister import ASSET_ENDPOINT_ENV

    monkeypatch.setenv(ASSET_ENDPOINT_ENV, standin.url)
    seed, planted = estate(projects=8, services=120, keys=40, folders=2, violation_rate=0.08, seed=3)
    seed["policies"] = {seed["services"][5]["name"]: {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}}
    planted.append(("run_public_invoker", seed["services"][5]["name"]))
    standin.admin.seed(seed)
    standin.planted = sorted(planted)
    return standin


def lister(**kw: Any) -> AssetLister:
    return AssetLister(qps=50, page_size=kw.pop("page_size", 50), backoff_seconds=0.01, **kw)


def found(report: Any) -> list[tuple[str, str]]:
    return sorted((i["rule"], i["resource"]) for i in report.tally.items if i["outcome"] != "exempt")


def test_pages_through_a_scope_with_the_real_client(estate_standin: Any) -> None:
    ls = lister(page_size=40)
    pages = [p for p, _ in ls.pages("organizations/1000", RESOURCES)]
    total = sum(len(p.results) for p in pages)
    state = estate_standin.admin.state()
    assert total == sum(len(state[k]) for k in ("services", "keyRings", "cryptoKeys", "cryptoKeyVersions"))
    assert [p.index for p in pages] == list(range(len(pages))) and all(len(p.results) <= 40 for p in pages)
    assert ls.stats.calls[RESOURCES] == len(pages)
    assert all("versionedResources" in r for p in pages for r in p.results)
    iam = [p for p, _ in ls.pages("organizations/1000", IAM)]
    assert sum(len(p.results) for p in iam) == 1


def test_transient_errors_are_retried_and_a_denied_scope_is_reported(estate_standin: Any) -> None:
    admin = estate_standin.admin
    admin.fault("GET", ":searchAllResources", status=429, count=2)
    admin.fault("GET", ":searchAllIamPolicies", status=503, count=1)
    ls = lister()
    assert sum(len(p.results) for p, _ in ls.pages("projects/proj-00001", RESOURCES)) > 0
    assert list(ls.pages("projects/proj-00001", IAM))
    assert ls.stats.retries == 3
    admin.fault("GET", "folders/2001:search", status=403, count=None)
    with pytest.raises(ScopeNotSwept, match="Forbidden"):
        list(ls.pages("folders/2001", RESOURCES))
    admin.clear_faults()
    admin.fault("GET", ":searchAllResources", status=503, count=None)
    with pytest.raises(ScopeNotSwept, match="gave up after 3 attempts"):
        list(lister(max_retries=2).pages("projects/proj-00001", RESOURCES))


def test_a_dry_run_sweep_finds_every_planted_violation_and_writes_nothing(estate_standin: Any) -> None:
    ctx = SweepContext(loaded=parse_policy("version: 1"), alert=False)
    rep = run(("organizations/1000",), ctx, lister=lister(), workers=2)
    assert rep.complete and rep.max_mode == "dry-run"
    assert found(rep) == estate_standin.planted
    assert all(i["outcome"] == "dry_run" and i["changes"] for i in rep.tally.items)
    assert not [r for r in estate_standin.admin.requests() if r["method"] != "GET"]
    assert rep.tally.seen["run.googleapis.com/Service"] == 120
    assert sum(rep.tally.violating.values()) == len(estate_standin.planted)


def test_an_enforcing_sweep_fixes_them_and_a_second_sweep_finds_nothing(estate_standin: Any) -> None:
    ctx = SweepContext(loaded=parse_policy("sweep: {max_mode: enforce}"), alert=False)
    rep = run(("organizations/1000",), ctx, lister=lister(), workers=2)
    assert rep.complete and found(rep) == estate_standin.planted
    assert rep.tally.actions == len(estate_standin.planted)
    again = run(("organizations/1000",), ctx, lister=lister(), workers=2)
    assert again.complete and found(again) == [] and again.tally.actions == 0


def test_part_of_the_scope_denied_is_not_swept_and_never_compliant(estate_standin: Any) -> None:
    estate_standin.admin.fault("GET", "folders/2001:search", status=403, count=None)
    ctx = SweepContext(loaded=parse_policy("version: 1"), alert=False)
    rep = run(("folders/2000", "folders/2001"), ctx, lister=lister(), workers=1)
    assert not rep.complete
    assert {(n["scope"], n["kind"]) for n in rep.not_swept} == {("folders/2001", RESOURCES), ("folders/2001", IAM)}
    assert not [k for k in rep.tally.compliant if k.split("|")[0] in {f"proj-{i:05d}" for i in range(1, 8, 2)}]


def test_a_record_without_data_is_read_in_full(estate_standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.sweep.lister as lister_mod

    monkeypatch.setattr(lister_mod, "READ_MASK", "name,assetType,updateTime")
    ctx = SweepContext(loaded=parse_policy("version: 1"), alert=False, rules=("run_ingress_open",))
    rep = run(("projects/proj-00003",), ctx, lister=lister(), workers=1)
    assert rep.tally.reads == rep.tally.seen["run.googleapis.com/Service"] == 15
    assert found(rep) == [p for p in estate_standin.planted if p[0] == "run_ingress_open" and "/proj-00003/" in p[1]]


KEY = "projects/proj-00001/locations/us-central1/keyRings/r/cryptoKeys/k"
DEFAULT_SA = "123456789012-compute@developer.gserviceaccount.com"


@pytest.mark.parametrize("collection", ["jobs", "workerPools"])
def test_a_job_or_worker_pool_without_data_is_read_in_full(standin: Any, collection: str) -> None:
    """Run jobs and worker pools are read live (run.jobs.get, run.workerPools.get) when Asset
    Inventory returns their record without data, and judged by the workload rule."""
    name = f"projects/proj-00001/locations/us-central1/{collection}/nightly"
    ok = f"projects/proj-00001/locations/us-central1/{collection}/ok"

    def body(sa: str) -> dict[str, Any]:
        inner = {"serviceAccount": sa, "encryptionKey": KEY}
        return {"template": {"template": inner} if collection == "jobs" else inner}  # a job's task template

    standin.admin.seed({collection: [{"name": name, **body(DEFAULT_SA)},
                                     {"name": ok, **body("runner@proj-00001.iam.gserviceaccount.com")}]})
    asset_type = "run.googleapis.com/Job" if collection == "jobs" else "run.googleapis.com/WorkerPool"
    results = [{"name": f"//run.googleapis.com/{n}", "assetType": asset_type} for n in (name, ok)]
    ctx = SweepContext(loaded=parse_policy("version: 1"), alert=False, rules=("run_workload_noncompliant",))
    tally = shard_mod.run_shard(shard_mod.Shard("s", "projects/proj-00001", RESOURCES, 0, results), ctx)
    assert tally.reads == 2 and not tally.skipped
    assert [(i["rule"], i["resource"]) for i in tally.items] == [("run_workload_noncompliant", name)]
    assert tally.compliant and not any(k.endswith(name) for k in tally.compliant)
    reads = [r["path"] for r in standin.admin.requests("GET") if f"/{collection}/" in r["path"]]
    assert sorted(reads) == sorted(f"/v2/{n}" for n in (name, ok))


def test_a_resource_deleted_since_the_listing_is_not_a_violation(estate_standin: Any) -> None:
    name = next(r for rule, r in estate_standin.planted if rule == "run_ingress_open")
    ls = lister()
    shard = next(p for p, _ in ls.pages(f"projects/{name.split('/')[1]}", RESOURCES))
    estate_standin.admin.mutate(name, delete=True)
    loaded = parse_policy("sweep: {max_mode: enforce}")
    tally = shard_mod.run_shard(shard_mod.Shard("s", "x", RESOURCES, 0, shard.results), SweepContext(loaded=loaded, alert=False))
    assert tally.outcomes["not_found"] == 1 and not [i for i in tally.items if i["resource"] == name]


# -- the CLI, as a user runs it ---------------------------------------------------------------


def scan(url: str, *args: str, policy: str = "sweep: {qps: 6}") -> subprocess.CompletedProcess[str]:
    import os
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(policy)
    env = {**os.environ, "RAMPART_ASSET_ENDPOINT": url, "RAMPART_RUN_ENDPOINT": url, "RAMPART_KMS_ENDPOINT": url}
    try:
        return subprocess.run([sys.executable, "main.py", "scan", "--policy", f.name, "--no-alert", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        Path(f.name).unlink()


def test_scan_summary_json_report_and_exit_codes(estate_standin: Any, tmp_path: Path) -> None:
    url = estate_standin.url
    p = scan(url, "--scope", "organizations/1000")
    assert p.returncode == 0, p.stderr
    assert "complete" in p.stdout and "run.googleapis.com/Service" in p.stdout and "run_ingress_open" in p.stdout
    assert "actions taken: 0" in p.stdout
    assert "rampart.remediation" in p.stderr  # each record's log line, off stdout
    p = scan(url, "--scope", "organizations/1000", "--json", "--fail-on", "critical", "--rule", "run_ingress_open")
    assert p.returncode == 0  # run_ingress_open is high: below the bar
    rep = json.loads(p.stdout)
    assert set(rep["violations"]) == {"run_ingress_open"} and rep["complete"]
    assert rep["seen"] == {"run.googleapis.com/Service": 120} and rep["api_calls"]["search_all_iam_policies"] == 0
    html_file = tmp_path / "r.html"
    p = scan(url, "--scope", "organizations/1000", "--fail-on", "high", "--report", str(html_file))
    assert p.returncode == 3

    class Rows(HTMLParser):
        rows = 0

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            self.rows += tag == "tr"

    parser = Rows()
    parser.feed(html_file.read_text())
    assert parser.rows > len(estate_standin.planted)
    estate_standin.admin.fault("GET", "folders/2001:search", status=403, count=None)
    p = scan(url, "--scope", "folders/2000", "--scope", "folders/2001")
    assert p.returncode == 1 and "NOT SWEPT: folders/2001" in p.stdout
    assert scan(url).returncode == 2  # no scope anywhere
    assert scan(url, "--scope", "org/1").returncode == 2
    assert scan(url, "--scope", "folders/1", "--rule", "nope").returncode == 2
    assert scan(url, "--scope", "folders/1", policy="sweep: {max_mode: loud}").returncode == 1
