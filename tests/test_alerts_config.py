"""AlertsConfig: bounds, defaults, routing, and pydantic kept off the cold path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from shared.alerts.config import AlertsConfig
from shared.model import Severity

ROOT = Path(__file__).resolve().parent.parent

SLACK = {"webhook_url_file": "/secrets/slack-webhook"}
EMAIL = {"host": "smtp.example.com", "sender": "rampart@example.com", "recipients": ["oncall@example.com"]}
PUBSUB = {"topic": "projects/sec-prod/topics/rampart-alerts"}


def test_defaults_need_no_channel_and_route_nowhere() -> None:
    cfg = AlertsConfig()
    assert cfg.configured() == ()
    for sev in Severity:
        assert cfg.channels_for("any_rule", sev) == ()
    assert cfg.dedupe.store == "memory"
    assert cfg.retry.retries == 2


def test_default_routes_drop_unconfigured_channels() -> None:
    cfg = AlertsConfig(slack=SLACK, pubsub=PUBSUB)
    assert cfg.channels_for("r", Severity.CRITICAL) == ("slack", "pubsub")
    assert cfg.channels_for("r", Severity.HIGH) == ("slack", "pubsub")
    assert cfg.channels_for("r", Severity.LOW) == ("pubsub",)


def test_rule_routes_override_severity_routes() -> None:
    cfg = AlertsConfig(
        slack=SLACK,
        email=EMAIL,
        pubsub=PUBSUB,
        routes={"critical": ["slack", "email", "pubsub"], "high": ["slack"], "medium": ["pubsub"]},
        rule_routes={"kms_version_destroy_scheduled": ["email"], "noisy_rule": []},
    )
    assert cfg.channels_for("run_ingress_open", Severity.HIGH) == ("slack",)
    assert cfg.channels_for("run_ingress_open", Severity.LOW) == ()  # not listed: structured log only
    assert cfg.channels_for("kms_version_destroy_scheduled", Severity.CRITICAL) == ("email",)
    assert cfg.channels_for("noisy_rule", Severity.CRITICAL) == ()


def test_policy_yaml_section_loads() -> None:
    text = """
slack: {webhook_url_file: /secrets/slack-webhook}
email:
  host: smtp.example.com
  port: 465
  security: tls
  user: rampart
  password_file: /secrets/smtp-password
  sender: rampart@example.com
  recipients: [oncall@example.com, security@example.com]
pubsub: {topic: projects/sec-prod/topics/rampart-alerts}
routes: {critical: [slack, email, pubsub], high: [slack, pubsub], medium: [pubsub], low: [pubsub]}
rule_routes: {run_public_invoker: [slack, email, pubsub]}
retry: {retries: 3, backoff_seconds: 1, max_backoff_seconds: 8}
dedupe: {store: firestore, project: sec-prod, collection: rampart_alerts, window_seconds: 1800, escalate_after: 3}
"""
    cfg = AlertsConfig.model_validate(yaml.safe_load(text))
    assert cfg.email is not None and cfg.email.security == "tls" and cfg.email.port == 465
    assert cfg.routes[Severity.CRITICAL] == ("slack", "email", "pubsub")
    assert cfg.dedupe.window_seconds == 1800


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"routes": {"critical": ["slack"]}}, "alerts.slack is not configured"),
        ({"rule_routes": {"r": ["email"]}}, "alerts.email is not configured"),
        ({"pubsub": PUBSUB, "routes": {"low": ["pubsub", "pubsub"]}}, "lists a channel twice"),
        ({"routes": {"urgent": []}}, "routes.urgent"),
        ({"routes": {"low": ["teams"]}}, "slack"),
        ({"slack": {"webhook_url": "https://hooks.slack.com/x"}}, "webhook_url"),  # a secret inline: refused
        ({"unknown": 1}, "unknown"),
        ({"email": {**EMAIL, "port": 0}}, "port"),
        ({"email": {**EMAIL, "port": 65536}}, "port"),
        ({"email": {**EMAIL, "security": "ssl"}}, "security"),
        ({"email": {**EMAIL, "user": "rampart"}}, "both user and password_file"),
        ({"email": {**EMAIL, "security": "none", "user": "u", "password_file": "/p"}}, "security: none"),
        ({"email": {**EMAIL, "recipients": ["oncall@example.com\r\nBcc: x@y.z"]}}, "control characters"),
        ({"email": {**EMAIL, "recipients": []}}, "recipients"),
        ({"email": {**EMAIL, "sender": "not an address"}}, "e-mail address"),
        ({"pubsub": {"topic": "rampart-alerts"}}, "topic"),
        ({"retry": {"retries": 11}}, "retries"),
        ({"retry": {"retries": -1}}, "retries"),
        ({"dedupe": {"window_seconds": 0}}, "window_seconds"),
        ({"dedupe": {"escalate_after": 0}}, "escalate_after"),
        ({"dedupe": {"store": "redis"}}, "store"),
        ({"dedupe": {"window_seconds": 7200, "retention_seconds": 3600}}, "retention_seconds"),
        ({"slack": SLACK, "dedupe": {"lease_seconds": 10}}, "lease_seconds"),
        ({"rule_routes": {"bad rule!": []}}, "rule id"),
    ],
)
def test_invalid_config_is_refused_with_a_reason(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as e:
        AlertsConfig.model_validate(data)
    assert expected in str(e.value)


def test_config_is_frozen() -> None:
    cfg = AlertsConfig(slack=SLACK)
    with pytest.raises(ValidationError):
        cfg.slack = None  # type: ignore[misc]


def test_importing_alerts_does_not_import_pydantic_or_clients() -> None:
    code = (
        "import sys, shared.alerts\n"
        "heavy = [m for m in ('pydantic', 'slack_sdk', 'google.cloud.pubsub_v1', 'google.cloud.firestore')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
