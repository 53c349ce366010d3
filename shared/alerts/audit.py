"""The remediation record as one structured log entry: the security team's audit trail.

A log sink (or its BigQuery export) reads `jsonPayload.rampart.*`: the fields of
`ActionRecord.to_dict()`, under a key layout that does not change.
"""

from __future__ import annotations

from shared import log
from shared.alerts import format as fmt
from shared.model import ActionRecord, Outcome, Severity

RECORD_MESSAGE = "rampart.remediation"

_BY_SEVERITY = {
    Severity.LOW: "NOTICE",
    Severity.MEDIUM: "WARNING",
    Severity.HIGH: "ERROR",
    Severity.CRITICAL: "CRITICAL",
}
# Outcomes where nothing was wrong by the time Rampart looked, or policy said leave it.
_QUIET = frozenset({Outcome.ALREADY_COMPLIANT, Outcome.EXEMPT, Outcome.NOT_FOUND})
_RANK = ["INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"]


def log_severity(record: ActionRecord) -> str:
    """Cloud Logging severity: INFO when nothing was wrong, else by finding severity; failures at least ERROR."""
    if record.outcome in _QUIET:
        return "INFO"
    sev = _BY_SEVERITY[record.effective_severity]
    if record.outcome is Outcome.FAILED and _RANK.index(sev) < _RANK.index("ERROR"):
        return "ERROR"
    return sev


def log_record(record: ActionRecord) -> None:
    """Write one structured entry: {"severity", "message": "rampart.remediation", "rampart": {...record}}."""
    fields = fmt.record_fields(record)
    labels = {
        "rampart_rule": str(fields["rule"]),
        "rampart_outcome": str(fields["outcome"]),
        "rampart_severity": str(fields["severity"]),
        "rampart_mode": str(fields["mode"]),
    }
    log.emit(log_severity(record), RECORD_MESSAGE, rampart=fields, **{"logging.googleapis.com/labels": labels})
