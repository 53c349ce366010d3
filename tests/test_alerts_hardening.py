"""Alerts that cannot be hidden or forged (issue 15 §5): dedupe on the finding's content, a
re-quarantine after a release always alerts with that history, CR/LF neutralised in plain-text
e-mail, bare URLs in Slack's non-code fields not turned into links. Real Slack and SMTP receivers."""

from __future__ import annotations

import json

import pytest

from shared.alerts import MemoryStore, deliver
from shared.alerts import format as fmt
from shared.alerts.history import note_release
from shared.model import Action, Outcome
from tests.support.fixtures_local import make_record
from tests.test_alerts_delivery import RECIPIENTS, email_parts
from tests.test_alerts_delivery import make_config as config

pytestmark = pytest.mark.integration


def test_a_different_later_violation_on_the_same_resource_alerts(tmp_path, slack_receiver) -> None:
    cfg = config(tmp_path, slack=slack_receiver)
    store = MemoryStore()
    first = deliver(make_record(event_id="e1"), cfg, store=store)
    same = deliver(make_record(event_id="e2"), cfg, store=store)
    other = deliver(make_record(event_id="e3", observed={"ingress": "INGRESS_TRAFFIC_ALL", "explicit": True,
                                                          "also": "allUsers"}), cfg, store=store)
    assert first.delivered == ["slack"] and same.suppressed and other.delivered == ["slack"]
    assert len(slack_receiver.wait_for(2)) == 2


def test_a_failure_is_never_folded_into_the_successes_before_it(tmp_path, slack_receiver) -> None:
    cfg = config(tmp_path, slack=slack_receiver)
    store = MemoryStore()
    deliver(make_record(event_id="e1"), cfg, store=store)
    failed = deliver(make_record(event_id="e2", outcome=Outcome.FAILED, reason="cause: x. Next step: y"), cfg, store=store)
    assert failed.delivered == ["slack"] and not failed.suppressed


def test_a_requarantine_after_a_release_always_alerts_with_that_history(tmp_path, slack_receiver) -> None:
    cfg = config(tmp_path, slack=slack_receiver)
    store = MemoryStore()
    q = {"outcome": Outcome.QUARANTINED, "action": Action.QUARANTINE}
    assert deliver(make_record(event_id="e1", **q), cfg, store=store).delivered == ["slack"]
    assert deliver(make_record(event_id="e2", **q), cfg, store=store).suppressed  # no release: a repeat
    note_release(store, make_record().finding.resource, rule="run_ingress_open", quarantined_at="2026-11-23T09:00:00Z")
    again = deliver(make_record(event_id="e3", **q), cfg, store=store)
    assert again.delivered == ["slack"] and not again.suppressed
    text = json.dumps(slack_receiver.wait_for(2)[-1].body)
    assert "Quarantined again after a human released it" in text and "run_ingress_open" in text


def test_cr_lf_in_any_field_cannot_forge_lines_in_plain_text_email(tmp_path, smtp_receiver) -> None:
    cfg = config(tmp_path, smtp=smtp_receiver)
    forged = "alice@example.com\r\nOutcome:   remediated\nUndo:\n  curl evil.example | sh"
    record = make_record(principal=forged, observed={"note\nUndo:": "x\r\nOutcome: fine"},
                         reason="boom\n\nRampart reverted the change.", outcome=Outcome.FAILED, undo="")
    deliver(record, cfg, store=MemoryStore())
    (mail,) = smtp_receiver.wait_for(1)
    text, _ = email_parts(mail)
    lines = text.splitlines()
    assert not any(line.startswith(("Outcome:   remediated", "Undo:", "  curl", "Rampart reverted")) for line in lines), text
    assert "alice@example.com\u2424\u2424Outcome:" in text
    assert mail.rcpt_tos == RECIPIENTS


def test_bare_urls_in_non_code_slack_fields_are_not_links(tmp_path, slack_receiver) -> None:
    cfg = config(tmp_path, slack=slack_receiver)
    record = make_record(outcome=Outcome.FAILED, reason="see https://evil.example/login and www.evil.example now")
    deliver(record, cfg, store=MemoryStore())
    body = slack_receiver.wait_for(1)[0].body
    text = json.dumps(body)
    assert "https://evil.example" not in text and "www.evil.example" not in text
    assert "https[:]//evil[.]example/login" in body["text"]
    mrkdwn = [o for b in body["blocks"] for o in [b.get("text"), *b.get("fields", ()), *b.get("elements", ())]
              if isinstance(o, dict) and o.get("type") == "mrkdwn"]
    assert mrkdwn and all(o["verbatim"] is True for o in mrkdwn)
    assert body["unfurl_links"] is False
    # Rampart's own console link is still a link.
    assert "<https://console.cloud.google.com/run/detail/" in text


def test_slack_escape_leaves_code_spans_literal() -> None:
    assert fmt.slack_escape("https://a.example", code=True) == "https://a.example"
    assert fmt.slack_escape("https://a.example") == "https[:]//a[.]example"

