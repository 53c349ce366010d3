"""Alerts on-call can act on (Slack, e-mail, Pub/Sub) and the remediation record in the log.

`deliver(record, cfg)` after each action; `log_record(record)` for the audit trail.
`AlertsConfig` is loaded lazily: it is the only part that imports pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.alerts.audit import log_record
from shared.alerts.dedupe import FirestoreStore, MemoryStore, Store
from shared.alerts.delivery import (
    AlertClaimBusy,
    AlertDeliveryError,
    DeliveryReport,
    deliver,
)

if TYPE_CHECKING:
    from shared.alerts.config import AlertsConfig

__all__ = [
    "AlertClaimBusy",
    "AlertDeliveryError",
    "AlertsConfig",
    "DeliveryReport",
    "FirestoreStore",
    "MemoryStore",
    "Store",
    "deliver",
    "log_record",
]


def __getattr__(name: str) -> Any:
    if name == "AlertsConfig":
        from shared.alerts.config import AlertsConfig

        return AlertsConfig
    raise AttributeError(f"module 'shared.alerts' has no attribute {name!r}")
