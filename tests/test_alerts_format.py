"""Alert content: console links, escaping of untrusted text, redaction, and the remediation log record."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest

from shared.alerts import format as fmt
from shared.alerts import log_record
from shared.alerts.audit import log_severity
from shared.model import Action, Change, Mode, Outcome, Severity
from tests.support.fixtures_local import log_entries, make_record

HOSTILE = {
    "label:team": "<!channel> ping",
    "annotation:run.googleapis.com/description": "<https://evil.example/login|click here to fix>",
    "annotation:x": "<script>alert(1)</script> & @here",
}


def hostile_record() -> Any:
    return make_record(
        title="Ingress opened on <!here>\r\nBcc: x@y.example",
        principal="mallory<!channel>@example.com",
        observed=HOSTILE,
        reason="<@U012345> said so & <#C999|general>",
        changes=[Change("labels.team", "<https://evil.example|ok>", "<script>x</script>")],
        undo="gcloud run services update phi-app --update-labels=team='```<!channel>'",
        outcome=Outcome.FAILED,
    )


def alert_for(record: Any, **kw: Any) -> fmt.Alert:
    rec = fmt.record_fields(record)
    return fmt.Alert(alert_id="a" * 24, kind="incident", record=rec, severity=record.effective_severity, **kw)


# ---- console links ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        (
            "projects/phi-prod/locations/us-central1/services/phi-app",
            "https://console.cloud.google.com/run/detail/us-central1/phi-app/security?project=phi-prod",
        ),
        (
            "projects/phi-prod/locations/global/keyRings/phi-ring/cryptoKeys/db-key",
            "https://console.cloud.google.com/security/kms/key/manage/global/phi-ring/db-key?project=phi-prod",
        ),
        (
            "projects/phi-prod/locations/us-east1/keyRings/ring_1/cryptoKeys/k/cryptoKeyVersions/3",
            "https://console.cloud.google.com/security/kms/key/manage/us-east1/ring_1/k?project=phi-prod",
        ),
        (
            "projects/phi-prod/locations/us/keyRings/ring",
            "https://console.cloud.google.com/security/kms/keyring/manage/us/ring/key?project=phi-prod",
        ),
        ("projects/p/locations/l/services/a|b>", None),
        ("projects/p/locations/l/services/s/../../x", None),
        ("//evil.example/x", None),
    ],
)
def test_console_url(resource: str, url: str | None) -> None:
    assert fmt.console_url(resource) == url


# ---- escaping --------------------------------------------------------------------------------------


def all_slack_text(payload: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if isinstance(v.get("text"), str):
                out.append(v["text"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(payload)
    return out


def test_slack_escape() -> None:
    assert fmt.slack_escape("<!channel> & <https://evil|click>") == "&lt;!channel&gt; &amp; &lt;https[:]//evil|click&gt;"
    assert "@here" not in fmt.slack_escape("hi @here and @channel")


def test_slack_message_has_no_live_mention_or_foreign_link() -> None:
    payload = fmt.slack_message(alert_for(hostile_record()))
    texts = all_slack_text(payload)
    assert texts, payload
    for text in texts:
        # The only <...> Slack may interpret is our own console link.
        for token in re.findall(r"<[^>]*>", text):
            assert token.startswith("<https://console.cloud.google.com/run/detail/"), token
        assert "<!" not in text and "<@" not in text and "<#" not in text
        assert "<script" not in text
    blob = json.dumps(payload)
    assert "&lt;!channel&gt;" in blob
    assert "&lt;https://evil.example/login|click here to fix&gt;" in blob
    assert "&lt;script&gt;" in blob
    # The undo command's code block cannot be closed early by a ``` in a label value.
    undo = next(t for t in texts if t.startswith("*Undo*"))
    assert undo.count("```") == 2


def test_slack_message_blocks_describe_the_incident() -> None:
    payload = fmt.slack_message(alert_for(make_record()))
    assert payload["text"].startswith(
        "HIGH run_ingress_open: Cloud Run service opened to all ingress on service phi-app (us-central1, project phi-prod)")
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[1]["text"]["text"] == "*Rampart reverted the change: the setting is back to its compliant value.*"
    fields = {f["text"].split("\n", 1)[0]: f["text"].split("\n", 1)[1] for f in blocks[2]["fields"]}
    assert set(fields) == {"*Rule*", "*Severity*", "*Resource*", "*Project*", "*Who*", "*When*", "*Mode*", "*Outcome*"}
    assert "`alice@example.com`" in fields["*Who*"]
    assert (
        "<https://console.cloud.google.com/run/detail/us-central1/phi-app/security?project=phi-prod"
        "|Open in Cloud Console>" in fields["*Resource*"]
    )
    text = json.dumps(blocks, ensure_ascii=False)
    assert "`INGRESS_TRAFFIC_ALL` → `INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER`" in text
    assert "```gcloud run services update phi-app --region=us-central1 --project=phi-prod --ingress=all```" in text


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"outcome": Outcome.REMEDIATED}, "Rampart reverted the change: the setting is back"),
        # "restored the change" read as if Rampart had put the violation back.
        ({"outcome": Outcome.REMEDIATED, "action": Action.RESTORE}, "Rampart undid the change: what it disabled"),
        ({"outcome": Outcome.QUARANTINED, "action": Action.QUARANTINE},
         "Rampart quarantined the service: direct and load-balancer traffic to it is now cut off"),
        ({"outcome": Outcome.DRY_RUN, "mode": Mode.DRY_RUN}, "Dry-run: Rampart would have reverted this"),
        ({"outcome": Outcome.FAILED, "reason": "PERMISSION_DENIED run.services.update"}, "FAILED: PERMISSION_DENIED"),
        ({"outcome": Outcome.ALERTED, "mode": Mode.ALERT}, "Alert only (mode alert)"),
    ],
)
def test_what_rampart_did(kw: dict[str, Any], expected: str) -> None:
    assert expected in fmt.what_rampart_did(make_record(**kw).to_dict())


KMS_VERSION = "projects/kms-prod/locations/us-east1/keyRings/phi-ring/cryptoKeys/phi-key/cryptoKeyVersions/1"


def test_kms_alert_subject_names_key_ring_and_project() -> None:
    rec = make_record(rule="kms_version_disabled", title="CMEK key version disabled", resource=KMS_VERSION,
                      resource_type="kms.version", project="kms-prod", location="us-east1", action=Action.RESTORE)
    subject = fmt.email_subject(alert_for(rec), "[Rampart]")
    assert "key phi-key version 1 (ring phi-ring, us-east1, project kms-prod)" in subject, subject
    assert "on cryptoKeyVersions/1" not in subject
    assert "key phi-key (ring phi-ring" in fmt.short_resource(KMS_VERSION.rsplit("/", 2)[0])


def test_quarantine_alert_says_what_is_cut_off_and_how_to_fix_the_cause() -> None:
    rec = make_record(rule="run_default_service_account", outcome=Outcome.QUARANTINED, action=Action.QUARANTINE,
                      undo="python main.py release projects/phi-prod/locations/us-central1/services/phi-app")
    alert = alert_for(rec)
    for text in (fmt.email_text(alert), json.dumps(fmt.slack_message(alert)), fmt.pubsub_message(alert)[0].decode()):
        assert "direct and load-balancer traffic to it is now cut off" in text
        assert "dedicated service account" in text and "python main.py release" in text
    region = fmt.what_rampart_did(make_record(rule="run_unapproved_region", outcome=Outcome.QUARANTINED,
                                              action=Action.QUARANTINE).to_dict())
    assert "approved region" in region


def test_undo_that_destroys_a_key_version_is_labelled_destructive() -> None:
    undo = ("gcloud kms keys versions disable 1 --key=phi-key --keyring=phi-ring --location=us-east1 --project=kms-prod"
            " && gcloud kms keys versions destroy 1 --key=phi-key --keyring=phi-ring --location=us-east1"
            " --project=kms-prod  # add an exemption first")
    rec = make_record(rule="kms_version_destroy_scheduled", resource=KMS_VERSION, action=Action.RESTORE, undo=undo)
    alert = alert_for(rec)
    assert "Undo (DESTRUCTIVE: this undo schedules the key version for destruction again" in fmt.email_text(alert)
    assert "<h3>Undo: destructive</h3>" in fmt.email_html(alert)
    slack = next(t for t in all_slack_text(fmt.slack_message(alert)) if t.startswith("*Undo*"))
    assert "DESTRUCTIVE" in slack
    body = json.loads(fmt.pubsub_message(alert)[0])
    assert body["undo_warning"].startswith("DESTRUCTIVE")
    # An ordinary undo carries no warning.
    plain = alert_for(make_record())
    assert "DESTRUCTIVE" not in fmt.email_text(plain) and json.loads(fmt.pubsub_message(plain)[0])["undo_warning"] is None


def test_email_parts_escape_html_and_keep_headers_single_line() -> None:
    alert = alert_for(hostile_record())
    subject = fmt.email_subject(alert, "[Rampart]")
    assert "\r" not in subject and "\n" not in subject
    assert "Bcc: x@y.example" in subject  # inert text inside the one Subject line
    html_part = fmt.email_html(alert)
    assert "<script>" not in html_part and "&lt;script&gt;" in html_part
    assert "&lt;!channel&gt;" in html_part
    assert 'href="https://console.cloud.google.com/run/detail/us-central1/phi-app/security?project=phi-prod"' in html_part
    assert html_part.count("<a ") == 1  # only our console link is a link


def test_escalation_raises_severity_one_step_and_says_how_many_times() -> None:
    assert fmt.raise_severity(Severity.LOW) is Severity.MEDIUM
    assert fmt.raise_severity(Severity.HIGH) is Severity.CRITICAL
    assert fmt.raise_severity(Severity.CRITICAL) is Severity.CRITICAL
    rec = fmt.record_fields(make_record())
    alert = fmt.Alert("b" * 24, "escalation", rec, Severity.CRITICAL, occurrences=6, window_seconds=3600)
    text = fmt.email_text(alert)
    assert "Fired 6 times on this resource within 60 min" in text
    assert "raised from high to critical" in text
    assert fmt.headline(alert).startswith("ESCALATED CRITICAL run_ingress_open")


# ---- Pub/Sub message -------------------------------------------------------------------------------


def test_pubsub_message_schema() -> None:
    record = make_record()
    alert = alert_for(record, notes=("Slack delivery failed after 3 attempt(s): HTTP 500",))
    data, attrs = fmt.pubsub_message(alert)
    body = json.loads(data)
    assert set(body) == {
        "schema_version", "type", "alert_id", "alert_kind", "severity", "headline", "what_rampart_did",
        "undo_warning", "console_url", "occurrences", "window_seconds", "delivery_notes", "sent_at", "record",
    }  # fmt: skip
    assert body["schema_version"] == 1 and body["type"] == "rampart.alert"
    assert body["record"] == json.loads(json.dumps(record.to_dict()))
    assert body["delivery_notes"] == ["Slack delivery failed after 3 attempt(s): HTTP 500"]
    assert attrs == {
        "schema_version": "1", "alert_id": "a" * 24, "alert_kind": "incident", "severity": "high",
        "rule": "run_ingress_open", "outcome": "remediated", "project": "phi-prod",
    }  # fmt: skip


# ---- redaction and the remediation record ------------------------------------------------------------


def test_secret_values_in_a_record_are_redacted() -> None:
    record = make_record(
        before={"env": [{"name": "DB_PASSWORD", "value": "hunter2-secret"}], "api_key": "AIzaSyFAKE"},
        observed={"env_var": "DB_PASSWORD"},
    )
    rec = fmt.record_fields(record)
    blob = json.dumps(rec)
    assert "hunter2-secret" not in blob and "AIzaSyFAKE" not in blob
    assert rec["before"]["env"] == [{"name": "DB_PASSWORD", "value": fmt.REDACTED}]
    assert rec["observed"] == {"env_var": "DB_PASSWORD"}


def test_log_record_writes_every_field_under_a_stable_key(captured_log: io.StringIO) -> None:
    record = make_record()
    log_record(record)
    (entry,) = log_entries(captured_log)
    assert entry["severity"] == "NOTICE"  # a high finding, closed: not an error
    assert entry["message"] == "rampart.remediation"
    assert entry["rampart"] == json.loads(json.dumps(record.to_dict()))
    assert entry["logging.googleapis.com/labels"] == {
        "rampart_rule": "run_ingress_open",
        "rampart_outcome": "remediated",
        "rampart_severity": "high",
        "rampart_mode": "enforce",
    }


@pytest.mark.parametrize(
    ("kw", "severity"),
    [
        # A closed violation is not an error, whatever the rule's severity (first-use defect).
        ({"severity": Severity.LOW}, "NOTICE"),
        ({"severity": Severity.CRITICAL}, "NOTICE"),
        ({"severity": Severity.CRITICAL, "outcome": Outcome.QUARANTINED}, "NOTICE"),
        ({"severity": Severity.CRITICAL, "outcome": Outcome.ALERTED}, "WARNING"),
        ({"severity": Severity.CRITICAL, "outcome": Outcome.DRY_RUN}, "WARNING"),
        ({"severity": Severity.LOW, "outcome": Outcome.FAILED}, "ERROR"),
        ({"severity": Severity.CRITICAL, "outcome": Outcome.FAILED}, "ERROR"),
        ({"outcome": Outcome.ALREADY_COMPLIANT}, "INFO"),
        ({"outcome": Outcome.EXEMPT}, "INFO"),
        ({"outcome": Outcome.NOT_FOUND}, "INFO"),
    ],
)
def test_log_severity(kw: dict[str, Any], severity: str) -> None:
    assert log_severity(make_record(**kw)) == severity


def test_enrichment_context_is_shown() -> None:
    record = make_record(after={"context": {"dependent_services": ["projects/p/locations/l/services/<!here>"]}})
    alert = alert_for(record)
    slack = json.dumps(fmt.slack_message(alert))
    assert "*Context*" in slack and "dependent_services" in slack and "&lt;!here&gt;" in slack
    assert "Context:\n  - dependent_services:" in fmt.email_text(alert)
    assert "<h3>Context</h3>" in fmt.email_html(alert)
