"""Fast unit tests of `Pipeline.handle` (no servers): how a failing finding's error propagates,
and which principals are ignored. The full-stack scenarios (tests/reliability/) cover the same
paths in 40-100 s; these fail in a second when either breaks.

`act` is replaced (one function of the unit, by monkeypatch) so that a finding's action can be
made to fail on purpose; everything else is the real pipeline, policy parser and rules.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import log
from shared import pipeline as P
from shared.config import parse_policy
from shared.event import AuditEvent, parse
from shared.model import ActionRecord, Finding, Outcome
from tests.helpers import RULE_FIXTURES, load_json
from tests.support.pipeline_fakes import Acts, Pinned

# One Cloud Run ReplaceService that three rules find fault with (ingress, region, CMEK).
THREE_FINDINGS = RULE_FIXTURES / "run_ingress_open" / "positive_v1_replace_all.json"
THREE_RULES = ["run_ingress_open", "run_unapproved_region", "run_cmek_missing"]
POLICY = """
ignore_principals: ["rampart-*@demo-project.iam.gserviceaccount.com", "deployer@p.iam.gserviceaccount.com"]
default_mode: alert
"""


def _event(principal: str | None = None) -> AuditEvent:
    entry = load_json(THREE_FINDINGS)
    if principal is not None:
        entry["protoPayload"]["authenticationInfo"]["principalEmail"] = principal
    return parse(entry)


def _pipeline() -> P.Pipeline:
    return P.Pipeline(Pinned(parse_policy(POLICY, "unit-policy.yaml")), alert=False)


def _lines(buf: Any, message: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in buf.getvalue().splitlines() if f'"{message}"' in x]


def test_the_fixture_has_three_findings() -> None:
    result = _pipeline().handle(_event(), act_on=False)
    assert [f.rule for f in result.findings] == THREE_RULES


def test_a_failing_finding_holds_back_no_other_and_its_error_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    acts = Acts({"run_ingress_open": ConnectionError("stand-in down")})
    monkeypatch.setattr(P, "act", acts)
    with log.captured() as buf, pytest.raises(ConnectionError, match="stand-in down"):
        _pipeline().handle(_event())
    assert acts.calls == THREE_RULES, "the findings after the failing one were not acted on"
    recorded = [x["rampart"]["rule"] for x in _lines(buf, "rampart.remediation")]
    assert recorded == THREE_RULES[1:], "the others' records were not logged before the error was raised"
    (failed,) = _lines(buf, "rampart.finding_failed")
    assert failed["rule"] == "run_ingress_open" and failed["error"] == "ConnectionError"


def test_with_several_failures_the_first_is_raised_and_each_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    acts = Acts({"run_unapproved_region": TimeoutError("first"), "run_cmek_missing": ValueError("second")})
    monkeypatch.setattr(P, "act", acts)
    with log.captured() as buf, pytest.raises(TimeoutError, match="first"):
        _pipeline().handle(_event())
    assert acts.calls == THREE_RULES
    assert [x["rule"] for x in _lines(buf, "rampart.finding_failed")] == ["run_unapproved_region", "run_cmek_missing"]
    assert [x["rampart"]["rule"] for x in _lines(buf, "rampart.remediation")] == ["run_ingress_open"]


def test_a_single_failing_finding_raises_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    acts = Acts({"run_ingress_open": ConnectionError("down")})
    monkeypatch.setattr(P, "act", acts)
    with log.captured() as buf, pytest.raises(ConnectionError):
        _pipeline().handle(_event(), only="run_ingress_open")
    assert acts.calls == ["run_ingress_open"]
    assert _lines(buf, "rampart.finding_failed") == []  # one finding: the raised error says it all


def test_no_failure_returns_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(P, "act", Acts())
    result = _pipeline().handle(_event())
    assert [r.finding.rule for r in result.records] == THREE_RULES
    assert all(r.outcome is Outcome.ALERTED for r in result.records)


@pytest.mark.parametrize("principal", [
    "rampart-remediator@demo-project.iam.gserviceaccount.com",
    "deployer@p.iam.gserviceaccount.com",
])
def test_an_ignored_principal_is_never_acted_on_and_its_violation_is_alerted(monkeypatch: pytest.MonkeyPatch, principal: str) -> None:
    """Rampart's own changes are compliant, so a violating change under an ignored identity is
    someone else's: no action is taken, and each finding is an alert saying so (issue 14 #2)."""
    acts = Acts()
    monkeypatch.setattr(P, "act", acts)
    pipeline = _pipeline()
    with log.captured() as buf:
        result = pipeline.handle(_event(principal))
    assert result.skipped == "ignored_principal" and acts.calls == []
    assert [f.rule for f in result.findings] == THREE_RULES
    assert [r.outcome for r in result.records] == [Outcome.ALERTED] * 3
    assert all("an ignored principal made a violating change" in r.reason for r in result.records)
    (line,) = _lines(buf, "rampart.ignored")
    assert line["principal"] == principal
    assert pipeline.stats["skipped:ignored_principal"] == 1


@pytest.mark.parametrize("principal", [
    "Rampart-remediator@demo-project.iam.gserviceaccount.com",  # patterns are case-sensitive
    "rampart-remediator@demo-project.iam.gserviceaccount.com.evil.example",  # the whole address must match
    "evil-rampart-x@p.iam.gserviceaccount.com",
    "rampart-x@other.iam.gserviceaccount.com",  # the same name in another project is someone else
    "deployer@p.iam.gserviceaccount.co",
    "",  # no principal: never ignored
])
def test_other_principals_are_evaluated_and_acted_on(monkeypatch: pytest.MonkeyPatch, principal: str) -> None:
    acts = Acts()
    monkeypatch.setattr(P, "act", acts)
    with log.captured() as buf:
        result = _pipeline().handle(_event(principal))
    assert result.skipped is None and acts.calls == THREE_RULES
    assert _lines(buf, "rampart.ignored") == []


def test_no_ignore_list_ignores_no_one() -> None:
    loaded = parse_policy("default_mode: alert\n", "unit-policy.yaml")
    assert not P.ignored("rampart-remediator@demo-project.iam.gserviceaccount.com", loaded)
    assert P.ignored("rampart-remediator@demo-project.iam.gserviceaccount.com", parse_policy(POLICY, "p.yaml"))


def test_an_irrelevant_event_is_skipped_as_irrelevant_even_from_an_ignored_principal() -> None:
    entry = load_json(THREE_FINDINGS)
    entry["protoPayload"]["methodName"] = "google.cloud.run.v1.Services.GetService"
    entry["protoPayload"]["authenticationInfo"]["principalEmail"] = "rampart-remediator@demo-project.iam.gserviceaccount.com"
    assert _pipeline().handle(parse(entry)).skipped == "no_rule_for_method"


# ---------------------------------------------------------------------------
# warm_up: which libraries are loaded ahead of the first relevant event.


WARM_POLICY = """
default_mode: "off"
rules:
  run_ingress_open: {mode: enforce}
  kms_version_disabled: {mode: alert}
  kms_rotation: {mode: "off"}
"""


@pytest.fixture
def preloaded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    from shared import clients
    from shared.alerts import delivery

    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(clients, "preload", lambda *products: calls.append(("clients", products)))
    monkeypatch.setattr(delivery, "preload", lambda cfg: calls.append(("alerts", cfg)))
    return calls


def test_warm_up_loads_the_libraries_of_the_enabled_rules_products(preloaded: list[tuple[str, Any]]) -> None:
    P.Pipeline(Pinned(parse_policy(WARM_POLICY)), alert=False).warm_up()
    assert preloaded == [("clients", ("kms", "run"))]


def test_warm_up_of_a_per_rule_function_loads_only_its_products(preloaded: list[tuple[str, Any]]) -> None:
    pipeline = P.Pipeline(Pinned(parse_policy(WARM_POLICY)), alert=False)
    pipeline.warm_up(only="run_ingress_open")
    pipeline.warm_up(only="kms_version_disabled")  # a KMS alert lists the Cloud Run services using the key
    pipeline.warm_up(only="kms_rotation")  # off: nothing to load
    assert preloaded == [("clients", ("run",)), ("clients", ("kms", "run")), ("clients", ())]


def test_warm_up_loads_the_alert_channels_only_when_it_alerts(preloaded: list[tuple[str, Any]]) -> None:
    loaded = parse_policy(WARM_POLICY + "alerts:\n  slack: {webhook_url_file: /secrets/slack-webhook}\n")
    P.Pipeline(Pinned(loaded), alert=True).warm_up()
    assert preloaded == [("clients", ("kms", "run")), ("alerts", loaded.alerts)]
    preloaded.clear()
    P.Pipeline(Pinned(loaded), alert=False).warm_up()
    assert preloaded == [("clients", ("kms", "run"))]


# ---------------------------------------------------------------------------
# Ignored principals: never acted on; a violating change of theirs is alerted, not remediated.

SLACKBOT_ENTRY = "tests/data/run/slackbot-replaceservice-success.json"  # ingress all, by masatonaka1989@gmail.com


def _ignoring(extra: str = "") -> Any:
    return parse_policy('default_mode: "off"\nignore_principals: ["masatonaka1989@gmail.com"]\n'
                        "rules:\n  run_ingress_open: {mode: enforce}\n" + extra)


def test_an_ignored_principals_violating_change_is_alerted_and_not_acted_on() -> None:
    from tests.helpers import ROOT

    pipeline = P.Pipeline(Pinned(_ignoring()), alert=False)
    with log.captured() as out:
        result = pipeline.handle(parse(load_json(ROOT / SLACKBOT_ENTRY)))
    assert result.skipped == "ignored_principal" and pipeline.stats["skipped:ignored_principal"] == 1
    (finding,) = result.findings
    (record,) = result.records
    assert record.outcome is Outcome.ALERTED and pipeline.stats["outcome:alerted"] == 1
    assert record.finding.title == f"An ignored principal made a violating change: {finding.title}"
    assert record.reason == ("an ignored principal made a violating change (masatonaka1989@gmail.com): not acted on; "
                             "check who holds that identity")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    (ignored,) = [x for x in lines if x["message"] == "rampart.ignored"]
    assert ignored["reason"] == f"ignored principal; {P.IGNORED_VIOLATION_NOTE}"
    assert ignored["principal"] == "masatonaka1989@gmail.com" and ignored["method"] == finding.method
    assert any(x["message"] == "rampart.remediation" for x in lines)  # on the record


def test_an_ignored_principals_change_is_only_noted_when_not_acting() -> None:
    from tests.helpers import ROOT

    pipeline = P.Pipeline(Pinned(_ignoring()), alert=False)
    with log.captured():
        result = pipeline.handle(parse(load_json(ROOT / SLACKBOT_ENTRY)), act_on=False)
    assert result.skipped == "ignored_principal" and len(result.findings) == 1 and result.records == []


def test_an_ignored_principals_compliant_change_is_noted_without_a_finding() -> None:
    from tests.helpers import ROOT

    entry = load_json(ROOT / SLACKBOT_ENTRY)
    entry["protoPayload"]["response"]["metadata"]["annotations"]["run.googleapis.com/ingress"] = "internal"
    entry["protoPayload"]["request"]["service"]["metadata"]["annotations"]["run.googleapis.com/ingress"] = "internal"
    pipeline = P.Pipeline(Pinned(_ignoring()), alert=False)
    with log.captured() as out:
        result = pipeline.handle(parse(entry))
    assert result.skipped == "ignored_principal" and result.findings == [] and result.records == []
    (ignored,) = [json.loads(x) for x in out.getvalue().splitlines() if '"rampart.ignored"' in x]
    assert ignored["reason"] == "ignored principal"


CRM_ENTRY = "tests/data/run/powerchoosers-replaceservice-invoker-iam-disabled-success.json"  # default SA, by that SA


def _own_quarantine(label: str) -> Any:
    from tests.helpers import ROOT

    entry = load_json(ROOT / CRM_ENTRY)
    entry["protoPayload"]["request"]["service"]["metadata"]["labels"]["rampart-quarantine"] = label
    return parse(entry)


QUARANTINING = ('default_mode: "off"\nignore_principals: ["792458658491-compute@developer.gserviceaccount.com"]\n'
                "rules:\n  run_default_service_account: {mode: enforce, action: quarantine}\n")


def test_rampart_s_own_quarantine_coming_back_is_not_a_violation() -> None:
    # The quarantine labels the service and leaves the default service account for its owner to fix.
    pipeline = P.Pipeline(Pinned(parse_policy(QUARANTINING)), alert=False)
    with log.captured():
        result = pipeline.handle(_own_quarantine("run_default_service_account"))
    assert result.skipped == "ignored_principal" and result.findings == [] and result.records == []


def test_a_quarantine_label_of_another_rule_or_action_does_not_hide_the_violation() -> None:
    pipeline = P.Pipeline(Pinned(parse_policy(QUARANTINING)), alert=False)
    with log.captured():
        other = pipeline.handle(_own_quarantine("run_ingress_open"))
    assert [r.outcome for r in other.records] == [Outcome.ALERTED]
    reverting = parse_policy(QUARANTINING.replace("action: quarantine", "action: alert"))
    with log.captured():
        alerted = P.Pipeline(Pinned(reverting), alert=False).handle(_own_quarantine("run_default_service_account"))
    assert [r.outcome for r in alerted.records] == [Outcome.ALERTED]


def test_severity_at_least_compares_the_effective_severity() -> None:
    from shared.model import Action, Mode, Severity

    f = Finding(rule="r", severity=Severity.MEDIUM, title="t", resource="x", resource_type="run.service", project="p",
                location="l", principal="", action=Action.REVERT, event_id="e", method="m", timestamp="")
    assert P.severity_at_least(f, Severity.MEDIUM) and not P.severity_at_least(f, Severity.HIGH)
    escalated = ActionRecord(finding=f, mode=Mode.ALERT, outcome=Outcome.ALERTED, severity=Severity.CRITICAL)
    assert P.severity_at_least(escalated, Severity.HIGH)  # the record's severity, not the finding's


def test_a_failing_enrichment_still_alerts_and_says_which_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import ActionContext
    from shared.model import Action, Mode, Severity

    f = Finding(rule="kms_version_disabled", severity=Severity.HIGH, title="t", resource="k", resource_type="kms",
                project="p", location="l", principal="", action=Action.RESTORE, event_id="e", method="m", timestamp="")
    settings = parse_policy('default_mode: "off"\nrules:\n  kms_version_disabled: {mode: alert}\n').settings("kms_version_disabled")

    def broken(finding: Any, params: Any, ctx: Any) -> dict[str, Any]:
        raise PermissionError("secret-token-123")

    ctx = ActionContext(mode=Mode.ALERT, action=Action.ALERT)
    with log.captured() as out:
        assert P._enrich(broken, f, settings, ctx) == {"enrich_error": "PermissionError"}
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["message"] == "rampart.enrich_failed" and line["severity"] == "WARNING"
    assert (line["rule"], line["resource"], line["error"]) == ("kms_version_disabled", "k", "PermissionError")
    assert "secret-token-123" not in out.getvalue()  # the error's text is never echoed
    assert P._enrich(lambda *a: None, f, settings, ctx) == {}


def test_the_policys_remediation_settings_reach_the_action(monkeypatch: pytest.MonkeyPatch) -> None:
    import functions

    seen: list[Any] = []
    rule = functions.rule("run_ingress_open")
    loaded = parse_policy('default_mode: "off"\nrules:\n  run_ingress_open: {mode: dry-run}\n'
                          "remediation: {max_attempts: 5, operation_timeout_seconds: 20, quarantine_label: q-label}\n")

    def remediate(finding: Any, params: Any, ctx: Any) -> ActionRecord:
        seen.append(ctx)
        return ActionRecord(finding=finding, mode=ctx.mode, outcome=Outcome.DRY_RUN, reason="would")

    import dataclasses

    monkeypatch.setattr(functions, "rule", lambda rule_id: dataclasses.replace(rule, remediate=remediate, enrich=None))
    from tests.helpers import ROOT

    f = rule.evaluate(parse(load_json(ROOT / SLACKBOT_ENTRY)), rule.params())
    assert f is not None
    record = P.act(f, loaded.settings("run_ingress_open"), loaded)
    (ctx,) = seen
    assert (ctx.mode.value, ctx.max_attempts, ctx.operation_timeout, ctx.quarantine_label) == ("dry-run", 5, 20.0, "q-label")
    assert record.reason == "would" and record.severity is rule.severity  # the policy's severity, on the record


def _finding_in(project: str, resource: str = "projects/p1/locations/l/services/s") -> Finding:
    from shared.model import Action, Severity

    return Finding(rule="run_ingress_open", severity=Severity.HIGH, title="t", resource=resource, resource_type="run.service",
                   project=project, location="l", principal="", action=Action.REVERT, event_id="e", method="m", timestamp="")


EXEMPTIONS = """
default_mode: "off"
folders: {{folders/42: [p-folder]}}
rules:
  run_ingress_open:
    mode: {mode}
    action: {action}
    severity: critical
    exemptions:
      - {{projects: [p-old], owner: alice, reason: migration, expires: 2026-01-01}}
      - {{projects: [p-old], owner: bob, reason: again, expires: 2026-02-01}}
      - {{folders: [folders/42], owner: carol, reason: lab, expires: 2030-01-01}}
"""


def _decision(project: str, mode: str = "alert", action: str = "revert") -> ActionRecord | None:
    import datetime as dt

    loaded = parse_policy(EXEMPTIONS.format(mode=mode, action=action))
    return P.decide(_finding_in(project), loaded.settings("run_ingress_open"), loaded, today=dt.date(2026, 6, 1))


def test_a_decision_to_alert_says_why_and_which_exemptions_lapsed() -> None:
    from shared.model import Severity

    rec = _decision("p-old")
    assert rec is not None and rec.outcome is Outcome.ALERTED and rec.severity is Severity.CRITICAL
    assert rec.reason == ("mode alert; exemption (owner alice) expired on 2026-01-01: not applied; "
                          "exemption (owner bob) expired on 2026-02-01: not applied")
    rec = _decision("p-new", mode="enforce", action="alert")
    assert rec is not None and rec.reason == "no automatic fix for this rule: a human decides"


def test_an_exemption_through_a_folder_is_honoured_with_the_policys_severity() -> None:
    from shared.model import Severity

    rec = _decision("p-folder", mode="enforce")
    assert rec is not None and rec.outcome is Outcome.EXEMPT and rec.severity is Severity.CRITICAL
    assert rec.reason == "exempt until 2030-01-01 (owner carol): lab"
    assert _decision("p-new", mode="enforce") is None  # no exemption, an automatic fix: act
