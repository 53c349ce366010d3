"""The remediation record as one structured log entry: the security team's audit trail.

A log sink (or its BigQuery export) reads `jsonPayload.rampart.*`: the fields of
`ActionRecord.to_dict()`, under a key layout that does not change.
"""

from __future__ import annotations

from shared import log
from shared.alerts import format as fmt
from shared.model import ActionRecord, Outcome

RECORD_MESSAGE = "rampart.remediation"

# The entry's severity follows what happened, not the rule's severity (that is the label
# rampart_severity): a violation Rampart closed is NOTICE, so error-rate alerting on Rampart's
# logs fires for its failures, not for its successes.
_BY_OUTCOME = {
    Outcome.ALREADY_COMPLIANT: "INFO",  # nothing was wrong by the time Rampart looked
    Outcome.EXEMPT: "INFO",  # policy said leave it
    Outcome.NOT_FOUND: "INFO",
    Outcome.REMEDIATED: "NOTICE",  # closed
    Outcome.QUARANTINED: "NOTICE",
    Outcome.DRY_RUN: "WARNING",  # still open: a human must look
    Outcome.ALERTED: "WARNING",
    Outcome.FAILED: "ERROR",  # still open, and Rampart could not close it
}


def log_severity(record: ActionRecord) -> str:
    """Cloud Logging severity, by outcome: INFO nothing to do, NOTICE closed, WARNING left open
    for a human, ERROR failed."""
    return _BY_OUTCOME.get(record.outcome, "WARNING")


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
