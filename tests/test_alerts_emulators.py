"""The local emulators and receivers the alert tests run against: install hints, process groups, failure modes."""

from __future__ import annotations

import os
import smtplib
import urllib.error
from pathlib import Path

import pytest
from slack_sdk.webhook import WebhookClient

from infra.local.emulators import EmulatorMissing, FirestoreEmulator, PubSubEmulator
from infra.local.procs import http_ok
from infra.local.receivers import SlackReceiver, SmtpReceiver

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("cls", [PubSubEmulator, FirestoreEmulator])
def test_missing_gcloud_says_how_to_install_it(
    cls: type[PubSubEmulator | FirestoreEmulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: no gcloud, no java
    emu = cls()
    with pytest.raises(EmulatorMissing) as e:
        emu.start()
    msg = str(e.value)
    assert "apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator" in msg
    assert "google-cloud-cli-firestore-emulator" in msg and "openjdk-17" in msg
    assert emu.proc is None


def test_missing_component_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = tmp_path / "google-cloud-sdk"
    (sdk / "bin").mkdir(parents=True)
    (sdk / "platform").mkdir()
    for tool in ("gcloud", "java"):
        path = sdk / "bin" / tool
        path.write_text("#!/bin/sh\nexit 1\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", str(sdk / "bin"))
    with pytest.raises(EmulatorMissing, match=r"platform/pubsub-emulator; found no such directory.*apt-get install"):
        PubSubEmulator().start()


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    emu = PubSubEmulator("rampart-stop", log_path=tmp_path / "emulator.log").start()
    assert emu.proc is not None and emu.proc.pid is not None
    pgid = emu.proc.pid
    assert http_ok(f"http://{emu.host}/")
    assert emu.env() == {"PUBSUB_EMULATOR_HOST": emu.host} and emu.host.startswith("127.0.0.1:")
    emu.stop()
    assert not http_ok(f"http://{emu.host}/")
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)  # nothing left in the group: the Java child went with the wrapper


def test_slack_receiver_answers_like_slack_and_fails_on_demand() -> None:
    with SlackReceiver() as slack:
        client = WebhookClient(slack.url, retry_handlers=[])
        ok = client.send(text="hello", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}])
        assert (ok.status_code, ok.body) == (200, "ok")
        slack.fail_next(2, 500)
        assert client.send(text="x").status_code == 500
        assert client.send(text="x").status_code == 500
        assert WebhookClient(slack.url.rsplit("/", 1)[0] + "/wrong", retry_handlers=[]).send(text="x").status_code == 404
        assert [p.body["text"] for p in slack.wait_for(1)] == ["hello"]
        slack.set_down(True)
        with pytest.raises(urllib.error.URLError):
            client.send(text="x")
        slack.set_down(False)
        assert client.send(text="back").status_code == 200
        assert [p.body["text"] for p in slack.wait_for(2)] == ["hello", "back"]
        assert slack.attempts == 5


def test_smtp_receiver_parses_and_rejects_on_demand() -> None:
    with SmtpReceiver() as smtp:
        smtp.reject_next(1)
        with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPDataError) as e:
                client.sendmail("a@example.com", ["b@example.com"], b"Subject: one\r\n\r\nbody\r\n")
            assert e.value.smtp_code == 451
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: two\r\n\r\nbody\r\n")
        (mail,) = smtp.wait_for(1)
        assert mail.message["Subject"] == "two" and mail.rcpt_tos == ["b@example.com"]
        with pytest.raises(TimeoutError, match=r"expected 2 e-mails within 0\.1s; found 1"):
            smtp.wait_for(2, timeout=0.1)
