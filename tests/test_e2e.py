"""End to end on the real local pipeline: Pub/Sub emulator push → functions-framework → main.py →
real google-cloud clients → stand-in; alerts to the Slack receiver, the SMTP server and the
Pub/Sub alert topic, with dedupe in the Firestore emulator. What `make demo` shows, asserted."""

from __future__ import annotations

import io
import json

import pytest

from infra.local import scenario
from infra.local.demo import run_scenario
from infra.local.stack import LocalStack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def played():
    with LocalStack() as stack:
        out = io.StringIO()
        report = run_scenario(stack, out)
        yield stack, report, out.getvalue()


def test_every_door_is_closed_in_live_state(played) -> None:
    stack, report, text = played
    assert [s.rule for s in report.steps] == [s.rule for s in scenario.steps()]
    for s in report.steps:
        assert s.closed, f"{s.rule} still open: {s.state}\n{text}"
        assert s.outcome == s.expected, f"{s.rule}: {s.outcome} != {s.expected}\n{text}"
    for step in scenario.steps():
        assert step.compliant(stack), step.rule


def test_quarantine_records_prior_state_on_the_service(played) -> None:
    stack, _, _ = played
    svc = stack.get(f"{scenario.SVC}/billing-frontend")
    record = json.loads(svc["annotations"]["rampart.dev/quarantine"])
    assert record["rule"] == "run_default_service_account"
    assert record["prior"]["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"


def test_redelivered_message_changes_nothing_twice(played) -> None:
    _, report, _ = played
    assert report.redelivery_writes == 0


def test_poison_message_is_acknowledged_logged_and_nothing_else(played) -> None:
    stack, report, _ = played
    assert report.poison_acknowledged
    (line,) = stack.log_lines("rampart.bad_input")
    assert "not JSON" in line["reason"] and "not json{" not in json.dumps(line)
    # Acknowledged: not redelivered (one log line), and never dead-lettered.
    from infra.local.emulators import pull

    assert pull(stack.pubsub.host, f"projects/{scenario.P}/subscriptions/rampart-dlq-pull", timeout=1.0) == []


def test_noise_produces_no_record(played) -> None:
    _, report, _ = played
    assert report.noise_records == 0


def test_alerts_routed_by_severity_and_deduplicated(played) -> None:
    stack, report, _ = played
    # One alert per violation on Slack and Pub/Sub (critical and high); email for critical only;
    # the redelivered entry is a suppressed repeat, not a second alert. The function deployed
    # with the defaults is three violations: ingress (reverted), the default service account and
    # no CMEK key (alert mode: no safe fix).
    assert report.slack == 9, [p.body.get("text") for p in stack.slack.posts]
    assert report.email == 4
    assert report.pubsub_alerts == 9
    subjects = [m.message["Subject"] for m in stack.smtp.mails]
    assert all(s.startswith("[Rampart] CRITICAL") for s in subjects)


def test_every_action_has_a_complete_record(played) -> None:
    stack, _, _ = played
    records = stack.records()
    by_rule = {r["rule"]: r for r in records if r["outcome"] not in ("already_compliant", "alerted")}
    assert set(by_rule) == {s.rule for s in scenario.steps()}
    alerted = {r["rule"] for r in records if r["outcome"] == "alerted"}
    assert alerted == {"function_default_service_account", "function_cmek_missing"}
    for r in by_rule.values():
        for key in ("rule", "severity", "resource", "project", "principal", "event_id", "mode", "outcome", "changes", "undo"):
            assert r.get(key) not in (None, ""), (key, r)
        assert r["principal"] == scenario.DEVELOPER


def test_log_severity_follows_the_outcome_not_the_rule(played) -> None:
    # A closed critical violation must not trip error-rate alerting on Rampart's logs.
    stack, _, _ = played
    lines = stack.log_lines("rampart.remediation")
    closed = [ln for ln in lines if ln["rampart"]["outcome"] in ("remediated", "quarantined")]
    assert any(ln["rampart"]["severity"] == "critical" for ln in closed), lines
    assert {ln["severity"] for ln in closed} == {"NOTICE"}, [(ln["rampart"]["outcome"], ln["severity"]) for ln in closed]


def test_rampart_ignores_its_own_changes(played) -> None:
    stack, _, _ = played
    before = len(stack.records())
    stack.admin.clear_requests()
    # Rampart's own revert comes back as an audit entry made by its service account.
    stack.publish(scenario.replace_service_v1("patient-api", ingress="internal-and-cloud-load-balancing",
                                              principal="rampart-remediator@demo-project.iam.gserviceaccount.com"))
    stack.publish(scenario.replace_service_v1("patient-api", ingress="all",
                                              principal="rampart-remediator@demo-project.iam.gserviceaccount.com"))
    wait_until(lambda: len(stack.log_lines("rampart.ignored")) >= 2, 15, what="both self-changes ignored")
    assert len(stack.records()) == before
    assert [r for r in stack.admin.requests() if r["method"] in ("PATCH", "POST")] == []
