"""One event through Rampart: triage → rules → decision → action → record → alert.

Data flows one way. `triage` is config-free and cheap (a dict lookup decides that most of
the audit stream is irrelevant). Everything after it loads lazily on the first relevant
event: the policy (pydantic, PyYAML), the rule modules, and the Google clients.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import functions
from shared.breaker import guarded
from shared.deadletter import is_rule_failure, rule_failed_record
from shared.event import AuditEvent
from shared.model import Action, ActionRecord, Finding, Mode, Outcome, Severity

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.alerts.dedupe import Store
    from shared.alerts.delivery import DeliveryReport
    from shared.config import Exemption, LoadedPolicy, PolicyStore, RuleSettings
    from shared.rules import Enrich, Located

IGNORED_VIOLATION_NOTE = "its change still violates a rule: alerted, not acted on"


@dataclass
class Result:
    """What handling one event produced: a skip reason, or findings and their records."""

    event_id: str
    skipped: str | None = None
    findings: list[Finding] = field(default_factory=list)
    records: list[ActionRecord] = field(default_factory=list)
    deliveries: list[DeliveryReport] = field(default_factory=list)


triage = functions.triage  # one triage, shared with main.py (which runs it before loading this module)


def evaluate(event: AuditEvent, rule_ids: tuple[str, ...], loaded: LoadedPolicy) -> list[tuple[Finding[Any], RuleSettings]]:
    """Run the enabled rules among `rule_ids`; pure (no I/O). The rules an entry triggers judge
    one view of each resource it locates, built once."""
    out = []
    seen: dict[str, tuple[Located | None, Any]] = {}
    for rid in rule_ids:
        settings = loaded.settings(rid)
        if settings.mode is Mode.OFF:
            continue
        try:
            f = functions.rule(rid).evaluate(event, settings.params, seen)
        except Exception as exc:  # noqa: BLE001 — one broken rule must not take the others down
            from shared.deadletter import rule_failed

            f = rule_failed(event, rid, settings, exc)  # recorded FAILED and alerted, for this rule only
        if f is not None:
            out.append((f, settings))
    return out


def ignored(principal: str, loaded: LoadedPolicy) -> bool:
    from shared.principals import is_ignored

    return is_ignored(principal, loaded.policy.ignore_principals)


def rampart_isolation(event: AuditEvent, finding: Finding, settings: Any, loaded: Any) -> bool:
    """Whether a violating-looking change is Rampart's own quarantine coming back: a quarantine
    isolates the service (ingress, invokers) and labels it, but leaves the violation itself (the
    service account, the region) for its owner to fix."""
    if settings.action is not Action.QUARANTINE or finding.resource_type != "run.service":
        return False
    from shared.views import run as run_views

    view = run_views.from_entry(event, finding.resource)
    label = view.labels.get(loaded.policy.remediation.quarantine_label) if view is not None else None
    return isinstance(label, str) and label == finding.rule.lower()[:63]


def ignored_violation(finding: Finding, settings: Any, loaded: Any, today: dt.date | None = None) -> ActionRecord:
    """The record of a violating change by an ignored principal: never acted on, always in front
    of a human (unless the security team exempted the resource)."""
    import dataclasses

    from shared.principals import IGNORED_VIOLATION

    record, _ = _decide(finding, settings, loaded, today)
    if record is not None and record.outcome is Outcome.EXEMPT:
        return record
    named = dataclasses.replace(finding, title=f"{IGNORED_VIOLATION[0].upper()}{IGNORED_VIOLATION[1:]}: {finding.title}")
    return ActionRecord(
        finding=named,
        mode=settings.mode,
        outcome=Outcome.ALERTED,
        reason=f"{IGNORED_VIOLATION} ({finding.principal}): not acted on; check who holds that identity",
        severity=settings.severity,
    )


def decide(finding: Finding[Any], settings: RuleSettings, loaded: LoadedPolicy, today: dt.date | None = None) -> ActionRecord | None:
    """The record for a finding that needs no action call (exempt, alert-only), else None.

    None means: call the rule's remediate() in `settings.mode` with `settings.action`.
    """
    return _decide(finding, settings, loaded, today)[0]


def _decide(finding: Finding[Any], settings: RuleSettings, loaded: LoadedPolicy, today: dt.date | None) -> tuple[ActionRecord | None, str]:
    """`decide`, and the note on exemptions that lapsed (for the record of an action taken)."""
    from shared.config import exemption_for

    ex, expired = exemption_for(loaded, settings, finding.resource, finding.project, today)
    note = _expired_note(expired)
    if ex is not None:
        return ActionRecord(
            finding=finding,
            mode=settings.mode,
            outcome=Outcome.EXEMPT,
            reason=f"exempt until {ex.expires} (owner {ex.owner}): {ex.reason}",
            severity=settings.severity,
        ), note
    acts = settings.mode in (Mode.ENFORCE, Mode.DRY_RUN) and settings.action is not Action.ALERT
    if not acts or functions.rule(finding.rule).remediate is None:
        why = "mode alert" if settings.mode is Mode.ALERT else "no automatic fix for this rule: a human decides"
        return ActionRecord(
            finding=finding,
            mode=settings.mode,
            outcome=Outcome.ALERTED,
            reason="; ".join(x for x in (why, note) if x),
            severity=settings.severity,
        ), note
    return None, note


def _expired_note(expired: list[Exemption]) -> str:
    return "; ".join(f"exemption (owner {e.owner}) expired on {e.expires}: not applied" for e in expired)


def act(finding: Finding[Any], settings: RuleSettings, loaded: LoadedPolicy, today: dt.date | None = None) -> ActionRecord:
    """Decide, then remediate against live state where the policy allows it."""
    from shared.actions import ActionContext, run_remediation

    record, note = _decide(finding, settings, loaded, today)
    rule = functions.rule(finding.rule)
    ctx = ActionContext(
        mode=settings.mode if settings.mode in (Mode.ENFORCE, Mode.DRY_RUN) else Mode.ALERT,
        action=settings.action,
        max_attempts=loaded.policy.remediation.max_attempts,
        operation_timeout=loaded.policy.remediation.operation_timeout_seconds,
        quarantine_label=loaded.policy.remediation.quarantine_label,
    )
    if record is None:
        assert rule.remediate is not None  # _decide returns a record for a rule without one
        record = run_remediation(rule.remediate, finding, settings.params, ctx)
        record.severity = record.severity or settings.severity
        # An exemption that lapsed is why Rampart acted: say so on the record, as for alert mode.
        record.reason = "; ".join(x for x in (record.reason, note) if x)
    if record.outcome is not Outcome.EXEMPT and rule.enrich is not None:
        extra = _enrich(rule.enrich, finding, settings, ctx)
        if extra:
            record.after = {**record.after, "context": extra}
    return record


def _enrich(enrich: Enrich, finding: Finding[Any], settings: RuleSettings, ctx: ActionContext) -> dict[str, Any]:
    from shared import log

    try:
        return dict(enrich(finding, settings.params, ctx) or {})
    except Exception as exc:  # noqa: BLE001 — enrichment is best effort; the alert must still go out
        log.warning("rampart.enrich_failed", rule=finding.rule, resource=finding.resource, error=type(exc).__name__)
        return {"enrich_error": type(exc).__name__}


class Pipeline:
    """Handles events with one policy store, one dedupe store, and the alert channels."""

    def __init__(self, store: PolicyStore | None = None, *, alert: bool = True, dedupe: Store | None = None) -> None:
        from shared.config import PolicyStore

        self.store = store or PolicyStore()
        self.alert = alert
        self._dedupe_pinned = dedupe  # None: the store the policy names (deliver asks store_for)
        self.stats: Counter[str] = Counter()

    def handle(
        self, event: AuditEvent, *, only: str | None = None, act_on: bool = True,
        triaged: tuple[str, ...] | str | None = None, last_attempt: int | None = None,
    ) -> Result:
        """Handle one event; `only` restricts it to one rule (the per-rule entry points);
        `triaged` is `triage(event)` when the caller has run it already (main.py has).

        `last_attempt` (the delivery attempt number, when Pub/Sub will not deliver this event again):
        a finding that still fails is recorded FAILED and alerted instead of raised."""
        result = Result(event_id=event.event_id)
        t = triage(event) if triaged is None else triaged
        if only is not None and not isinstance(t, str):
            t = (only,) if only in t else "no_rule_for_method"
        if isinstance(t, str):
            result.skipped = t
            self.stats[f"skipped:{t}"] += 1
            return result
        loaded = self.store.current()
        if ignored(event.actor, loaded):
            return self._ignored(event, t, loaded, result, act_on)
        found = evaluate(event, t, loaded)
        if not found:
            result.skipped = "compliant"
            self.stats["skipped:compliant"] += 1
            return result
        errors: list[Exception] = []
        for finding, settings in found:
            result.findings.append(finding)
            if not act_on:
                continue
            # One event may carry several findings (a SetIamPolicy that removes the service agent
            # and grants allUsers): a transient failure of one, or its alert channel being down,
            # must not hold back the others until the redelivery. Raised once all had their turn.
            try:
                record = (guarded(finding, settings, loaded, functools.partial(act, finding, settings, loaded),
                                  store=self._dedupe_pinned)
                          if not is_rule_failure(finding) else rule_failed_record(finding, settings))
                result.records.append(record)
                self.stats[f"outcome:{record.outcome.value}"] += 1
                self._record(record, loaded, result)
            except Exception as exc:  # noqa: BLE001 — re-raised below, after the other findings
                if last_attempt is not None and self._record_final(finding, settings, exc, last_attempt, loaded, result):
                    continue
                errors.append(exc)
                if len(found) > 1:
                    from shared import log

                    log.warning("rampart.finding_failed", event_id=event.event_id, rule=finding.rule,
                                resource=finding.resource, error=type(exc).__name__, reason=str(exc)[:300])
        if errors:
            raise errors[0]
        return result

    def _ignored(self, event: AuditEvent, rule_ids: tuple[str, ...], loaded: Any, result: Result, act_on: bool) -> Result:
        """An ignored principal's change: never acted on. Rampart's own changes come back as audit
        entries and are compliant (or its own quarantine): say so once, then leave them be. One
        that still violates a rule is someone else using an ignored identity: alerted."""
        from shared import log

        found = [(f, s) for f, s in evaluate(event, rule_ids, loaded) if not rampart_isolation(event, f, s, loaded)]
        result.skipped = "ignored_principal"
        self.stats["skipped:ignored_principal"] += 1
        log.info("rampart.ignored", event_id=event.event_id, method=event.method, resource=event.resource_name,
                 principal=event.actor, reason=f"ignored principal; {IGNORED_VIOLATION_NOTE}" if found else "ignored principal")
        for finding, settings in found:
            result.findings.append(finding)
            if act_on:
                record = ignored_violation(finding, settings, loaded)
                result.records.append(record)
                self.stats[f"outcome:{record.outcome.value}"] += 1
                self._record(record, loaded, result)
        return result

    def warm_up(self, only: str | None = None) -> None:
        """Load what the first relevant event would otherwise load while it waits: the policy (and
        with it every rule module), the client libraries of the products with an enabled rule (or
        of rule `only`, for a per-rule function), and the libraries of the configured alert
        channels and dedupe store. Imports only: clients and connections are still made on first
        use, so this needs no credentials and no network."""
        from shared import clients

        loaded = self.store.current()
        enabled = [r for r in loaded.enabled() if only is None or r == only]
        products = {rule_id.split("_", 1)[0] for rule_id in enabled}  # "run", "kms"
        if "kms" in products:
            products.add("run")  # a KMS finding's enrichment lists the Cloud Run services using the key
        clients.preload(*sorted(products))
        if self.alert and loaded.alerts is not None:
            from shared.alerts.delivery import preload

            preload(loaded.alerts)

    def _record_final(self, finding: Finding[Any], settings: RuleSettings, exc: Exception, attempt: int,
                      loaded: LoadedPolicy,
                      result: Result) -> bool:
        """Record FAILED and alert on a finding that failed on its last delivery; False if even
        that could not reach anyone (then the event is dead-lettered, and rampart_dead_letter alerts)."""
        from dataclasses import replace

        from shared.deadletter import final_attempt_record

        # Its own alert claim: the claim of the attempts that failed may be held or done already.
        record = final_attempt_record(replace(finding, event_id=finding.event_id + "#last-attempt"), settings, exc, attempt)
        try:
            self._record(record, loaded, result)
        except Exception:  # noqa: BLE001 — the caller raises the original error instead
            return False
        result.records.append(record)
        self.stats[f"outcome:{record.outcome.value}"] += 1
        return True

    def report(self, record: ActionRecord, loaded: LoadedPolicy) -> None:
        """Log and alert on a record made outside `handle` (the dead-letter consumer)."""
        self._record(record, loaded, Result(event_id=record.finding.event_id))

    def _record(self, record: ActionRecord, loaded: LoadedPolicy, result: Result) -> None:
        from shared.alerts import deliver, log_record

        log_record(record)
        # An exempt finding is the security team's own decision: on the record, not on-call's pager.
        if self.alert and loaded.alerts is not None and record.outcome is not Outcome.EXEMPT:
            result.deliveries.append(deliver(record, loaded.alerts, store=self._dedupe_pinned))


def severity_at_least(record_or_finding: ActionRecord | Finding[Any], threshold: Severity) -> bool:
    sev = record_or_finding.effective_severity if isinstance(record_or_finding, ActionRecord) else record_or_finding.severity
    return sev.rank >= threshold.rank
