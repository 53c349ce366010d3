"""Rampart's Functions Framework entry points, and the operator CLI (`python main.py --help`).

Deploy `rampart` to run every enabled rule in one function, or one entry point per rule
(`run_ingress_open`, `kms_version_disabled`, ...) to give each its own sink filter and its
own least-privilege service account. Importing this module loads no Google client library
and touches no network: the policy, the rules' code and the clients load on first use.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import functions_framework

from shared import log
from shared.event import BadInput, from_cloudevent

_pipeline: Any = None
_pipeline_lock = threading.Lock()


def _get_pipeline() -> Any:
    global _pipeline
    if _pipeline is None:
        with _pipeline_lock:
            if _pipeline is None:
                from shared.pipeline import Pipeline

                _pipeline = Pipeline()
    return _pipeline


def handle_cloud_event(cloud_event: Any, only: str | None = None) -> Any:
    """Handle one delivery. Returns normally for anything handled or deliberately skipped
    (Pub/Sub acks it); raises only for failures worth a redelivery."""
    try:
        event = from_cloudevent(cloud_event)
    except BadInput as exc:
        # Acknowledge: a malformed message never becomes valid by retrying. Log why, not what.
        log.warning("rampart.bad_input", reason=exc.reason, ce_id=_attr(cloud_event, "id"), ce_type=_attr(cloud_event, "type"))
        return None
    pipeline = _pipeline if _pipeline is not None else None
    if pipeline is None:
        from shared.pipeline import triage

        if isinstance(triage(event), str):
            return None  # irrelevant: decided without loading the policy or any client
        pipeline = _get_pipeline()
    try:
        return pipeline.handle(event, only=only)
    except Exception as exc:
        log.error(
            "rampart.event_failed",
            event_id=event.event_id,
            method=event.method,
            resource=event.resource_name,
            error=type(exc).__name__,
            reason=str(exc)[:300],
            action="returning an error so Pub/Sub redelivers",
        )
        raise


def _attr(ce: Any, key: str) -> str:
    try:
        v = ce[key]
    except (KeyError, TypeError):
        return ""
    return v if isinstance(v, str) else ""


@functions_framework.cloud_event
def rampart(cloud_event: Any) -> None:
    """Every enabled rule, in one function."""
    handle_cloud_event(cloud_event)


def _entry(rule_id: str) -> Any:
    def entry(cloud_event: Any) -> None:
        handle_cloud_event(cloud_event, only=rule_id)

    entry.__name__ = entry.__qualname__ = rule_id
    entry.__doc__ = f"Only the {rule_id} rule (deploy with its own sink filter and service account)."
    return functions_framework.cloud_event(entry)


run_ingress_open = _entry("run_ingress_open")
run_public_invoker = _entry("run_public_invoker")
run_invoker_iam_disabled = _entry("run_invoker_iam_disabled")
run_default_service_account = _entry("run_default_service_account")
run_unapproved_region = _entry("run_unapproved_region")
run_vpc_egress = _entry("run_vpc_egress")
run_plaintext_secrets = _entry("run_plaintext_secrets")
run_cmek_missing = _entry("run_cmek_missing")
kms_version_disabled = _entry("kms_version_disabled")
kms_version_destroy_scheduled = _entry("kms_version_destroy_scheduled")
kms_agent_binding_removed = _entry("kms_agent_binding_removed")
kms_public_member = _entry("kms_public_member")
kms_unapproved_location = _entry("kms_unapproved_location")
kms_rotation = _entry("kms_rotation")


if __name__ == "__main__":
    from shared.cli import main

    sys.exit(main())
