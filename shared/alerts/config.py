"""The `alerts:` section of the policy file: channels, routing, retries and dedupe.

Self-contained so the policy loader can embed `AlertsConfig` as a field. This is
the only module of shared.alerts that imports pydantic. Secrets are never values
here: only the paths of files that hold them (Secret Manager mounted as files).

    alerts:
      slack:  {webhook_url_file: /secrets/slack/webhook-url}
      email:  {host: smtp.example.com, port: 587, security: starttls, user: rampart,
               password_file: /secrets/smtp/password, sender: rampart@example.com,
               recipients: [oncall@example.com]}
      pubsub: {topic: projects/sec-prod/topics/rampart-alerts}
      routes: {critical: [slack, email, pubsub], high: [slack, pubsub], medium: [pubsub], low: [pubsub]}
      rule_routes: {run_public_invoker: [slack, email, pubsub]}
      retry:  {retries: 2, backoff_seconds: 0.5, max_backoff_seconds: 5}
      dedupe: {store: firestore, collection: rampart_alerts, window_seconds: 3600, escalate_after: 5}
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.model import Severity

ChannelName = Literal["slack", "email", "pubsub"]
CHANNELS: tuple[ChannelName, ...] = ("slack", "email", "pubsub")

# Used only when `routes` is not given; channels that are not configured drop out.
DEFAULT_ROUTES: dict[Severity, tuple[ChannelName, ...]] = {
    Severity.CRITICAL: ("slack", "email", "pubsub"),
    Severity.HIGH: ("slack", "pubsub"),
    Severity.MEDIUM: ("pubsub",),
    Severity.LOW: ("pubsub",),
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackConfig(_Section):
    """Slack incoming webhook; the URL is a secret, so only the file holding it is named."""

    webhook_url_file: str = Field(min_length=1)
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    # The hosts the webhook URL may name. A file that names another host (a swapped secret) would
    # hand every alert, and what it says about the organization, to that host: refused.
    allowed_hosts: tuple[str, ...] = Field(("hooks.slack.com",), min_length=1, max_length=10)

    @field_validator("allowed_hosts")
    @classmethod
    def _hostnames(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for host in v:
            if not _HOSTNAME.match(host):
                raise ValueError(f"expected host names like hooks.slack.com (no scheme, port, path or wildcard); found {host!r}")
        return tuple(h.lower() for h in v)


class EmailConfig(_Section):
    """SMTP delivery: one message per incident to every recipient."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    user: str | None = Field(None, min_length=1)
    password_file: str | None = Field(None, min_length=1)
    sender: str
    recipients: tuple[str, ...] = Field(min_length=1, max_length=50)
    subject_prefix: str = Field("[Rampart]", max_length=40)
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("host", "subject_prefix")
    @classmethod
    def _no_control(cls, v: str) -> str:
        if _CONTROL.search(v):
            raise ValueError(f"expected no control characters; found {v!r}")
        return v

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        return _addr_spec(v)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_addr_spec(a) for a in v)

    @model_validator(mode="after")
    def _credentials(self) -> EmailConfig:
        if (self.user is None) != (self.password_file is None):
            raise ValueError("expected both user and password_file, or neither; found only one")
        if self.user is not None and self.security == "none":
            raise ValueError("refusing to send an SMTP password with security: none; use starttls or tls")
        return self


class PubSubConfig(_Section):
    """A topic that receives one JSON alert message per incident (schema_version 1)."""

    topic: str = Field(pattern=r"^projects/[a-z][a-z0-9:.\-]{4,62}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9_.~+%\-]{2,254}$")
    timeout_seconds: float = Field(10.0, gt=0, le=120)


class RetryConfig(_Section):
    """Per-channel retries of transient failures, with exponential backoff and jitter."""

    retries: int = Field(2, ge=0, le=10)
    backoff_seconds: float = Field(0.5, ge=0, le=60)
    max_backoff_seconds: float = Field(5.0, ge=0, le=300)

    def delay(self, retry: int) -> float:
        """Seconds before retry number `retry` (0 for the first), before jitter."""
        return min(self.backoff_seconds * 2**retry, self.max_backoff_seconds)


class DedupeConfig(_Section):
    """Where claims live, and how repeats on one resource are grouped and escalated."""

    store: Literal["memory", "firestore"] = "memory"
    project: str | None = Field(None, min_length=1)
    database: str = Field("(default)", min_length=1)
    collection: str = Field("rampart_alerts", pattern=r"^[A-Za-z0-9_\-]{1,100}$")
    window_seconds: int = Field(3600, gt=0, le=7 * 86400)
    escalate_after: int | None = Field(5, ge=1, le=10_000)  # None: never escalate
    lease_seconds: float = Field(120.0, gt=0, le=3600)
    # How long an alert whose record only found the work done (a duplicate delivery racing the
    # one that did it) waits for the record of the work; 0 sends it at once.
    settle_seconds: float = Field(5.0, ge=0, le=600)
    retention_seconds: int = Field(8 * 86400, gt=0, le=31 * 86400)

    @model_validator(mode="after")
    def _retention(self) -> DedupeConfig:
        # Claims must outlive both the window and Pub/Sub's default 7-day retention.
        if self.retention_seconds < self.window_seconds:
            raise ValueError(
                f"expected retention_seconds >= window_seconds; found {self.retention_seconds} < {self.window_seconds}"
            )
        return self


class AlertsConfig(_Section):
    """Alert channels, routing per severity and per rule, retries and dedupe."""

    slack: SlackConfig | None = None
    email: EmailConfig | None = None
    pubsub: PubSubConfig | None = None
    routes: dict[Severity, tuple[ChannelName, ...]] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))
    rule_routes: dict[str, tuple[ChannelName, ...]] = Field(default_factory=dict)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    dedupe: DedupeConfig = Field(default_factory=DedupeConfig)

    @field_validator("rule_routes")
    @classmethod
    def _rule_ids(cls, v: dict[str, tuple[ChannelName, ...]]) -> dict[str, tuple[ChannelName, ...]]:
        for rule in v:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,100}", rule):
                raise ValueError(f"expected a rule id (letters, digits, _ . -); found {rule!r}")
        return v

    @model_validator(mode="after")
    def _check(self) -> AlertsConfig:
        configured = set(self.configured())
        explicit: list[tuple[str, tuple[ChannelName, ...]]] = []
        if "routes" in self.model_fields_set:
            explicit += [(f"routes.{sev.value}", chans) for sev, chans in self.routes.items()]
        explicit += [(f"rule_routes.{rule}", chans) for rule, chans in self.rule_routes.items()]
        for where, chans in explicit:
            if len(set(chans)) != len(chans):
                raise ValueError(f"{where} lists a channel twice: {list(chans)}")
            missing = [c for c in chans if c not in configured]
            if missing:
                raise ValueError(
                    f"{where} routes to {missing} but alerts.{missing[0]} is not configured "
                    f"(configured: {sorted(configured) or 'none'})"
                )
        worst = self.worst_channel_seconds()
        if self.dedupe.lease_seconds <= worst:
            # A lease shorter than one channel's retries lets a second instance take over and send again.
            raise ValueError(
                f"expected dedupe.lease_seconds > {worst:.1f}s (one channel's timeout x attempts + backoff); "
                f"found {self.dedupe.lease_seconds}"
            )
        return self

    def configured(self) -> tuple[ChannelName, ...]:
        """Channels that have a section in this config, in delivery order."""
        return tuple(c for c in CHANNELS if getattr(self, c) is not None)

    def channels_for(self, rule: str, severity: Severity) -> tuple[ChannelName, ...]:
        """The channels an alert of `rule` at `severity` goes to (rule_routes win over routes)."""
        chans = self.rule_routes.get(rule)
        if chans is None:
            chans = self.routes.get(severity, ())
        configured = self.configured()
        return tuple(c for c in chans if c in configured)

    def worst_channel_seconds(self) -> float:
        """Longest one channel can take with every retry timing out."""
        timeouts = [getattr(self, c).timeout_seconds for c in self.configured()]
        if not timeouts:
            return 0.0
        r = self.retry
        backoff = sum(r.delay(i) for i in range(r.retries))
        return max(timeouts) * (r.retries + 1) + backoff


def _addr_spec(value: str) -> str:
    """Validate a bare e-mail address (no display name, no CR/LF) and return it."""
    if _CONTROL.search(value):
        raise ValueError(f"expected an e-mail address without control characters; found {value!r}")
    try:
        addr = Address(addr_spec=value)
    except (ValueError, IndexError) as e:
        raise ValueError(f"expected an e-mail address like oncall@example.com; found {value!r} ({e})") from None
    if not addr.username or not addr.domain:
        raise ValueError(f"expected an e-mail address like oncall@example.com; found {value!r}")
    return addr.addr_spec
