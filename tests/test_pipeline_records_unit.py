"""Fast unit tests of what `Pipeline.handle` counts, logs and records (no servers): the stats
counters of each path, the fields of its log lines, a last attempt's FAILED record
(`_record_final`), the pinned dedupe store reaching the breaker and the alerts, ignored
principals, and `act`'s decision, reason and enrichment on the record.
tests/test_pipeline_unit.py covers which findings are acted on and which error is raised; these
pin down the rest.

`act` (and, where said, `guarded` and `deliver`) are replaced by plain fakes, one collaborator of
the unit at a time; the policy parser, the rules and the event model are the real ones."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

import functions
from shared import log
from shared import pipeline as P
from shared.config import parse_policy
from shared.event import AuditEvent, parse
from shared.model import Action, ActionRecord, Finding, Mode, Outcome, Severity
from tests.helpers import ROOT, RULE_FIXTURES, load_json
from tests.support.pipeline_fakes import Acts, Pinned

# One Cloud Run ReplaceService (by masatonaka1989@gmail.com, insertId qd23mgd4u3f) that three
# rules find fault with under `default_mode: alert`: ingress, region, CMEK.
THREE_FINDINGS = RULE_FIXTURES / "run_ingress_open" / "positive_v1_replace_all.json"
THREE_RULES = ["run_ingress_open", "run_unapproved_region", "run_cmek_missing"]
EVENT_ID = "qd23mgd4u3f"
SERVICE = "projects/test-project-1234/locations/asia-northeast1/services/cloud-run-slack-bot"
ENTRY_RESOURCE = "namespaces/test-project-1234/services/cloud-run-slack-bot"  # the entry's resourceName
ALERT = "default_mode: alert\n"
SLACK = "alerts:\n  slack: {webhook_url_file: /secrets/slack-webhook}\n"
ACTOR = "masatonaka1989@gmail.com"


def _event(entry: dict[str, Any] | None = None) -> AuditEvent:
    return parse(entry if entry is not None else load_json(THREE_FINDINGS))


def _irrelevant() -> AuditEvent:
    entry = load_json(THREE_FINDINGS)
    entry["protoPayload"]["methodName"] = "google.cloud.run.v1.Services.GetService"
    return parse(entry)


def _pipeline(policy: str = ALERT, **kw: Any) -> P.Pipeline:
    return P.Pipeline(Pinned(parse_policy(policy, "unit-policy.yaml")), **({"alert": False} | kw))


def _lines(buf: Any, message: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in buf.getvalue().splitlines() if f'"{message}"' in x]


# ---------------------------------------------------------------------------
# Counters and the result's event.


def test_a_skipped_event_is_counted_under_its_reason() -> None:
    pipeline = _pipeline()
    result = pipeline.handle(_irrelevant())
    assert result.skipped == "no_rule_for_method"
    assert dict(pipeline.stats) == {"skipped:no_rule_for_method": 1}


def test_each_skipped_event_adds_one_to_its_reasons_count() -> None:
    pipeline = _pipeline()
    for _ in range(2):
        pipeline.handle(_irrelevant())
    assert dict(pipeline.stats) == {"skipped:no_rule_for_method": 2}


def test_a_compliant_event_is_counted_as_compliant_each_time() -> None:
    entry = load_json(ROOT / "tests/data/run/slackbot-replaceservice-success.json")
    entry["protoPayload"]["response"]["metadata"]["annotations"]["run.googleapis.com/ingress"] = "internal"
    entry["protoPayload"]["request"]["service"]["metadata"]["annotations"]["run.googleapis.com/ingress"] = "internal"
    pipeline = _pipeline('default_mode: "off"\nrules:\n  run_ingress_open: {mode: alert}\n')
    results = [pipeline.handle(parse(entry)) for _ in range(2)]
    assert [r.skipped for r in results] == ["compliant", "compliant"]
    assert dict(pipeline.stats) == {"skipped:compliant": 2}


def test_every_record_is_counted_by_outcome_and_the_result_names_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(P, "act", Acts())
    pipeline = _pipeline()
    result = pipeline.handle(_event())
    assert result.event_id == EVENT_ID
    assert dict(pipeline.stats) == {"outcome:alerted": 3}


# ---------------------------------------------------------------------------
# Which rules run: a per-rule function's `only`, and the caller's triage.


def test_a_per_rule_function_skips_an_event_its_rule_is_not_triggered_by(monkeypatch: pytest.MonkeyPatch) -> None:
    acts = Acts()
    monkeypatch.setattr(P, "act", acts)
    pipeline = _pipeline()
    result = pipeline.handle(_event(), only="kms_version_disabled")
    assert result.skipped == "no_rule_for_method" and result.findings == [] and acts.calls == []
    assert dict(pipeline.stats) == {"skipped:no_rule_for_method": 1}


def test_the_callers_triage_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    acts = Acts()
    monkeypatch.setattr(P, "act", acts)
    pipeline = _pipeline()
    assert pipeline.handle(_event(), triaged="unit_reason").skipped == "unit_reason"
    result = pipeline.handle(_event(), triaged=("run_cmek_missing",))
    assert [f.rule for f in result.findings] == ["run_cmek_missing"] and acts.calls == ["run_cmek_missing"]


# ---------------------------------------------------------------------------
# A finding that fails: its log line, and its FAILED record on the last attempt.


def test_a_failed_findings_log_line_names_the_event_resource_and_a_bounded_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = "a" * 300 + "b" * 100
    monkeypatch.setattr(P, "act", Acts({"run_ingress_open": ConnectionError(reason)}))
    with log.captured() as buf, pytest.raises(ConnectionError):
        _pipeline().handle(_event())
    (line,) = _lines(buf, "rampart.finding_failed")
    assert {k: line.get(k) for k in ("event_id", "rule", "resource", "error", "reason")} == {
        "event_id": EVENT_ID, "rule": "run_ingress_open", "resource": SERVICE, "error": "ConnectionError",
        "reason": "a" * 300}


def test_with_two_findings_a_failure_is_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(P, "act", Acts({"run_ingress_open": ConnectionError("down")}))
    pipeline = _pipeline(ALERT + 'rules:\n  run_cmek_missing: {mode: "off"}\n')
    with log.captured() as buf, pytest.raises(ConnectionError):
        pipeline.handle(_event())
    assert [x["rule"] for x in _lines(buf, "rampart.finding_failed")] == ["run_ingress_open"]


def test_on_the_last_attempt_a_failing_finding_is_recorded_failed_and_the_others_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    acts = Acts({"run_ingress_open": ConnectionError("stand-in down")})
    monkeypatch.setattr(P, "act", acts)
    pipeline = _pipeline()
    with log.captured():
        result = pipeline.handle(_event(), last_attempt=5)
    assert acts.calls == THREE_RULES
    assert [(r.finding.rule, r.outcome) for r in result.records] == [
        ("run_ingress_open", Outcome.FAILED), ("run_unapproved_region", Outcome.ALERTED), ("run_cmek_missing", Outcome.ALERTED)]
    failed = result.records[0]
    # Its own alert claim: not the claim of the attempts that failed before.
    assert failed.finding.event_id == "qd23mgd4u3f#last-attempt" and failed.attempts == 5
    assert "(ConnectionError: stand-in down)" in failed.reason
    assert dict(pipeline.stats) == {"outcome:failed": 1, "outcome:alerted": 2}


def test_on_the_last_attempt_each_failure_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(P, "act", Acts({"run_ingress_open": TimeoutError("one"), "run_cmek_missing": ValueError("two")}))
    pipeline = _pipeline()
    with log.captured():
        result = pipeline.handle(_event(), last_attempt=5)
    assert [r.outcome for r in result.records] == [Outcome.FAILED, Outcome.ALERTED, Outcome.FAILED]
    assert dict(pipeline.stats) == {"outcome:failed": 2, "outcome:alerted": 1}


def test_on_the_last_attempt_a_failure_that_cannot_be_recorded_raises_the_original_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """When even the FAILED record cannot reach anyone, the event is dead-lettered: handle raises."""
    monkeypatch.setattr(P, "act", Acts({"run_ingress_open": ConnectionError("stand-in down")}))
    pipeline = _pipeline()
    kept: list[str] = []

    def record(rec: ActionRecord, loaded: Any, result: Any) -> None:
        if rec.outcome is Outcome.FAILED:
            raise OSError("alert channel down")
        kept.append(rec.finding.rule)

    monkeypatch.setattr(pipeline, "_record", record)
    with pytest.raises(ConnectionError, match="stand-in down"):
        pipeline.handle(_event(), last_attempt=5)
    assert kept == THREE_RULES[1:]
    assert dict(pipeline.stats) == {"outcome:alerted": 2}


# ---------------------------------------------------------------------------
# A dedupe store given to the pipeline is the one the breaker and the alerts use.


def test_a_pinned_dedupe_store_reaches_the_breaker_and_every_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.alerts

    store = object()
    guarded_with: list[Any] = []
    delivered_with: list[tuple[str, Any]] = []

    def guarded(finding: Any, settings: Any, loaded: Any, act: Any, *, store: Any = "unset") -> ActionRecord:
        guarded_with.append(store)
        return act()

    def deliver(record: ActionRecord, cfg: Any, store: Any = "unset") -> str:
        delivered_with.append((record.finding.rule, store))
        return f"delivered {record.finding.rule}"

    monkeypatch.setattr(P, "act", Acts())
    monkeypatch.setattr(P, "guarded", guarded)
    monkeypatch.setattr(shared.alerts, "deliver", deliver)
    pipeline = _pipeline(ALERT + SLACK, alert=True, dedupe=store)
    with log.captured():
        result = pipeline.handle(_event())
        pipeline.report(result.records[0], pipeline.store.current())
    assert guarded_with == [store] * 3
    assert delivered_with == [(r, store) for r in THREE_RULES] + [("run_ingress_open", store)]
    assert result.deliveries == [f"delivered {r}" for r in THREE_RULES]


# ---------------------------------------------------------------------------
# Ignored principals.

IGNORING = f'default_mode: alert\nignore_principals: ["{ACTOR}"]\n'


def test_each_ignored_event_is_counted_and_logged_with_its_event_and_resource() -> None:
    pipeline = _pipeline(IGNORING)
    with log.captured() as buf:
        for _ in range(2):
            pipeline.handle(_event())
    assert dict(pipeline.stats) == {"skipped:ignored_principal": 2, "outcome:alerted": 6}
    lines = _lines(buf, "rampart.ignored")
    assert len(lines) == 2
    assert {k: lines[0].get(k) for k in ("event_id", "method", "resource", "principal")} == {
        "event_id": EVENT_ID, "method": "google.cloud.run.v1.Services.ReplaceService", "resource": ENTRY_RESOURCE,
        "principal": ACTOR}


def test_an_ignored_principals_violation_carries_the_policys_severity() -> None:
    pipeline = _pipeline(IGNORING + "rules:\n  run_ingress_open: {severity: critical}\n")
    with log.captured():
        result = pipeline.handle(_event())
    assert [(r.finding.rule, r.severity) for r in result.records] == [
        ("run_ingress_open", Severity.CRITICAL), ("run_unapproved_region", Severity.HIGH), ("run_cmek_missing", Severity.HIGH)]


FOLDER_EXEMPTION = """
default_mode: alert
folders: {{folders/42: [test-project-1234]}}
{extra}
rules:
  run_ingress_open:
    exemptions:
      - {{folders: [folders/42], owner: carol, reason: lab, expires: {expires}}}
"""


def test_an_ignored_principals_violation_in_an_exempt_folder_is_exempt() -> None:
    policy = FOLDER_EXEMPTION.format(extra=f'ignore_principals: ["{ACTOR}"]', expires="2099-01-01")
    with log.captured():
        result = _pipeline(policy).handle(_event())
    assert [(r.finding.rule, r.outcome) for r in result.records] == [
        ("run_ingress_open", Outcome.EXEMPT), ("run_unapproved_region", Outcome.ALERTED), ("run_cmek_missing", Outcome.ALERTED)]
    assert result.records[0].reason == "exempt until 2099-01-01 (owner carol): lab"


def _finding(rule: str = "run_ingress_open") -> Finding:
    (found,) = [f for f, _ in P.evaluate(_event(), (rule,), parse_policy(ALERT))]
    return found


def test_an_ignored_principals_violation_is_judged_on_the_day_given() -> None:
    loaded = parse_policy(FOLDER_EXEMPTION.format(extra="", expires="2021-01-01"))
    settings = loaded.settings("run_ingress_open")
    assert P.ignored_violation(_finding(), settings, loaded, today=dt.date(2020, 6, 1)).outcome is Outcome.EXEMPT
    assert P.ignored_violation(_finding(), settings, loaded, today=dt.date(2021, 1, 2)).outcome is Outcome.ALERTED


CRM_ENTRY = ROOT / "tests/data/run/powerchoosers-replaceservice-invoker-iam-disabled-success.json"


def test_a_quarantine_label_is_compared_as_written_at_most_63_characters() -> None:
    """Label values hold at most 63 characters (shared/actions/quarantine.py writes the rule's
    first 63): a rule id of 64 is recognised by its first 63."""
    entry = load_json(CRM_ENTRY)
    entry["protoPayload"]["request"]["service"]["metadata"]["labels"]["rampart-quarantine"] = "r" * 63
    event = parse(entry)
    loaded = parse_policy(ALERT)
    (finding,) = [f for f, _ in P.evaluate(event, ("run_default_service_account",), loaded)]
    quarantine = dataclasses.replace(loaded.settings("run_default_service_account"), action=Action.QUARANTINE)
    assert P.rampart_isolation(event, dataclasses.replace(finding, rule="r" * 64), quarantine, loaded)
    assert not P.rampart_isolation(event, dataclasses.replace(finding, rule="r" * 62), quarantine, loaded)


def test_an_ignored_principals_iam_change_under_a_quarantine_rule_is_alerted() -> None:
    """A SetIamPolicy entry carries no service: nothing shows Rampart's quarantine label, so the
    violation is alerted (not taken for Rampart's own quarantine, and no crash)."""
    policy = ('default_mode: "off"\nignore_principals: ["some.user@company.com"]\n'
              "rules:\n  run_public_invoker: {mode: enforce, action: quarantine}\n")
    with log.captured():
        result = _pipeline(policy).handle(_event(load_json(RULE_FIXTURES / "run_public_invoker" / "positive_v1_allusers_in_policy.json")))
    assert result.skipped == "ignored_principal"
    assert [(r.finding.rule, r.outcome) for r in result.records] == [("run_public_invoker", Outcome.ALERTED)]


# ---------------------------------------------------------------------------
# act: the exemption's day and folders, the reason of an action taken, and enrichment.


def test_act_judges_a_folder_exemption_on_the_day_given() -> None:
    loaded = parse_policy(FOLDER_EXEMPTION.format(extra="", expires="2021-01-01"))
    settings = loaded.settings("run_ingress_open")
    record = P.act(_finding(), settings, loaded, today=dt.date(2020, 6, 1))
    assert record.outcome is Outcome.EXEMPT and record.reason == "exempt until 2021-01-01 (owner carol): lab"


def _with(monkeypatch: pytest.MonkeyPatch, **parts: Any) -> None:
    """Every rule id answers run_ingress_open with `parts` replaced (parse the policy first)."""
    rule = functions.rule("run_ingress_open")
    monkeypatch.setattr(functions, "rule", lambda rule_id: dataclasses.replace(rule, **parts))


def test_an_action_taken_after_an_exemption_lapsed_says_both(monkeypatch: pytest.MonkeyPatch) -> None:
    def remediate(finding: Any, params: Any, ctx: Any) -> ActionRecord:
        return ActionRecord(finding=finding, mode=ctx.mode, outcome=Outcome.DRY_RUN, reason="would set ingress internal")

    policy = FOLDER_EXEMPTION.format(extra="", expires="2020-01-01").replace("run_ingress_open:\n", "run_ingress_open:\n    mode: dry-run\n")
    loaded, finding = parse_policy(policy), _finding()
    _with(monkeypatch, remediate=remediate, enrich=None)
    record = P.act(finding, loaded.settings("run_ingress_open"), loaded, today=dt.date(2020, 6, 1))
    assert record.outcome is Outcome.DRY_RUN
    assert record.reason == "would set ingress internal; exemption (owner carol) expired on 2020-01-01: not applied"


def test_a_rule_without_enrichment_adds_no_context(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded, finding = parse_policy(ALERT), _finding()
    _with(monkeypatch, enrich=None)
    with log.captured() as buf:
        record = P.act(finding, loaded.settings("run_ingress_open"), loaded)
    assert record.outcome is Outcome.ALERTED and record.after == {}
    assert _lines(buf, "rampart.enrich_failed") == []


def test_an_exempt_finding_is_not_enriched(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    loaded, finding = parse_policy(FOLDER_EXEMPTION.format(extra="", expires="2099-01-01")), _finding()
    _with(monkeypatch, enrich=lambda finding, params, ctx: calls.append(finding.rule) or {"services": ["s"]})
    record = P.act(finding, loaded.settings("run_ingress_open"), loaded)
    assert record.outcome is Outcome.EXEMPT and record.after == {} and calls == []


def test_an_alert_is_enriched_with_its_context_in_alert_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The context's mode is alert for any mode that does not act (off included): an enrichment
    may only read."""
    seen: list[Mode] = []

    def enrich(finding: Any, params: Any, ctx: Any) -> dict[str, Any]:
        seen.append(ctx.mode)
        return {"services": ["s1"]}

    policies, finding = [parse_policy(f"default_mode: {mode}\n") for mode in ("alert", '"off"')], _finding()
    _with(monkeypatch, enrich=enrich)
    for loaded in policies:
        record = P.act(finding, loaded.settings("run_ingress_open"), loaded)
        assert record.outcome is Outcome.ALERTED and record.after == {"context": {"services": ["s1"]}}
    assert seen == [Mode.ALERT, Mode.ALERT]


def test_severity_at_least_falls_back_to_the_findings_severity() -> None:
    record = ActionRecord(finding=_finding(), mode=Mode.ALERT, outcome=Outcome.ALERTED)  # no severity of its own
    assert P.severity_at_least(record, Severity.HIGH) and not P.severity_at_least(record, Severity.CRITICAL)
