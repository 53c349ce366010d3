"""No silent ends: every violation ends remediated, or as a FAILED record and an alert that names
the resource, the rule, the cause and the next step.

Three ways a violation could otherwise end unseen, and what happens instead:

- a rule raises on an event: a FAILED record for that rule alone (`rule_failed`); the other rules
  on the event still act;
- handling keeps failing transiently: Pub/Sub redelivers, and on the last delivery attempt
  (`deliveryAttempt` in the push body, present when the subscription has a dead-letter policy;
  the maximum from `RAMPART_MAX_DELIVERY_ATTEMPTS`, default 5 as deploy.sh sets it) the function
  records and alerts instead of failing once more (`final_attempt_record`);
- a message is dead-lettered anyway (the alert itself could not go out, or the subscription has no
  `deliveryAttempt`): the `rampart_dead_letter` entry point, pushed from the dead-letter topic,
  alerts with the event's facts, never its payload, and records it (`handle_dead_letter`).
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from shared import log
from shared.model import Action, ActionRecord, Finding, Mode, Outcome, Severity

MAX_ATTEMPTS_ENV = "RAMPART_MAX_DELIVERY_ATTEMPTS"
DEFAULT_MAX_ATTEMPTS = 5  # deploy.sh: dead-letter after 5 attempts
DEAD_LETTER_RULE = "dead_letter"  # the record's rule when no rule could be named


def max_delivery_attempts() -> int:
    raw = os.environ.get(MAX_ATTEMPTS_ENV, "")
    try:
        n = int(raw)
    except ValueError:
        return DEFAULT_MAX_ATTEMPTS
    return n if 1 <= n <= 100 else DEFAULT_MAX_ATTEMPTS


def delivery_attempt(cloud_event: Any) -> int | None:
    """Pub/Sub's `deliveryAttempt` for this delivery, if it sent one: in a structured CloudEvent's
    data, or in the raw push body (functions-framework drops it when it converts a push body to a
    CloudEvent, so the request itself is read)."""
    data = getattr(cloud_event, "data", None)
    found = data.get("deliveryAttempt") if isinstance(data, dict) else None
    if found is None:
        try:
            import flask

            if flask.has_request_context():
                body = flask.request.get_json(silent=True, cache=True)
                found = body.get("deliveryAttempt") if isinstance(body, dict) else None
        except ImportError:  # pragma: no cover — functions-framework ships flask
            found = None
    return found if type(found) is int and found > 0 else None


def is_last_attempt(cloud_event: Any) -> bool:
    n = delivery_attempt(cloud_event)
    return n is not None and n >= max_delivery_attempts()


def _where(exc: BaseException) -> str:
    """file:line of the innermost frame in Rampart's own code (not the message: it may quote input)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/functions/" in f.filename or "/shared/" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f"{os.path.basename(os.path.dirname(f.filename))}/{os.path.basename(f.filename)}:{f.lineno}"


def rule_failed(event: Any, rule_id: str, settings: Any, exc: BaseException) -> Finding:
    """The finding that stands for a rule that raised on `event` (so it is recorded and alerted)."""
    import functions

    where = _where(exc)
    resource, project, location = _canonical(event, rule_id)
    log.error("rampart.rule_failed", rule=rule_id, event_id=event.event_id[:200], method=event.method[:200],
              resource=event.resource_name[:300], error=type(exc).__name__, at=where,
              action="recorded as failed and alerted; the other rules on this event still act")
    return Finding(
        rule=rule_id,
        severity=settings.severity,
        title=f"Rule {rule_id} failed on this event: not evaluated",
        resource=resource,
        resource_type=functions.rule(rule_id).resource_type,
        project=project,
        location=location,
        principal=event.principal,
        action=Action.ALERT,
        event_id=event.event_id,
        method=event.method,
        timestamp=event.timestamp,
        observed={"rule_error": type(exc).__name__, **({"at": where} if where else {})},
    )


def _canonical(event: Any, rule_id: str) -> tuple[str, str, str]:
    """The resource's canonical name, as the rule would have named it (so alerts group by it)."""
    import re

    import functions

    try:
        located = functions.rule(rule_id).locate(event)
    except Exception:  # noqa: BLE001 — the event that broke the rule may break this too
        located = None
    name = located.name if located is not None else event.resource_name
    m = re.match(r"^projects/([^/]+)/locations/([^/]+)/", name)
    return (name, m.group(1), m.group(2)) if m else (name, event.project, event.location)


def is_rule_failure(finding: Finding) -> bool:
    return "rule_error" in finding.observed and finding.action is Action.ALERT and finding.title.startswith("Rule ")


def rule_failed_record(finding: Finding, settings: Any) -> ActionRecord:
    return ActionRecord(
        finding=finding,
        mode=settings.mode,
        outcome=Outcome.FAILED,
        severity=settings.severity,
        reason=(
            f"cause: rule {finding.rule} raised {finding.observed.get('rule_error')} on this event, so whether the "
            "resource complies is unknown; the other rules on the event still acted. Next step: check the resource "
            f"by hand, and the log line rampart.rule_failed for event {finding.event_id[:200]} (report it as a bug)"
        ),
    )


def final_attempt_record(finding: Finding, settings: Any, exc: BaseException, attempt: int) -> ActionRecord:
    """The FAILED record of a finding whose handling still failed on the last delivery attempt."""
    cause = " ".join(str(exc).split())[:300] or type(exc).__name__
    return ActionRecord(
        finding=finding,
        mode=settings.mode,
        outcome=Outcome.FAILED,
        severity=settings.severity,
        attempts=attempt,
        reason=(
            f"cause: delivery attempt {attempt} of {max_delivery_attempts()} failed ({type(exc).__name__}: {cause}); "
            "Pub/Sub will not deliver it again, so Rampart stops here. Next step: check the resource's live state "
            "and fix it by hand if it is still open (a concurrent writer may be changing it back)"
        ),
    )


# ---------------------------------------------------------------------------
# The dead-letter topic's consumer.

_FACT_ATTRIBUTES = {
    "CloudPubSubDeadLetterSourceDeliveryCount": "delivery_count",
    "CloudPubSubDeadLetterSourceSubscription": "source_subscription",
    "CloudPubSubDeadLetterSourceSubscriptionProject": "source_project",
    "CloudPubSubDeadLetterSourceTopicPublishTime": "first_published",
}


def _message_facts(cloud_event: Any) -> dict[str, str]:
    """Transport facts of the dead-lettered message: ids, times and Pub/Sub's dead-letter attributes
    (bounded strings), never its data."""
    facts: dict[str, str] = {}
    data = getattr(cloud_event, "data", None)
    msg = data.get("message") if isinstance(data, dict) and isinstance(data.get("message"), dict) else data
    if isinstance(msg, dict):
        for key in ("messageId", "message_id", "publishTime", "publish_time"):
            v = msg.get(key)
            if isinstance(v, str) and v:
                facts.setdefault("message_id" if "id" in key.lower() else "dead_lettered_at", v[:100])
        attrs = msg.get("attributes")
        if isinstance(attrs, dict):
            for k, name in _FACT_ATTRIBUTES.items():
                v = attrs.get(k)
                if isinstance(v, str) and v:
                    facts[name] = v[:200]
    try:
        ce_id = cloud_event["id"]
    except (KeyError, TypeError):
        ce_id = None
    if isinstance(ce_id, str) and ce_id and "message_id" not in facts:
        facts["message_id"] = ce_id[:100]
    return facts


def dead_letter_records(cloud_event: Any, loaded: Any) -> list[ActionRecord]:
    """One FAILED record per violation the dead-lettered event shows (the rules are pure, so this
    costs no API call), or one for the message itself when it names none."""
    import functions
    from shared.event import BadInput, from_cloudevent, skip_reason
    from shared.pipeline import evaluate, triage

    facts = _message_facts(cloud_event)
    count = facts.get("delivery_count", "several")
    next_step = ("Next step: check the resource's live state and fix it by hand if it is still open; the message is "
                 "held on the dead-letter topic's hold subscription for 7 days")
    try:
        event = from_cloudevent(cloud_event, wanted=functions.TRIGGERS)
        problem = "" if event is not None else "no rule triggers on it"
    except BadInput as exc:
        event, problem = None, f"unreadable: {exc.reason}"
    records: list[ActionRecord] = []
    if event is not None and not skip_reason(event):
        t = triage(event)
        found = evaluate(event, t, loaded) if not isinstance(t, str) else []
        for finding, settings in found:
            finding = _dead_lettered(finding, facts)
            records.append(ActionRecord(
                finding=finding, mode=settings.mode, outcome=Outcome.FAILED, severity=settings.severity,
                reason=(f"cause: Rampart failed on every one of {count} deliveries of this event and Pub/Sub "
                        f"dead-lettered it; rule {finding.rule} found a violation that may still be open. {next_step}"),
            ))
    if not records:
        resource = event.resource_name if event is not None else f"pubsub message {facts.get('message_id', '?')}"
        finding = Finding(
            rule=DEAD_LETTER_RULE,
            severity=Severity.HIGH,
            title="A message was dead-lettered: Rampart never finished handling it",
            resource=resource,
            resource_type=event.resource_type if event is not None else "pubsub.message",
            project=event.project if event is not None else facts.get("source_project", ""),
            location=event.location if event is not None else "",
            principal=event.principal if event is not None else "",
            action=Action.ALERT,
            event_id=(event.event_id if event is not None else facts.get("message_id", "")) + "#dead-letter",
            method=event.method if event is not None else "",
            timestamp=event.timestamp if event is not None else facts.get("first_published", ""),
            observed={"dead_letter": facts, **({"problem": problem} if problem else {})},
        )
        records.append(ActionRecord(
            finding=finding, mode=Mode.ALERT, outcome=Outcome.FAILED,
            reason=(f"cause: Pub/Sub dead-lettered this message after {count} deliveries"
                    f"{' (' + problem + ')' if problem else ''}. {next_step}"),
        ))
    return records


def _dead_lettered(finding: Finding, facts: dict[str, str]) -> Finding:
    from dataclasses import replace

    # Its own alert claim: the original event's claim may be done (or stuck) already.
    return replace(finding, event_id=finding.event_id + "#dead-letter",
                   observed={**finding.observed, "dead_letter": facts})


def handle_dead_letter(cloud_event: Any, loaded: Any, report: Any) -> list[ActionRecord]:
    """Record and alert (`report(record, loaded)`) on one dead-lettered message; raises if an alert
    reached no channel (the dead-letter subscription then redelivers it)."""
    records = dead_letter_records(cloud_event, loaded)
    errors: list[Exception] = []
    for record in records:
        try:
            report(record, loaded)
        except Exception as exc:  # noqa: BLE001 — re-raised below, after the other records
            errors.append(exc)
    if errors:
        raise errors[0]
    return records
