"""The data that flows through Rampart: findings from rules, records from actions.

Plain frozen dataclasses with no dependencies, so rules and the event model stay
cheap to import and trivial to test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

D = TypeVar("D")


class Severity(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.lower())
        except ValueError:
            raise ValueError(
                f"expected a severity, one of {', '.join(s.value for s in cls)}; found {value!r}"
            ) from None


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Mode(str, Enum):
    """What the security team lets a rule do."""

    OFF = "off"
    ALERT = "alert"
    DRY_RUN = "dry-run"
    ENFORCE = "enforce"


class Action(str, Enum):
    """What a rule does about a finding when it is allowed to act."""

    REVERT = "revert"
    QUARANTINE = "quarantine"
    RESTORE = "restore"  # put back something that was taken away (KMS version, binding)
    ALERT = "alert"  # no safe automatic fix: tell a human


class Outcome(str, Enum):
    """How handling a finding ended. Every finding ends in exactly one of these."""

    REMEDIATED = "remediated"  # reverted or restored; live state now compliant
    QUARANTINED = "quarantined"
    ALREADY_COMPLIANT = "already_compliant"  # live state was fine when we looked
    DRY_RUN = "dry_run"  # would have changed `changes`; wrote nothing
    ALERTED = "alerted"  # mode alert, or the rule has no automatic fix
    EXEMPT = "exempt"
    FAILED = "failed"  # permanent failure: reason says why; alerted, not retried
    NOT_FOUND = "not_found"  # the resource no longer exists


@dataclass(frozen=True, slots=True)
class Change:
    """One field Rampart changed (or would change): `field` from `before` to `after`."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class Finding(Generic[D]):
    """A rule's verdict on one resource: what is wrong, where, and (when an audit entry located
    it) who did it.

    `observed` holds only values safe to log and alert on (never a secret value); it is for
    people. `detail` is for the rule's remediation: a typed, per-rule value (e.g. the members
    that lack a role), never parsed back out of `observed`, and never logged or alerted.
    `resource` is the canonical API name (projects/P/locations/L/services/S,
    projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/N]).
    """

    rule: str
    severity: Severity
    title: str
    resource: str
    resource_type: str  # run.service | kms.keyRing | kms.cryptoKey | kms.cryptoKeyVersion
    project: str
    location: str
    principal: str
    action: Action
    event_id: str
    method: str
    timestamp: str
    observed: dict[str, Any] = field(default_factory=dict)
    detail: D | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["detail"]  # the remediation's, not the alert's
        d["severity"] = self.severity.value
        d["action"] = self.action.value
        return d


@dataclass(slots=True)
class ActionRecord:
    """What happened to one finding: the remediation record logged and alerted on."""

    finding: Finding[Any]
    mode: Mode
    outcome: Outcome
    changes: list[Change] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    reason: str = ""  # why it failed, was exempt, or was already compliant
    undo: str = ""  # the exact command that reverses what Rampart did
    attempts: int = 0
    duration_ms: float = 0.0
    severity: Severity | None = None  # effective severity when the policy overrides or escalates

    @property
    def effective_severity(self) -> Severity:
        return self.severity or self.finding.severity

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.finding.rule,
            "severity": self.effective_severity.value,
            "title": self.finding.title,
            "resource": self.finding.resource,
            "resource_type": self.finding.resource_type,
            "project": self.finding.project,
            "location": self.finding.location,
            "principal": self.finding.principal,
            "method": self.finding.method,
            "event_id": self.finding.event_id,
            "event_time": self.finding.timestamp,
            "observed": self.finding.observed,
            "mode": self.mode.value,
            "action": self.finding.action.value,
            "outcome": self.outcome.value,
            "changes": [asdict(c) for c in self.changes],
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "undo": self.undo,
            "attempts": self.attempts,
            "duration_ms": round(self.duration_ms, 2),
        }
