"""deliver() against real receivers on loopback: Slack webhook, aiosmtpd, the Pub/Sub and Firestore emulators."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pytest

from infra.local.emulators import (
    FirestoreEmulator,
    PubSubEmulator,
    create_pull_subscription,
    create_topic,
    pull,
)
from infra.local.receivers import SlackReceiver, SmtpReceiver
from shared.alerts import (
    AlertClaimBusy,
    AlertDeliveryError,
    FirestoreStore,
    MemoryStore,
    dedupe,
    deliver,
    log_record,
)
from shared.alerts import delivery as deliver_mod
from shared.alerts.config import AlertsConfig
from shared.model import Action, Mode, Outcome, Severity
from tests.support.fixtures_local import EMULATOR_PROJECT, log_entries, make_record

pytestmark = pytest.mark.integration

RECIPIENTS = ["oncall@example.com", "security@example.com"]


@dataclass
class Topic:
    path: str
    subscription: str
    host: str

    def messages(self, n: int = 1, timeout: float = 10.0) -> list[Any]:
        got: list[Any] = []
        while len(got) < n:
            batch = pull(self.host, self.subscription, max_messages=n - len(got), timeout=timeout)
            if not batch:
                break
            got += batch
        return got


@pytest.fixture
def topic(pubsub_emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch) -> Topic:
    """A fresh alert topic with a pull subscription; the alert publisher finds the emulator via its env var."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.host)
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    path = create_topic(pubsub_emulator.host, EMULATOR_PROJECT, name)
    sub = create_pull_subscription(pubsub_emulator.host, EMULATOR_PROJECT, f"{name}-sub", name)
    return Topic(path, sub, pubsub_emulator.host)


@pytest.fixture
def firestore_env(firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """FIRESTORE_EMULATOR_HOST set for this test; returns a fresh collection name."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    return f"alerts_{uuid.uuid4().hex[:10]}"


def make_config(
    tmp_path: Path,
    *,
    slack: SlackReceiver | None = None,
    smtp: SmtpReceiver | None = None,
    topic: Topic | None = None,
    **extra: Any,
) -> AlertsConfig:
    """Every configured channel routed for every severity unless `routes` is given; tiny backoff."""
    data: dict[str, Any] = {"retry": {"retries": 2, "backoff_seconds": 0.01, "max_backoff_seconds": 0.02}}
    chans = []
    if slack is not None:
        secret = tmp_path / "slack-webhook"
        secret.write_text(slack.url + "\n")
        data["slack"] = {"webhook_url_file": str(secret), "timeout_seconds": 3}
        chans.append("slack")
    if smtp is not None:
        data["email"] = {
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": "none",
            "sender": "rampart@example.com",
            "recipients": RECIPIENTS,
            "timeout_seconds": 5,
        }
        chans.append("email")
    if topic is not None:
        data["pubsub"] = {"topic": topic.path, "timeout_seconds": 5}
        chans.append("pubsub")
    data["routes"] = {s.value: chans for s in Severity}
    data.update(extra)
    return AlertsConfig.model_validate(data)


def email_parts(mail: Any) -> tuple[str, str]:
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    return text, html


# ---- each channel, through the real client --------------------------------------------------------


def test_slack_receives_block_kit_from_slack_sdk(tmp_path: Path, slack_receiver: SlackReceiver) -> None:
    report = deliver(make_record(), make_config(tmp_path, slack=slack_receiver), MemoryStore())
    assert report.delivered == ["slack"] and report.failed == {}
    (post,) = slack_receiver.wait_for(1)
    assert post.headers["content-type"].startswith("application/json")
    assert "slackclient" in post.headers["user-agent"]
    body = post.body
    assert body["text"].startswith("HIGH run_ingress_open: Cloud Run service opened to all ingress")
    types = [b["type"] for b in body["blocks"]]
    assert types[:3] == ["header", "section", "section"] and types[-1] == "context"
    blob = json.dumps(body, ensure_ascii=False)
    for expected in (
        "Rampart reverted the change: the setting is back to its compliant value.",
        "`alice@example.com`",
        "2026-11-23T08:59:00.123Z",
        "`phi-prod`",
        "`INGRESS_TRAFFIC_ALL` → `INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER`",
        "```gcloud run services update phi-app --region=us-central1 --project=phi-prod --ingress=all```",
        "https://console.cloud.google.com/run/detail/us-central1/phi-app/security?project=phi-prod",
    ):
        assert expected in blob, expected


def test_email_has_text_and_html_parts_and_headers(tmp_path: Path, smtp_receiver: SmtpReceiver) -> None:
    record = make_record(
        rule="kms_version_destroy_scheduled",
        severity=Severity.CRITICAL,
        title="KMS key version scheduled for destruction",
        resource="projects/phi-prod/locations/global/keyRings/phi-ring/cryptoKeys/db-key/cryptoKeyVersions/3",
        resource_type="kms.cryptoKeyVersion",
        action=Action.RESTORE,
        changes=[],
        undo="gcloud kms keys versions destroy 3 --key=db-key --keyring=phi-ring --location=global --project=phi-prod",
    )
    report = deliver(record, make_config(tmp_path, smtp=smtp_receiver), MemoryStore())
    assert report.delivered == ["email"]
    (mail,) = smtp_receiver.wait_for(1)
    msg = mail.message
    assert mail.rcpt_tos == RECIPIENTS and mail.mail_from == "rampart@example.com"
    assert msg["Subject"] == (
        "[Rampart] CRITICAL kms_version_destroy_scheduled: KMS key version scheduled for destruction on "
        "key db-key version 3 (ring phi-ring, global, project phi-prod)"
    )
    assert msg["From"] == "Rampart <rampart@example.com>"
    assert msg["To"] == ", ".join(RECIPIENTS)
    assert msg["X-Rampart-Severity"] == "critical" and msg["X-Rampart-Rule"] == "kms_version_destroy_scheduled"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Message-ID"] and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    text, html = email_parts(mail)
    assert "Rampart undid the change: what it disabled, scheduled for destruction or removed is back" in text
    assert "Undo (DESTRUCTIVE: this undo schedules the key version for destruction again" in text
    assert "https://console.cloud.google.com/security/kms/key/manage/global/phi-ring/db-key?project=phi-prod" in text
    assert record.undo in text
    assert '<a href="https://console.cloud.google.com/security/kms/key/manage/global/phi-ring/db-key' in html
    assert "<pre>gcloud kms keys versions destroy 3" in html


def test_pubsub_alert_json_is_pulled_by_a_real_subscriber(tmp_path: Path, topic: Topic) -> None:
    record = make_record()
    report = deliver(record, make_config(tmp_path, topic=topic), MemoryStore())
    assert report.delivered == ["pubsub"]
    (msg,) = topic.messages(1)
    body = json.loads(msg.data)
    assert body["schema_version"] == 1 and body["type"] == "rampart.alert"
    assert body["alert_id"] == report.alert_id and body["alert_kind"] == "incident"
    assert body["severity"] == "high" and body["occurrences"] == 1
    assert body["console_url"] == "https://console.cloud.google.com/run/detail/us-central1/phi-app/security?project=phi-prod"
    assert body["record"] == json.loads(json.dumps(record.to_dict()))
    assert dict(msg.attributes) == {
        "schema_version": "1", "alert_id": report.alert_id, "alert_kind": "incident", "severity": "high",
        "rule": "run_ingress_open", "outcome": "remediated", "project": "phi-prod",
    }  # fmt: skip


def test_starttls_against_a_server_without_it_fails_without_retrying(
    tmp_path: Path, smtp_receiver: SmtpReceiver
) -> None:
    cfg = make_config(tmp_path, smtp=smtp_receiver)
    assert cfg.email is not None
    cfg = cfg.model_copy(update={"email": cfg.email.model_copy(update={"security": "starttls"})})
    with pytest.raises(AlertDeliveryError) as e:
        deliver(make_record(), cfg, MemoryStore())
    assert e.value.report.attempts == {"email": 1}
    assert "STARTTLS" in e.value.report.failed["email"]
    assert smtp_receiver.mails == []


# ---- routing ---------------------------------------------------------------------------------------


def test_routing_by_severity_and_rule(
    tmp_path: Path, slack_receiver: SlackReceiver, smtp_receiver: SmtpReceiver, topic: Topic
) -> None:
    cfg = make_config(
        tmp_path,
        slack=slack_receiver,
        smtp=smtp_receiver,
        topic=topic,
        routes={"critical": ["slack", "email", "pubsub"], "high": ["slack", "pubsub"], "low": ["pubsub"]},
        rule_routes={"kms_version_destroy_scheduled": ["email"]},
    )
    store = MemoryStore()
    crit = deliver(make_record(event_id="c1", severity=Severity.CRITICAL, resource="projects/p/r/1"), cfg, store)
    low = deliver(make_record(event_id="l1", severity=Severity.LOW, resource="projects/p/r/2"), cfg, store)
    med = deliver(make_record(event_id="m1", severity=Severity.MEDIUM, resource="projects/p/r/3"), cfg, store)
    rule = deliver(make_record(event_id="k1", rule="kms_version_destroy_scheduled", severity=Severity.CRITICAL), cfg, store)
    assert crit.delivered == ["slack", "email", "pubsub"]
    assert low.delivered == ["pubsub"]
    assert med.routed == () and med.delivered == []  # not routed: structured log only
    assert rule.delivered == ["email"]
    assert len(slack_receiver.wait_for(1)) == 1
    assert len(smtp_receiver.wait_for(2)) == 2
    assert len(topic.messages(2)) == 2


def test_no_channels_configured_goes_to_the_log_only(captured_log: io.StringIO) -> None:
    report = deliver(make_record(), AlertsConfig(), MemoryStore())
    assert report.routed == () and report.delivered == [] and report.failed == {}
    (entry,) = [e for e in log_entries(captured_log) if e["message"] == "rampart.alert"]
    assert entry["alert_id"] == report.alert_id and entry["rule"] == "run_ingress_open"
    assert entry["headline"].startswith("HIGH run_ingress_open")


# ---- safe content ----------------------------------------------------------------------------------


def test_hostile_labels_and_principals_are_inert_everywhere(
    tmp_path: Path, slack_receiver: SlackReceiver, smtp_receiver: SmtpReceiver
) -> None:
    record = make_record(
        title="Ingress opened on <!here>\r\nBcc: x@y.example",
        principal="mallory<!channel>@example.com\r\nBcc: x@y.example",
        observed={
            "label:team": "<!channel>",
            "annotation:description": "<https://evil.example|click>",
            "annotation:x": "<script>alert(1)</script>",
        },
        reason="<!subteam^S123> & <@U999>",
        outcome=Outcome.FAILED,
    )
    deliver(record, make_config(tmp_path, slack=slack_receiver, smtp=smtp_receiver), MemoryStore())
    (post,) = slack_receiver.wait_for(1)
    raw_json = json.dumps(post.body)
    for bad in ("<!channel>", "<!here>", "<https://evil", "<script>", "<!subteam", "<@U999>"):
        assert bad not in raw_json, bad
    for link in re.findall(r"<[^>]*>", raw_json):
        assert link.startswith("<https://console.cloud.google.com/"), link
    (mail,) = smtp_receiver.wait_for(1)
    assert mail.rcpt_tos == RECIPIENTS  # no Bcc smuggled into the envelope
    assert mail.message["Bcc"] is None
    assert all("\n" not in v and "\r" not in v for _, v in mail.message.items())
    header_block = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(^|\r\n)Bcc:", header_block)  # folded into Subject, never a header of its own
    _text, html = email_parts(mail)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;https://evil.example|click&gt;" in html
    assert html.count("<a ") == 1


def test_plaintext_credential_alert_and_log_carry_no_secret(
    tmp_path: Path,
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
    topic: Topic,
    monkeypatch: pytest.MonkeyPatch,
    captured_log: io.StringIO,
) -> None:
    secret = "sk_live_51HXr4mPl4nT3dS3cr3tV4lu3"
    monkeypatch.setenv("DB_PASSWORD", secret)
    source_event = {  # what the audit log carried: the plaintext value is in the request
        "protoPayload": {
            "methodName": "google.cloud.run.v1.Services.ReplaceService",
            "request": {"spec": {"template": {"spec": {"containers": [
                {"env": [{"name": "DB_PASSWORD", "value": secret}]}
            ]}}}},
        }
    }  # fmt: skip
    env = source_event["protoPayload"]["request"]["spec"]["template"]["spec"]["containers"][0]["env"]  # type: ignore[index]
    record = make_record(
        rule="run_plaintext_secrets",
        severity=Severity.CRITICAL,
        title="Secret-looking environment variable set in plain text",
        action=Action.ALERT,
        mode=Mode.ALERT,
        outcome=Outcome.ALERTED,
        # What the rule keeps: names only.
        observed={"plaintext_env": [{"container": "app", "name": env[0]["name"], "matched": "name"}]},
        # A careless action might copy the live env into the record: the alert must still not carry it.
        before={"env": env},
        changes=[],
        undo="",
    )
    report = deliver(record, make_config(tmp_path, slack=slack_receiver, smtp=smtp_receiver, topic=topic), MemoryStore())
    log_record(record)
    assert report.delivered == ["slack", "email", "pubsub"]
    (post,) = slack_receiver.wait_for(1)
    (mail,) = smtp_receiver.wait_for(1)
    (msg,) = topic.messages(1)
    outputs = {
        "slack": json.dumps(post.body),
        "email": mail.raw.decode(errors="replace"),
        "email-decoded": "".join(email_parts(mail)),
        "pubsub": msg.data.decode() + json.dumps(dict(msg.attributes)),
        "log": captured_log.getvalue(),
    }
    for where, text in outputs.items():
        assert secret not in text, where
        assert "DB_PASSWORD" in text or where == "email", where  # the name is there, so on-call knows which
    assert "DB_PASSWORD" in outputs["email-decoded"]


# ---- failures, retries, redelivery -----------------------------------------------------------------


def test_transient_failures_are_retried(
    tmp_path: Path, slack_receiver: SlackReceiver, smtp_receiver: SmtpReceiver, captured_log: io.StringIO
) -> None:
    slack_receiver.fail_next(1, 500)
    smtp_receiver.reject_next(2)
    report = deliver(make_record(), make_config(tmp_path, slack=slack_receiver, smtp=smtp_receiver), MemoryStore())
    assert report.delivered == ["slack", "email"] and report.failed == {}
    assert report.attempts == {"slack": 2, "email": 3}
    assert slack_receiver.attempts == 2 and smtp_receiver.attempts == 3
    retries = [e for e in log_entries(captured_log) if e["message"] == "rampart.alert.retry"]
    assert [(e["channel"], e["attempt"]) for e in retries] == [("slack", 1), ("email", 1), ("email", 2)]


def test_failed_channel_is_retried_then_reported_on_the_others(
    tmp_path: Path,
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
    topic: Topic,
    captured_log: io.StringIO,
) -> None:
    slack_receiver.fail_next(3, 500)
    cfg = make_config(tmp_path, slack=slack_receiver, smtp=smtp_receiver, topic=topic)
    store, record = MemoryStore(), make_record()
    with pytest.raises(AlertDeliveryError, match="still missing on slack") as e:  # so Pub/Sub redelivers
        deliver(record, cfg, store)
    report = e.value.report
    assert report.delivered == ["email", "pubsub"]
    assert report.failed == {"slack": "Slack answered HTTP 500 'internal_error'"}
    assert report.attempts["slack"] == 3 and slack_receiver.attempts == 3
    note = "Slack delivery failed after 3 attempt(s): Slack answered HTTP 500 'internal_error'; Rampart keeps trying"
    text, html = email_parts(smtp_receiver.wait_for(1)[0])
    assert note in text and html_escape(note) in html
    assert json.loads(topic.messages(1)[0].data)["delivery_notes"] == [note]
    (failed,) = [e for e in log_entries(captured_log) if e["message"] == "rampart.alert.channel_failed"]
    assert failed["severity"] == "ERROR" and failed["channel"] == "slack" and failed["attempts"] == 3

    # The redelivery, once Slack is back: Slack gets the alert, the others do not get it twice.
    again = deliver(record, cfg, store)
    assert again.delivered == ["slack"] and again.already_delivered == ["email", "pubsub"]
    assert "Delivered late (attempt 2)" in json.dumps(slack_receiver.wait_for(1)[0].body)
    assert len(smtp_receiver.mails) == 1 and len(topic.messages(2, timeout=1)) == 0
    assert deliver(record, cfg, store).duplicate


def test_a_channel_failing_after_others_sent_gets_a_follow_up(
    tmp_path: Path, slack_receiver: SlackReceiver, smtp_receiver: SmtpReceiver
) -> None:
    smtp_receiver.reject_next(3)
    with pytest.raises(AlertDeliveryError) as e:  # e-mail failed transiently: redelivered later
        deliver(make_record(), make_config(tmp_path, slack=slack_receiver, smtp=smtp_receiver), MemoryStore())
    report = e.value.report
    assert report.delivered == ["slack"] and set(report.failed) == {"email"}
    alert, notice = slack_receiver.wait_for(2)
    assert alert.body["blocks"][0]["type"] == "header"
    assert "E-mail delivery failed after 3 attempt(s)" in notice.body["text"]
    assert report.alert_id in notice.body["text"]


def test_permanent_failure_is_not_retried_and_the_webhook_url_never_leaks(
    tmp_path: Path, slack_receiver: SlackReceiver, smtp_receiver: SmtpReceiver, captured_log: io.StringIO
) -> None:
    cfg = make_config(tmp_path, slack=slack_receiver, smtp=smtp_receiver)
    slack_receiver.fail_next(1, 404, f"no_service for {slack_receiver.token_path}")
    r1 = deliver(make_record(event_id="p1"), cfg, MemoryStore())
    assert r1.attempts["slack"] == 1 and "HTTP 404" in r1.failed["slack"]
    slack_receiver.set_down(True)
    with pytest.raises(AlertDeliveryError) as e:  # unreachable is transient: redelivered later
        deliver(make_record(event_id="p2"), cfg, MemoryStore())
    r2 = e.value.report
    assert r2.attempts["slack"] == 3 and "unreachable" in r2.failed["slack"]
    token = slack_receiver.token_path.rsplit("/", 1)[1]
    mails = smtp_receiver.wait_for(2)
    seen = [json.dumps(r1.to_dict()), json.dumps(r2.to_dict()), captured_log.getvalue()]
    seen += [m.raw.decode(errors="replace") for m in mails]
    for text in seen:
        assert token not in text and slack_receiver.url not in text


def test_all_channels_failing_raises_then_redelivery_sends_once(
    tmp_path: Path,
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
    topic: Topic,
    firestore_env: str,
    captured_log: io.StringIO,
) -> None:
    cfg = make_config(tmp_path, slack=slack_receiver, smtp=smtp_receiver, topic=topic)
    missing_topic = cfg.model_copy(update={"pubsub": cfg.pubsub.model_copy(update={"topic": topic.path + "-gone"})})  # type: ignore[union-attr]
    instance_a = FirestoreStore(firestore_env, project=EMULATOR_PROJECT)
    instance_b = FirestoreStore(firestore_env, project=EMULATOR_PROJECT)
    record = make_record()

    slack_receiver.set_down(True)
    smtp_receiver.reject_next(3)
    with pytest.raises(AlertDeliveryError) as e:
        deliver(record, missing_topic, instance_a)
    assert set(e.value.report.failed) == {"slack", "email", "pubsub"}
    assert "Pub/Sub refused" in e.value.report.failed["pubsub"]  # NotFound: permanent, one attempt
    assert e.value.report.attempts == {"slack": 3, "email": 3, "pubsub": 1}
    assert any(x["message"] == "rampart.alert.undelivered" for x in log_entries(captured_log))

    slack_receiver.set_down(False)
    redelivered = deliver(record, cfg, instance_b)  # Pub/Sub redelivers to another instance
    assert redelivered.delivered == ["slack", "email", "pubsub"]
    assert "Delivered late (attempt 2)" in json.dumps(slack_receiver.wait_for(1)[0].body)

    again = deliver(record, cfg, instance_a)
    assert again.duplicate and again.delivered == []
    assert again.already_delivered == ["email", "pubsub", "slack"]
    assert len(slack_receiver.posts) == 1 and len(smtp_receiver.mails) == 1 and len(topic.messages(2, timeout=2)) == 1


def test_instance_dying_mid_delivery_resumes_without_resending(
    tmp_path: Path,
    slack_receiver: SlackReceiver,
    smtp_receiver: SmtpReceiver,
    firestore_env: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = make_config(tmp_path, slack=slack_receiver, smtp=smtp_receiver)
    record = make_record()
    now = [1_800_000_000.0]

    def crash(*_: Any) -> None:
        raise KeyboardInterrupt  # a BaseException: like SIGKILL, nothing in deliver() gets to clean up

    with monkeypatch.context() as m:
        m.setitem(deliver_mod._SENDERS, "email", crash)
        with pytest.raises(KeyboardInterrupt):
            deliver(record, cfg, FirestoreStore(firestore_env, project=EMULATOR_PROJECT), clock=lambda: now[0])
    assert len(slack_receiver.wait_for(1)) == 1

    other = FirestoreStore(firestore_env, project=EMULATOR_PROJECT)
    now[0] += 5  # redelivered while the dead holder's lease still runs: not ours to send
    with pytest.raises(AlertClaimBusy):
        deliver(record, cfg, other, clock=lambda: now[0])
    now[0] += cfg.dedupe.lease_seconds
    resumed = deliver(record, cfg, other, clock=lambda: now[0])
    assert resumed.already_delivered == ["slack"] and resumed.delivered == ["email"]
    assert len(slack_receiver.posts) == 1 and len(smtp_receiver.wait_for(1)) == 1


def test_repeats_on_one_resource_escalate_once(
    tmp_path: Path, slack_receiver: SlackReceiver, smtp_receiver: SmtpReceiver, firestore_env: str
) -> None:
    cfg = make_config(
        tmp_path,
        slack=slack_receiver,
        smtp=smtp_receiver,
        routes={"high": ["slack"], "critical": ["slack", "email"]},
        dedupe={"window_seconds": 600, "escalate_after": 3},
    )
    store = FirestoreStore(firestore_env, project=EMULATOR_PROJECT)
    now = 1_800_000_000.0
    reports = [deliver(make_record(event_id=f"e{i}"), cfg, store, clock=lambda i=i: now + i) for i in range(6)]
    assert [(r.kind, r.suppressed, r.escalated, r.occurrences) for r in reports] == [
        ("incident", False, False, 1),
        (None, True, False, 2),
        (None, True, False, 3),
        ("escalation", False, True, 4),
        (None, True, False, 5),
        (None, True, False, 6),
    ]
    assert reports[3].severity == "critical" and reports[3].delivered == ["slack", "email"]
    first, escalation = slack_receiver.wait_for(2)
    assert first.body["blocks"][0]["text"]["text"].startswith("HIGH")
    assert escalation.body["blocks"][0]["text"]["text"].startswith("Escalated: CRITICAL")
    assert "Fired 4 times on this resource within 10 min" in json.dumps(escalation.body)
    (mail,) = smtp_receiver.wait_for(1)
    assert mail.message["Subject"].startswith("[Rampart] ESCALATED CRITICAL run_ingress_open")
    later = deliver(make_record(event_id="e-late"), cfg, store, clock=lambda: now + 600)
    assert later.kind == "incident" and later.occurrences == 1
    assert len(slack_receiver.wait_for(3)) == 3


def test_dedupe_store_down_fails_open(
    tmp_path: Path, slack_receiver: SlackReceiver, monkeypatch: pytest.MonkeyPatch, captured_log: io.StringIO
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")  # nothing listens there
    store = FirestoreStore("alerts_down", project=EMULATOR_PROJECT, timeout=0.5)
    report = deliver(make_record(), make_config(tmp_path, slack=slack_receiver), store)
    assert report.dedupe_unavailable and report.delivered == ["slack"]
    assert any(e["message"] == "rampart.alert.dedupe_unavailable" for e in log_entries(captured_log))


@pytest.fixture
def _no_leftover_state() -> Iterator[None]:
    yield
    dedupe._stores.clear()


def test_default_store_dedupes_within_a_process(
    tmp_path: Path, slack_receiver: SlackReceiver, _no_leftover_state: None
) -> None:
    cfg = make_config(tmp_path, slack=slack_receiver, dedupe={"collection": f"c{uuid.uuid4().hex[:8]}"})
    assert deliver(make_record(), cfg).delivered == ["slack"]
    assert deliver(make_record(), cfg).duplicate
    assert len(slack_receiver.posts) == 1
