"""The posture sweep, unit level: records, rate limit, mode cap, rules on records, dedupe, report.
No server: rules are pure, and the report is parsed with html.parser."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from infra.local.estate import compliant_function, compliant_service
from shared.alerts.dedupe import BeginRequest, begin_transition
from shared.config import parse_policy
from shared.model import Mode
from shared.sweep import evaluate as ev
from shared.sweep.lister import RateLimiter, check_scope
from shared.sweep.local import SweepReport
from shared.sweep.records import (
    AssetRecord,
    IamRecord,
    Skipped,
    parse_iam,
    parse_resource,
    timestamp_seconds,
)
from shared.sweep.report import summary, to_html
from shared.sweep.shard import Tally, capped

SVC = "projects/proj-00001/locations/us-central1/services/api"
KEY = "projects/proj-00001/locations/us-central1/keyRings/ring/cryptoKeys/k0"


def svc_result(**overrides: Any) -> dict[str, Any]:
    data = compliant_service(SVC, "proj-00001", "us-central1")
    data.update(overrides)
    return {"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service",
            "updateTime": "2026-11-01T10:00:00.123456789Z", "versionedResources": [{"version": "v2", "resource": data}]}


@pytest.fixture(scope="module")
def loaded() -> Any:
    return parse_policy("sweep: {max_mode: enforce}")


# -- records ----------------------------------------------------------------------------------


def test_a_service_result_becomes_a_typed_record() -> None:
    rec = parse_resource(svc_result())
    assert isinstance(rec, AssetRecord)
    assert (rec.name, rec.project, rec.location, rec.version) == (SVC, "proj-00001", "us-central1", "v2")
    assert rec.data is not None and rec.data["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert timestamp_seconds(rec.update_time) == pytest.approx(
        dt.datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=dt.UTC).timestamp())


@pytest.mark.parametrize(("raw", "reason"), [
    ("not a dict", "result is not an object (str)"),
    ({"name": f"//run.googleapis.com/{SVC}"}, "missing assetType"),
    ({"name": f"//run.googleapis.com/{SVC}", "assetType": "compute.googleapis.com/Instance"},
     "name not under //compute.googleapis.com/"),
    ({"name": f"//run.googleapis.com/{SVC}", "assetType": "Service"}, "asset type is not SERVICE.googleapis.com/Kind"),
    ({"assetType": "run.googleapis.com/Service"}, "missing name"),
    ({"name": 7, "assetType": "run.googleapis.com/Service"}, "missing name"),
    ({"name": f"//cloudkms.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service"}, "name not under //run.googleapis.com/"),
    ({"name": "//run.googleapis.com/projects/p/services/x", "assetType": "run.googleapis.com/Service"},
     "name does not match its asset type"),
    ({"name": "//run.googleapis.com/" + "a" * 2000, "assetType": "run.googleapis.com/Service"}, "name too long"),
    ({"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service", "updateTime": "yesterday"},
     "updateTime is not a timestamp"),
    ({"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service", "versionedResources": {}},
     "versionedResources is not a list"),
    ({"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service", "versionedResources": [{"x": 1}]},
     "versionedResources holds no resource"),
    ({"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service",
      "versionedResources": [{"version": "v2", "resource": {"name": "projects/other/locations/l/services/s"}}]},
     "versionedResources names another resource"),
])
def test_odd_records_are_skipped_with_a_reason(raw: Any, reason: str) -> None:
    out = parse_resource(raw)
    assert isinstance(out, Skipped) and out.reason == reason


def test_odd_iam_records_are_skipped_with_a_reason() -> None:
    base = {"resource": f"//cloudkms.googleapis.com/{KEY}", "assetType": "cloudkms.googleapis.com/CryptoKey"}
    assert parse_iam({**base, "policy": {"bindings": "all"}}) == Skipped("policy.bindings is not a list of objects",
                                                                        "cloudkms.googleapis.com/CryptoKey")
    assert isinstance(parse_iam(base), Skipped)
    assert parse_iam({**base, "assetType": "cloudkms.googleapis.com/CryptoKeyVersion", "policy": {}}) == Skipped(
        "policy.bindings is not a list of objects", "cloudkms.googleapis.com/CryptoKeyVersion")
    ok = parse_iam({**base, "policy": {"bindings": [], "etag": "BwX"}})
    assert isinstance(ok, IamRecord) and ok.etag == "BwX"


def test_scopes_are_checked() -> None:
    for good in ("projects/proj-00001", "projects/123456", "folders/12", "organizations/9"):
        assert check_scope(good) == good
    for bad in ("proj-1", "projects/", "folders/x", "organizations/9/x", "projects/a:b"):
        with pytest.raises(ValueError, match="expected projects/PROJECT_ID"):
            check_scope(bad)


# -- rate limit and mode cap -------------------------------------------------------------------


def test_rate_limiter_spreads_calls_at_the_configured_qps() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    rl = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(9):
        rl.wait()
    assert now[0] == pytest.approx(102.0)  # 9 calls at 4/s: the 9th at +2 s
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


def test_the_sweep_never_acts_more_strongly_than_max_mode(loaded: Any) -> None:
    s = loaded.settings("run_ingress_open")
    assert s.mode is Mode.ENFORCE
    assert capped(s, Mode.DRY_RUN).mode is Mode.DRY_RUN
    assert capped(s, Mode.ENFORCE) is s
    alert_only = dataclasses.replace(s, mode=Mode.ALERT)
    assert capped(alert_only, Mode.DRY_RUN).mode is Mode.ALERT
    assert parse_policy("version: 1").policy.sweep.max_mode is Mode.DRY_RUN


# -- rules on records --------------------------------------------------------------------------


def test_a_compliant_service_passes_every_rule(loaded: Any) -> None:
    rec = parse_resource(svc_result())
    assert isinstance(rec, AssetRecord)
    verdicts = ev.evaluate_asset(rec, loaded)
    import functions

    judged = {v.rule for v in verdicts}
    assert judged <= {r.id for r in functions.rules_for_asset("run.googleapis.com/Service")}
    assert {"run_ingress_open", "run_cmek_missing", "run_vpc_egress", "run_default_service_account"} <= judged
    assert all(v.finding is None for v in verdicts)


def test_violations_in_a_record_are_found_with_the_event_rules_identity(loaded: Any) -> None:
    rec = parse_resource(svc_result(ingress="INGRESS_TRAFFIC_ALL", invokerIamDisabled=True))
    assert isinstance(rec, AssetRecord)
    found = {v.rule: v.finding for v in ev.evaluate_asset(rec, loaded) if v.finding}
    assert set(found) == {"run_ingress_open", "run_invoker_iam_disabled"}
    f = found["run_ingress_open"]
    assert (f.severity.value, f.action.value, f.resource, f.project) == ("high", "revert", SVC, "proj-00001")
    assert f.method == ev.SWEEP_METHOD and f.timestamp == rec.update_time
    assert f.event_id == ev.violation_id("run_ingress_open", SVC, rec.update_time)
    again = {v.rule: v.finding for v in ev.evaluate_asset(rec, loaded) if v.finding}
    assert again["run_ingress_open"].event_id == f.event_id  # the same violation: the same dedupe id
    later = dataclasses.replace(rec, update_time="2026-11-02T00:00:00Z")
    assert {v.rule: v.finding for v in ev.evaluate_asset(later, loaded) if v.finding}["run_ingress_open"].event_id != f.event_id


def test_kms_records_and_iam_policies(loaded: Any) -> None:
    version = parse_resource({"name": f"//cloudkms.googleapis.com/{KEY}/cryptoKeyVersions/2",
                              "assetType": "cloudkms.googleapis.com/CryptoKeyVersion",
                              "versionedResources": [{"version": "v1", "resource": {"state": "DISABLED"}}]})
    assert isinstance(version, AssetRecord)
    assert [v.rule for v in ev.evaluate_asset(version, loaded) if v.finding] == ["kms_version_disabled"]
    scheduled = dataclasses.replace(version, data={"state": "DESTROY_SCHEDULED", "destroyTime": "2026-12-30T00:00:00Z"})
    assert [v.rule for v in ev.evaluate_asset(scheduled, loaded) if v.finding] == ["kms_version_destroy_scheduled"]
    key = dataclasses.replace(version, asset_type="cloudkms.googleapis.com/CryptoKey", name=KEY, data={"rotationPeriod": "31536000s"})
    assert [v.rule for v in ev.evaluate_asset(key, loaded) if v.finding] == ["kms_rotation"]
    ring = dataclasses.replace(key, asset_type="cloudkms.googleapis.com/KeyRing", name="projects/p1-abcd/locations/europe-west1/keyRings/r",
                               location="europe-west1", data={})
    assert [v.rule for v in ev.evaluate_asset(ring, loaded) if v.finding] == ["kms_unapproved_location"]
    iam = parse_iam({"resource": f"//cloudkms.googleapis.com/{KEY}", "assetType": "cloudkms.googleapis.com/CryptoKey",
                     "policy": {"etag": "BwA", "bindings": [{"role": "roles/cloudkms.cryptoKeyDecrypter", "members": ["allUsers"]}]}})
    assert isinstance(iam, IamRecord)
    assert [v.rule for v in ev.evaluate_iam(iam, loaded) if v.finding] == ["kms_public_member"]
    public = parse_iam({"resource": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service",
                        "policy": {"bindings": [{"role": "roles/run.invoker", "members": ["allAuthenticatedUsers"]}]}})
    assert isinstance(public, IamRecord)
    assert [(v.rule, v.finding.resource) for v in ev.evaluate_iam(public, loaded) if v.finding] == [("run_public_invoker", SVC)]


FN = "projects/proj-00001/locations/us-central1/functions/checkout"
TRUSTING = parse_policy("trusted_domains: [example.com]")


def fn_result(**config: Any) -> dict[str, Any]:
    data = compliant_function(FN, "proj-00001", "us-central1")
    data["serviceConfig"] = {**data["serviceConfig"], **config}
    return {"name": f"//cloudfunctions.googleapis.com/{FN}", "assetType": "cloudfunctions.googleapis.com/Function",
            "location": "us-central1", "updateTime": "2026-11-30T10:00:00Z",
            "versionedResources": [{"version": "v2", "resource": data}]}


def found_rules(verdicts: list[ev.Verdict]) -> list[str]:
    return [v.rule for v in verdicts if v.finding is not None]


def test_function_records(loaded: Any) -> None:
    rec = parse_resource(fn_result())
    assert isinstance(rec, AssetRecord) and (rec.project, rec.location) == ("proj-00001", "us-central1")
    verdicts = ev.evaluate_asset(rec, loaded)
    assert found_rules(verdicts) == [] and {v.rule for v in verdicts} >= {"function_ingress_open", "function_cmek_missing"}
    bad = parse_resource(fn_result(ingressSettings="ALLOW_ALL"))
    assert isinstance(bad, AssetRecord)
    assert found_rules(ev.evaluate_asset(bad, loaded)) == ["function_ingress_open"]
    first_gen = parse_resource({**fn_result(), "versionedResources": [{"version": "v1", "resource": {"name": FN, "runtime": "python39"}}]})
    assert isinstance(first_gen, AssetRecord) and found_rules(ev.evaluate_asset(first_gen, loaded)) == []  # not a v2 Function
    assert parse_resource({**fn_result(), "name": f"//cloudfunctions.googleapis.com/projects/p/functions/{FN}"}) == Skipped(
        "name does not match its asset type", "cloudfunctions.googleapis.com/Function")


def org_policy_result(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"//orgpolicy.googleapis.com/{name}", "assetType": "orgpolicy.googleapis.com/Policy", "location": "global",
            "versionedResources": [{"version": "v2", "resource": {"name": name, "spec": {**spec, "updateTime": "2026-11-30T10:00:00Z"}}}]}


def test_org_policy_records(loaded: Any) -> None:
    relaxed = parse_resource(org_policy_result("organizations/123/policies/run.allowedIngress", {"rules": [{"allowAll": True}]}))
    assert isinstance(relaxed, AssetRecord) and (relaxed.project, relaxed.location) == ("organizations/123", "global")
    [v] = ev.evaluate_asset(relaxed, loaded)
    assert v.finding is not None and v.finding.observed["how"] == ["allows all values"] and v.project == "organizations/123"
    on_project = parse_resource(org_policy_result("projects/proj-00001/policies/cloudkms.disableBeforeDestroy",
                                                  {"rules": [{"enforce": True}]}))
    assert isinstance(on_project, AssetRecord) and on_project.project == "proj-00001"
    assert found_rules(ev.evaluate_asset(on_project, loaded)) == []
    # A guardrail with values is a state, not a change: compliant, unless it is not the declared baseline.
    values = parse_resource(org_policy_result("folders/7/policies/gcp.resourceLocations",
                                              {"rules": [{"values": {"allowedValues": ["in:us-locations"]}}]}))
    assert isinstance(values, AssetRecord) and found_rules(ev.evaluate_asset(values, loaded)) == []
    eu = parse_policy("rules: {org_policy_relaxed: {params: {baseline: "
                      "{gcp.resourceLocations: {rules: [{values: {allowedValues: ['in:eu-locations']}}]}}}}}")
    assert found_rules(ev.evaluate_asset(values, eu)) == ["org_policy_relaxed"]
    for name in ("projects/p/locations/global/policies/c", "billingAccounts/1/policies/c", "folders/abc/policies/c",
                 "projects/proj-00001/policies/c/extra"):
        assert parse_resource(org_policy_result(name, {})) == Skipped("name does not match its asset type",
                                                                       "orgpolicy.googleapis.com/Policy"), name


def hierarchy_result(name: str, members: list[str], role: str = "roles/viewer") -> dict[str, Any]:
    kind = {"projects": "Project", "folders": "Folder", "organizations": "Organization"}[name.split("/")[0]]
    return {"resource": f"//cloudresourcemanager.googleapis.com/{name}",
            "assetType": f"cloudresourcemanager.googleapis.com/{kind}", "policy": {"etag": "BwX", "bindings": [
                {"role": role, "members": members}]}}


def test_project_folder_and_organization_iam_records() -> None:
    for name, project in (("projects/proj-00001", "proj-00001"), ("projects/123456789012", "123456789012"),
                          ("folders/77", "folders/77"), ("organizations/1000", "organizations/1000")):
        bad = parse_iam(hierarchy_result(name, ["user:mallory@gmail.com", "group:ops@example.com"]))
        assert isinstance(bad, IamRecord) and (bad.name, bad.project, bad.location) == (name, project, "global")
        verdicts = ev.evaluate_iam(bad, TRUSTING)
        [f] = [v.finding for v in verdicts if v.finding is not None]
        assert (f.rule, f.resource, f.observed["outsiders"][0]["member"]) == ("iam_outsider_member", name, "user:mallory@gmail.com")
        good = parse_iam(hierarchy_result(name, ["group:ops@example.com"]))
        assert isinstance(good, IamRecord) and found_rules(ev.evaluate_iam(good, TRUSTING)) == []
    odd = {"projects/proj-00001/extra": "cloudresourcemanager.googleapis.com/Project",
           "projects/p": "cloudresourcemanager.googleapis.com/Project",  # too short for a project id
           "folders/abc": "cloudresourcemanager.googleapis.com/Folder",
           "projects/proj-00001": "cloudresourcemanager.googleapis.com/Folder"}
    for name, kind in odd.items():
        raw = {**hierarchy_result("folders/1", []), "resource": f"//cloudresourcemanager.googleapis.com/{name}", "assetType": kind}
        assert parse_iam(raw) == Skipped("name does not match its asset type", kind), name


def test_a_service_agent_missing_above_the_key_is_found_where_the_policy_requires_it() -> None:
    agent = "serviceAccount:service-1@gs-project-accounts.iam.gserviceaccount.com"
    rec = parse_iam(hierarchy_result("projects/proj-00001", ["group:ops@example.com"]))
    assert isinstance(rec, IamRecord)
    assert found_rules(ev.evaluate_iam(rec, TRUSTING)) == []  # a record knows no prior policy: nothing lost that it can see
    requiring = parse_policy(json.dumps({"trusted_domains": ["example.com"], "rules": {"iam_agent_binding_removed": {
        "params": {"required": {"projects/proj-*": [agent]}}}}}))
    [f] = [v.finding for v in ev.evaluate_iam(rec, requiring) if v.finding is not None]
    assert f.rule == "iam_agent_binding_removed" and f.observed["missing_members"] == [agent]
    holding = parse_iam(hierarchy_result("projects/proj-00001", [agent], "roles/cloudkms.cryptoKeyEncrypterDecrypter"))
    assert isinstance(holding, IamRecord) and found_rules(ev.evaluate_iam(holding, requiring)) == []


def test_a_record_of_a_type_with_no_live_reader_and_no_data_is_skipped_with_a_reason(
        loaded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.sweep import records
    from shared.sweep.shard import Shard, SweepContext, run_shard

    # Every type the sweep lists has a reader today; one added to the listing without a reader
    # must be skipped with the reason, never counted compliant.
    monkeypatch.setattr(records, "RUN_JOB", "run.googleapis.com/Unread")
    job = {"name": "//run.googleapis.com/projects/proj-00001/locations/us-central1/jobs/nightly", "assetType": "run.googleapis.com/Job"}
    tally = run_shard(Shard("s", "projects/proj-00001", "resources", 0, [job]), SweepContext(loaded=loaded, alert=False))
    assert tally.seen["run.googleapis.com/Job"] == 1 and tally.reads == 1
    assert dict(tally.skipped) == {"record carries no data and the sweep has no reader of its type": 1}
    assert not tally.compliant and not tally.violations  # never counted compliant


def test_a_record_without_data_must_be_read_first(loaded: Any) -> None:
    rec = parse_resource({"name": f"//run.googleapis.com/{SVC}", "assetType": "run.googleapis.com/Service"})
    assert isinstance(rec, AssetRecord) and rec.data is None
    with pytest.raises(ValueError, match="read it in full first"):
        ev.evaluate_asset(rec, loaded)


def test_off_rules_and_rule_filters_are_not_run() -> None:
    off = parse_policy("rules: {run_ingress_open: {mode: 'off'}}")
    rec = parse_resource(svc_result(ingress="INGRESS_TRAFFIC_ALL"))
    assert isinstance(rec, AssetRecord)
    assert "run_ingress_open" not in {v.rule for v in ev.evaluate_asset(rec, off)}
    assert [v.rule for v in ev.evaluate_asset(rec, off, ("run_vpc_egress",))] == ["run_vpc_egress"]


# -- dedupe with the event path ----------------------------------------------------------------


def _req(key: str, now: float, changed_at: float | None = None) -> BeginRequest:
    return BeginRequest(event_key=key, resource_key="res-1", owner="o", payload="{}", now=now, lease_seconds=30,
                        window_seconds=3600, escalate_after=None, changed_at=changed_at)


def test_a_sweep_claim_is_a_duplicate_when_the_rule_alerted_since_the_resource_changed() -> None:
    # The event path alerted at t=1000 (a day later the resource window is over).
    claim, _ev, res = begin_transition(None, None, _req("evt-event", 1000))
    assert claim.status == "new" and res is not None and res["alerted_at"] == 1000
    later = 1000 + 86400
    dup, ev_doc, res_doc = begin_transition(None, res, _req("evt-sweep", later, changed_at=990))
    assert dup.status == "duplicate" and ev_doc is None and res_doc is None
    # The resource changed after that alert: a new violation, alerted.
    fresh, _e, res2 = begin_transition(None, res, _req("evt-sweep2", later, changed_at=1500))
    assert fresh.status == "new" and fresh.decision == "alert" and res2 is not None and res2["alerted_at"] == later
    # Unknown change time (IAM records): only the window and the violation id dedupe.
    unknown, _e, _r = begin_transition(None, res, _req("evt-sweep3", later))
    assert unknown.status == "new"


def test_alerted_at_survives_a_new_window_and_suppressed_repeats() -> None:
    _c, _e, res = begin_transition(None, None, _req("evt-a", 1000))
    _c, _e, res = begin_transition(None, res, _req("evt-b", 1100))  # suppressed repeat in the window
    assert res is not None and res["alerted_at"] == 1000 and res["count"] == 2


# -- report ------------------------------------------------------------------------------------


class _Tables(HTMLParser):
    """The page's tables by id: lists of rows of cell texts; and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "table":
            self._table = str(a.get("id"))
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _report(complete: bool = True) -> SweepReport:
    t = Tally()
    t.seen.update({"run.googleapis.com/Service": 3})
    t.compliant.update({"proj-a|run_ingress_open": 2, "proj-b|kms_rotation": 1})
    t.violating.update({"proj-a|run_ingress_open": 1})
    t.exempt.update({"proj-b|run_vpc_egress": 1})
    t.violations.update({"run_ingress_open": 1})
    t.outcomes.update({"dry_run": 1, "exempt": 1})
    t.skipped.update({"missing name": 2})
    t.items = [
        {"rule": "run_ingress_open", "severity": "high", "resource": f"projects/proj-a/locations/l/services/{HOSTILE}",
         "project": "proj-a", "outcome": "dry_run", "changed_at": "2026-11-01T00:00:00Z",
         "changes": [{"field": "ingress", "before": "INGRESS_TRAFFIC_ALL", "after": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}]},
        {"rule": "run_vpc_egress", "severity": "medium", "resource": "projects/proj-b/locations/l/services/s", "project": "proj-b",
         "outcome": "exempt", "changed_at": "", "changes": [], "reason": "exempt",
         "exemption": {"owner": f"owner{HOSTILE}", "expires": "2027-01-31", "reason": "migration"}},
    ]
    rep = SweepReport(sweep_id="abc", scopes=("organizations/1",), max_mode="dry-run", started_at="s", finished_at="f",
                      shards_total=2, shards_done=2, plan_done=True, tally=t)
    if not complete:
        rep.not_swept.append({"scope": "folders/7", "kind": "resources", "reason": f"Forbidden: {HOSTILE}"})
    return rep


def test_the_html_report_has_counts_per_project_and_rule_and_each_violation() -> None:
    now = dt.datetime(2026, 11, 11, tzinfo=dt.UTC).timestamp()
    page = to_html(_report(), now=now)
    p = _Tables()
    p.feed(page)
    assert "script" not in p.tags and "img" not in p.tags  # hostile names are text, not markup
    assert "incomplete" not in p.ids
    by = {(r[0], r[1]): r[2:] for r in p.tables["by-project"][1:]}
    assert by == {("proj-a", "run_ingress_open"): ["2", "1", "0"], ("proj-b", "kms_rotation"): ["1", "0", "0"],
                  ("proj-b", "run_vpc_egress"): ["0", "0", "1"]}
    rows = p.tables["violations"][1:]
    assert rows[0][:2] == ["high", "run_ingress_open"] and rows[0][2].endswith(HOSTILE)
    assert rows[0][4] == "≥ 10 d" and "INGRESS_TRAFFIC_ALL → INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" in rows[0][6]
    assert rows[1][4] == "unknown" and rows[1][7] == f"owner owner{HOSTILE}, expires 2027-01-31"
    assert p.tables["totals"][1] == ["3", "1", "0", "1", "2", "0"]
    assert "http" not in page.lower().replace("http-equiv", "")  # self-contained: no external asset


def test_an_incomplete_sweep_says_so_on_the_page_and_in_the_summary() -> None:
    rep = _report(complete=False)
    p = _Tables()
    p.feed(to_html(rep))
    assert "incomplete" in p.ids and "script" not in p.tags
    import io

    out = io.StringIO()
    summary(rep, out)
    text = out.getvalue()
    assert "INCOMPLETE" in text and "NOT SWEPT: folders/7 (resources)" in text
    assert "run_ingress_open" in text and "records skipped: 2 (missing name: 2)" in text


def test_tally_round_trips_through_json() -> None:
    t = _report().tally
    back = Tally.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back.to_dict() == t.to_dict()
    total = Tally()
    total.merge(t)
    total.merge(back)
    assert total.violating["proj-a|run_ingress_open"] == 2 and len(total.items) == 4


def test_a_record_that_found_the_work_done_is_silent_once_another_path_alerted() -> None:
    def tentative(key: str, now: float, changed_at: float) -> BeginRequest:
        return dataclasses.replace(_req(key, now, changed_at), tentative=True, settle_seconds=3)

    # The event path's duplicate found the sweep's fix: its claim waits for the record of the work.
    claim, ev_doc, res = begin_transition(None, None, tentative("evt-e", 1000, 990))
    assert claim.status == "deferred" and res is None  # not counted on the resource: not a repeat
    # The sweep that did the work alerts (its own claim) at 1001, as a first alert, not a repeat.
    sweep, _e, res = begin_transition(None, res, _req("evt-sweep", 1001, changed_at=980))
    assert sweep.decision == "alert" and res is not None and res["alerted_at"] == 1001
    # After the settle time the tentative record is not sent: the sweep told on-call already.
    again, ev2, _r = begin_transition(ev_doc, res, tentative("evt-e", 1010, 990))
    assert again.status == "duplicate" and ev2 is not None and ev2["done"]
    # Nobody alerted: it goes out as it is, and counts as an alert on the resource.
    alone, _ev3, res3 = begin_transition(ev_doc, {"window_start": 0, "count": 1}, tentative("evt-e", 1010, 990))
    assert alone.status == "new" and res3 is not None and res3["alerted_at"] == 1010


# -- the sweep runs the rules' own check, on the rules' own three-source cases ---------------------

def _swept(path: Path) -> bool:
    """A case the sweep lists: a record of an asset type a rule judges, or an IAM policy on any
    resource (projects, folders and organizations included). Not a v1 `orgPolicy` list on a
    project's record: exports and feeds carry it, search results do not."""
    import functions

    rule = functions.rule(path.parent.parent.name)
    asset = json.loads(path.read_text()).get("asset") or {}
    return bool(asset) and "orgPolicy" not in asset and (bool(rule.asset_types) or rule.kind.name == "iam.policy")


SOURCE_CASES = [p for p in sorted(Path(__file__).resolve().parent.glob("rules/*/sources/*.json")) if _swept(p)]


def _as_search_result(asset: dict[str, Any]) -> dict[str, Any]:
    """An asset feed's `asset` as the SearchAllResources / SearchAllIamPolicies result the sweep
    lists (search results pass through)."""
    if "versionedResources" in asset or "policy" in asset:
        return asset
    if "iamPolicy" in asset:
        return {"resource": asset["name"], "assetType": asset["assetType"], "policy": asset["iamPolicy"]}
    res = asset["resource"]
    out = {"name": asset["name"], "assetType": asset["assetType"], "location": res.get("location", ""),
           "versionedResources": [{"version": res["version"], "resource": res["data"]}]}
    if asset.get("updateTime"):
        out["updateTime"] = asset["updateTime"]
    return out


@pytest.mark.parametrize("path", SOURCE_CASES, ids=[f"{p.parent.parent.name}/{p.stem}" for p in SOURCE_CASES])
def test_a_sweep_finds_what_the_rule_finds_in_the_same_asset_record(path: Path) -> None:
    import yaml

    import functions

    rule = functions.rule(path.parent.parent.name)
    case = json.loads(path.read_text())
    loaded = parse_policy(yaml.safe_dump({"rules": {rule.id: {"params": case.get("params", {})}}}))
    expected = rule.check(rule.kind.from_asset(case["asset"]), loaded.settings(rule.id).params)
    assert expected is not None
    result = _as_search_result(case["asset"])
    rec = parse_iam(result) if "policy" in result else parse_resource(result)
    assert not isinstance(rec, Skipped), rec
    verdicts = ev.evaluate_iam(rec, loaded, (rule.id,)) if isinstance(rec, IamRecord) else ev.evaluate_asset(rec, loaded, (rule.id,))
    [found] = [v.finding for v in verdicts if v.finding is not None]
    same = ("rule", "severity", "title", "resource", "resource_type", "project", "location", "action", "observed")
    assert {k: getattr(found, k) for k in same} == {k: getattr(expected, k) for k in same}
    assert found.detail == expected.detail and found.method == ev.SWEEP_METHOD and found.event_id.startswith("sweep-")
