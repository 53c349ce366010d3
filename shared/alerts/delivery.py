"""Deliver one alert per action record: dedupe, route, send with retries, report.

The pipeline calls `deliver(record, cfg)` after each action. It claims the event
in the dedupe store, decides alert / escalate / suppress, sends on the routed
channels (each retried with backoff on transient failures), notes a failed
channel on the others, and raises `AlertDeliveryError` when no channel has the
alert, or when a channel failed transiently (down for a while), so the function
fails and Pub/Sub redelivers; the claim then resumes with the channels still
missing and the record as first seen. A permanent failure (a dead webhook, a
refused recipient) is reported and not retried.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared import log
from shared.alerts import channels
from shared.alerts import format as fmt
from shared.alerts.dedupe import (
    BeginRequest,
    Claim,
    LeaseLost,
    Store,
    StoreUnavailable,
    event_key,
    finding_content,
    resource_key,
    store_for,
)
from shared.model import ActionRecord, Outcome, Severity

if TYPE_CHECKING:
    from shared.alerts.config import AlertsConfig


class AlertDeliveryError(Exception):
    """No channel delivered the alert: let the function fail so Pub/Sub redelivers."""

    def __init__(self, message: str, report: DeliveryReport) -> None:
        super().__init__(message)
        self.report = report


class AlertClaimBusy(AlertDeliveryError):
    """Another instance is delivering this alert right now: fail so Pub/Sub redelivers later."""


class AlertDeferred(AlertClaimBusy):
    """The record only found the work done; the record of the work may still come from the
    delivery that did it. Fail so Pub/Sub redelivers after `dedupe.settle_seconds`."""


@dataclass(slots=True)
class DeliveryReport:
    """What `deliver` did with one record."""

    alert_id: str
    kind: fmt.AlertKind | None = None  # None when nothing was sent (duplicate or suppressed)
    severity: str = ""
    routed: tuple[str, ...] = ()
    delivered: list[str] = field(default_factory=list)  # by this call
    already_delivered: list[str] = field(default_factory=list)  # by an earlier delivery of the same event
    failed: dict[str, str] = field(default_factory=dict)  # channel -> reason (no secrets)
    attempts: dict[str, int] = field(default_factory=dict)
    duplicate: bool = False
    suppressed: bool = False  # counted as a repeat on the same resource within the window
    escalated: bool = False
    occurrences: int = 1
    dedupe_unavailable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "severity": self.severity,
            "routed": list(self.routed),
            "delivered": self.delivered,
            "already_delivered": self.already_delivered,
            "failed": self.failed,
            "attempts": self.attempts,
            "duplicate": self.duplicate,
            "suppressed": self.suppressed,
            "escalated": self.escalated,
            "occurrences": self.occurrences,
            "dedupe_unavailable": self.dedupe_unavailable,
        }


def _send_slack(cfg: AlertsConfig, alert: fmt.Alert) -> None:
    assert cfg.slack is not None
    channels.send_slack(cfg.slack, fmt.slack_message(alert))


def _send_email(cfg: AlertsConfig, alert: fmt.Alert) -> None:
    assert cfg.email is not None
    channels.send_email(cfg.email, channels.build_email(cfg.email, alert))


def _send_pubsub(cfg: AlertsConfig, alert: fmt.Alert) -> None:
    assert cfg.pubsub is not None
    data, attributes = fmt.pubsub_message(alert)
    channels.send_pubsub(cfg.pubsub, data, attributes)


_SENDERS: dict[str, Callable[[AlertsConfig, fmt.Alert], None]] = {
    "slack": _send_slack,
    "email": _send_email,
    "pubsub": _send_pubsub,
}


def _window_subject(rec: dict[str, Any]) -> str:
    """What repeats are grouped by: the resource, with an ignored principal's violating change
    kept apart (a different incident: never a suppressed repeat of the violation Rampart fixed)."""
    from shared.principals import IGNORED_VIOLATION

    if rec["outcome"] == "alerted" and str(rec.get("reason", "")).startswith(IGNORED_VIOLATION):
        return f"{rec['resource']}\0ignored-principal"
    return rec["resource"]


def deliver(
    record: ActionRecord,
    cfg: AlertsConfig,
    store: Store | None = None,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    changed_at: float | None = None,
) -> DeliveryReport:
    """Alert on `record` once per event, on the channels routed for its rule and severity.

    `changed_at` (a sweep's record: when the resource last changed) makes it a duplicate when the
    rule already alerted on the resource since then, from an event or an earlier sweep."""
    rec = fmt.record_fields(record)
    d = cfg.dedupe
    ekey = event_key(rec["rule"], rec["event_id"])
    report = DeliveryReport(alert_id=ekey[4:28])
    ctx = {"alert_id": report.alert_id, "rule": rec["rule"], "event_id": rec["event_id"]}
    owner = uuid.uuid4().hex
    tentative = rec["outcome"] == Outcome.ALREADY_COMPLIANT.value and d.settle_seconds > 0
    if changed_at is None and tentative and isinstance(rec.get("event_time"), str):
        from shared.sweep.records import timestamp_seconds

        # A record that found the work done: if a sweep (or any path) alerted since the change, it has nothing to add.
        changed_at = timestamp_seconds(rec["event_time"])
    opened: Store = store if store is not None else store_for(cfg)
    active: Store | None = opened
    released = None
    if rec["outcome"] == Outcome.QUARANTINED.value:
        from shared.alerts.history import last_release

        released = last_release(opened, rec["resource"])
    req = BeginRequest(
        event_key=ekey,
        resource_key=resource_key(rec["rule"], _window_subject(rec), finding_content(rec)),
        owner=owner,
        payload=json.dumps(rec, sort_keys=True, default=str),
        now=clock(),
        lease_seconds=d.lease_seconds,
        window_seconds=d.window_seconds,
        escalate_after=d.escalate_after,
        labels={"rule": rec["rule"], "event_id": rec["event_id"], "resource": rec["resource"]},
        # A duplicate delivery that read the live state just after another one fixed it must
        # not tell on-call "nothing to do" about a change Rampart reverted.
        tentative=tentative,
        settle_seconds=d.settle_seconds,
        changed_at=changed_at,
        released_at=float(released["released_at"]) if released else 0.0,
    )
    try:
        claim = opened.begin(req)
    except StoreUnavailable as e:
        # Fail open: a possible duplicate alert beats a silent violation.
        log.error("rampart.alert.dedupe_unavailable", **ctx, error=str(e))
        claim, active, report.dedupe_unavailable = Claim(status="new", decision="alert", payload=req.payload), None, True

    report.occurrences = claim.occurrences
    if claim.status == "duplicate":
        report.duplicate = True
        report.already_delivered = sorted(claim.delivered)
        log.info("rampart.alert.duplicate", **ctx, already_delivered=report.already_delivered)
        return report
    if claim.status == "busy":
        log.warning("rampart.alert.claim_busy", **ctx)
        raise AlertClaimBusy(f"alert {report.alert_id} is being delivered by another instance", report)
    if claim.status == "deferred":
        log.info("rampart.alert.deferred", **ctx, settle_seconds=d.settle_seconds)
        raise AlertDeferred(
            f"alert {report.alert_id} waits up to {d.settle_seconds:g}s for the record of the delivery that "
            "did the work (this one found it done)",
            report,
        )
    if claim.decision == "suppress":
        report.suppressed = True
        log.info("rampart.alert.suppressed", **ctx, resource=rec["resource"], occurrences=claim.occurrences)
        return report

    first = json.loads(claim.payload)  # the record as first seen: a redelivery re-sends that, not a re-check
    base = Severity.parse(first["severity"])
    report.escalated = claim.decision == "escalate"
    severity = fmt.raise_severity(base) if report.escalated else base
    report.kind = "escalation" if report.escalated else "incident"
    report.severity = severity.value
    report.routed = cfg.channels_for(first["rule"], severity)
    report.already_delivered = [c for c in report.routed if c in claim.delivered]
    notes: list[str] = []  # shown on every channel sent after they were known
    failures: list[str] = []
    if released and float(released["released_at"]) <= req.now:
        from shared.alerts.history import history_note

        notes.append(history_note(released))
    if claim.attempt > 1:
        notes.append(f"Delivered late (attempt {claim.attempt}): an earlier attempt failed or was interrupted.")

    def make_alert() -> fmt.Alert:
        return fmt.Alert(
            alert_id=report.alert_id,
            kind=report.kind or "incident",
            record=first,
            severity=severity,
            occurrences=claim.occurrences,
            window_seconds=d.window_seconds,
            notes=tuple(notes),
        )

    def progress(channel: str | None) -> Callable[[Store], None]:
        return lambda s: s.progress(ekey, owner, channel, clock(), d.lease_seconds)

    try:
        failures_seen: dict[str, int] = {}  # channel -> how many failures its message could mention
        retry_later: list[str] = []  # channels that failed transiently: a redelivery tries them again
        for ch in report.routed:
            if ch in claim.delivered:
                continue
            # On a redelivery the redelivery is the retry: one try per missing channel, so a channel
            # that is down does not hold a thread through its backoff on every redelivery.
            retries = cfg.retry.retries if claim.attempt == 1 else 0
            error, tries, transient = _send_with_retry(ch, cfg, make_alert(), sleep, ctx, retries)
            report.attempts[ch] = tries
            if error is None:
                report.delivered.append(ch)
                failures_seen[ch] = len(report.failed)
            else:
                report.failed[ch] = error
                again = "; Rampart keeps trying" if transient else ""
                failures.append(f"{fmt.channel_label(ch)} delivery failed after {tries} attempt(s): {error}{again}")
                notes.append(failures[-1])
                log.error("rampart.alert.channel_failed", **ctx, channel=ch, attempts=tries, error=error, transient=transient)
                if transient:
                    retry_later.append(ch)
            active = _store_call(active, ctx, progress(ch if error is None else None))
        for channel, seen in failures_seen.items():
            if seen < len(failures):
                _follow_up(cfg, channel, make_alert(), " ".join(failures[seen:]), ctx)
        if report.routed and not report.delivered and not report.already_delivered:
            _store_call(active, ctx, lambda s: s.release(ekey, owner))
            log.error("rampart.alert.undelivered", **ctx, failed=report.failed)
            raise AlertDeliveryError(
                f"alert {report.alert_id} reached no channel: "
                + "; ".join(f"{c}: {e}" for c, e in report.failed.items()),
                report,
            )
        if retry_later:
            # A channel that is down for a while must still get the alert once it is back: leave
            # the claim open (the channels that have it are noted in it, so they never get it
            # twice) and fail, so Pub/Sub redelivers and the next attempt sends only what is missing.
            _store_call(active, ctx, lambda s: s.release(ekey, owner))
            log.warning("rampart.alert.partly_delivered", **ctx, delivered=report.delivered,
                        already_delivered=report.already_delivered, retry=retry_later)
            raise AlertDeliveryError(
                f"alert {report.alert_id} still missing on {', '.join(retry_later)}: "
                + "; ".join(f"{c}: {report.failed[c]}" for c in retry_later),
                report,
            )
        _store_call(active, ctx, lambda s: s.finish(ekey, owner))
    except LeaseLost as e:
        log.warning("rampart.alert.lease_lost", **ctx, error=str(e))
        raise AlertClaimBusy(f"alert {report.alert_id}: {e}", report) from None

    log.emit(
        "WARNING" if report.failed else "INFO",
        "rampart.alert",
        **ctx,
        kind=report.kind,
        severity_level=report.severity,
        resource=first["resource"],
        headline=fmt.headline(make_alert()),
        routed=list(report.routed),
        delivered=report.delivered,
        already_delivered=report.already_delivered,
        failed=report.failed,
        occurrences=report.occurrences,
    )
    return report


def preload(cfg: AlertsConfig) -> None:
    """Import the libraries of the configured channels and dedupe store now (a warm-up thread),
    so the first alert does not wait for them (~0.1 s each). Builds no client."""
    import importlib

    names = ["slack_sdk.webhook"] if cfg.slack is not None else []
    if cfg.pubsub is not None:
        names.append("google.cloud.pubsub_v1")
    if cfg.dedupe.store == "firestore":
        names.append("google.cloud.firestore")
    for name in names:
        importlib.import_module(name)


def _follow_up(cfg: AlertsConfig, channel: str, alert: fmt.Alert, note: str, ctx: dict[str, Any]) -> None:
    """Tell a channel that already had the alert that a later channel failed (one try, people only)."""
    try:
        if channel == "slack" and cfg.slack is not None:
            channels.send_slack(cfg.slack, fmt.slack_notice(alert, note))
        elif channel == "email" and cfg.email is not None:
            channels.send_email(cfg.email, channels.build_notice_email(cfg.email, alert, note))
    except channels.ChannelError as e:
        log.warning("rampart.alert.follow_up_failed", **ctx, channel=channel, error=str(e))


def _send_with_retry(
    channel: str, cfg: AlertsConfig, alert: fmt.Alert, sleep: Callable[[float], None], ctx: dict[str, Any],
    retries: int,
) -> tuple[str | None, int, bool]:
    """Send on one channel, retrying transient failures `retries` times; returns (error or None,
    attempts, transient)."""
    for attempt in range(1, retries + 2):
        try:
            _SENDERS[channel](cfg, alert)
            return None, attempt, False
        except channels.ChannelError as e:
            if not e.transient or attempt > retries:
                return str(e), attempt, e.transient
            delay = cfg.retry.delay(attempt - 1)
            log.warning("rampart.alert.retry", **ctx, channel=channel, attempt=attempt, error=str(e), retry_in_s=delay)
            sleep(delay * random.uniform(0.5, 1.0))
        except Exception as e:  # noqa: BLE001
            # One broken channel must not keep the alert from the others. Only the type is kept:
            # an unexpected error's text may carry a secret (a webhook URL, a password).
            return f"unexpected {type(e).__name__}", attempt, False
    raise AssertionError("unreachable")


def _store_call(store: Store | None, ctx: dict[str, Any], op: Callable[[Store], None]) -> Store | None:
    """Run a claim update; if the store is down, log and go on without it (LeaseLost propagates)."""
    if store is None:
        return None
    try:
        op(store)
        return store
    except StoreUnavailable as e:
        log.error("rampart.alert.dedupe_unavailable", **ctx, error=str(e))
        return None
