"""Rampart's Functions Framework entry points, and the operator CLI (`python main.py --help`).

Deploy `rampart` to run every enabled rule in one function, or one entry point per rule
(`run_ingress_open`, `kms_version_disabled`, ...) to give each its own sink filter and its
own least-privilege service account; `rampart_sweep` runs the posture sweep. Importing this module loads no Google client library
and touches no network: the policy, the rules' code and the client libraries load on first
use, or in a background warm-up once the server's worker runs (`start_warm_up`).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

import functions_framework

import functions
from shared import log
from shared.clients import check_endpoints
from shared.event import NOT_ADMIN_ACTIVITY, BadInput, from_cloudevent

# A RAMPART_*_ENDPOINT naming anything but loopback would receive Rampart's access token: refuse
# to start (the import fails, so the deploy's health check does) rather than serve one event.
check_endpoints()
_identity = os.environ.get("RAMPART_IDENTITY", "").strip()
if _identity not in ("", "detect", "act-run", "act-kms"):
    raise ValueError(f"RAMPART_IDENTITY: expected detect, act-run or act-kms (or unset); found {_identity[:40]!r}")

if TYPE_CHECKING:
    from shared.pipeline import Pipeline, Result

_pipeline: Pipeline | None = None
_pipeline_lock = threading.Lock()
_warm_up_started = False
# Relevant events being handled now: the warm-up waits for none before it loads client libraries,
# so a new instance's first violation has the CPU to itself (bench/coldstart.py, first_violations).
_in_flight = 0
_idle = threading.Condition()
WARM_UP_YIELD_S = 10.0  # at most this long: a steady stream of violations must not starve it


def _get_pipeline() -> Pipeline:
    global _pipeline
    if _pipeline is None:
        with _pipeline_lock:
            if _pipeline is None:
                from shared.pipeline import Pipeline

                _pipeline = Pipeline()
    return _pipeline


def start_warm_up() -> None:
    """Load in a background thread what the first violation would otherwise wait ~1 s for: the
    policy, the rule modules, and the client and alert libraries the policy uses (imports only;
    clients are still created on first use). Once per process; called when the server's worker
    starts and after the first event, never at import."""
    global _warm_up_started
    if _warm_up_started:
        return
    with _pipeline_lock:
        if _warm_up_started:
            return
        _warm_up_started = True
    threading.Thread(target=_warm_up, name="rampart-warm-up", daemon=True).start()


def _warm_up() -> None:
    from shared.config import ConfigError

    target = os.environ.get("FUNCTION_TARGET", "")  # set by functions-framework: a per-rule function warms its rule only
    try:
        pipeline = _get_pipeline()
        pipeline.store.current()  # the policy and rules: whatever event comes first needs them too
        with _idle:  # the libraries: only once no event is waiting for its own (it imports those itself)
            _idle.wait_for(lambda: _in_flight == 0, timeout=WARM_UP_YIELD_S)
        pipeline.warm_up(only=target if target in functions.RULE_IDS else None)
    except ConfigError:
        return  # the policy store has logged why; the first relevant event reports it again
    except Exception as exc:  # noqa: BLE001 — a failed warm-up only means the first relevant event loads it
        log.warning("rampart.warm_up_failed", error=type(exc).__name__, reason=str(exc)[:300],
                    action="the first relevant event loads what is missing")


def handle_cloud_event(cloud_event: Any, only: str | None = None) -> Result | None:
    """Handle one delivery. Returns normally for anything handled or deliberately skipped
    (Pub/Sub acks it); raises only for failures worth a redelivery."""
    global _in_flight
    try:
        # Validated in full (a malformed entry is logged below), but built only if a rule triggers on it.
        event = from_cloudevent(cloud_event, wanted=functions.TRIGGERS)
    except BadInput as exc:
        # Acknowledge: a malformed message never becomes valid by retrying. Log why, not what.
        log.warning("rampart.bad_input", reason=exc.reason, ce_id=_attr(cloud_event, "id"), ce_type=_attr(cloud_event, "type"))
        return None
    if event is None:
        return None  # no rule triggers on it (most of the stream): no policy, no client needed
    triaged = functions.triage(event)
    if isinstance(triaged, str):
        if triaged == NOT_ADMIN_ACTIVITY:
            # The sink sends Admin Activity entries only: this one was written by someone else.
            log.warning("rampart.not_admin_activity", event_id=event.event_id[:200], method=event.method[:200],
                        resource=event.resource_name[:300], principal=event.actor[:320],
                        reason="not an Admin Activity audit entry (logName or @type): not believed, nothing done")
        return None  # a failed call, a system event, ...: skipped without loading the policy
    pipeline = _get_pipeline()
    from shared.deadletter import delivery_attempt, max_delivery_attempts

    attempt = delivery_attempt(cloud_event)
    with _idle:
        _in_flight += 1
    try:
        if _identity == "detect":  # read-only: writers act on what it finds (shared/split.py)
            from shared import split

            return split.detect(pipeline, event, only=only, triaged=triaged)
        # On the last delivery Pub/Sub will make, a finding that still fails is recorded and alerted.
        return pipeline.handle(event, only=only, triaged=triaged,
                               last_attempt=attempt if attempt and attempt >= max_delivery_attempts() else None)
    except Exception as exc:
        log.error(
            "rampart.event_failed",
            event_id=event.event_id[:200],
            method=event.method[:200],
            resource=event.resource_name[:300],
            error=type(exc).__name__,
            # The exception's own words, not the payload's: our errors name fields, never values.
            reason=" ".join(str(exc).split())[:300],
            action="returning an error so Pub/Sub redelivers",
        )
        raise
    finally:
        with _idle:
            _in_flight -= 1
            _idle.notify_all()


def _attr(ce: Any, key: str) -> str:
    try:
        v = ce[key]
    except (KeyError, TypeError):
        return ""
    return v[:200] if isinstance(v, str) else ""  # attributes are caller-controlled: bounded in logs


@functions_framework.cloud_event
def rampart(cloud_event: Any) -> None:
    """Every enabled rule, in one function."""
    try:
        handle_cloud_event(cloud_event)
    finally:
        start_warm_up()  # after the event, so the first one does not share the CPU with it


@functions_framework.cloud_event
def rampart_act(cloud_event: Any) -> None:
    """A writer (RAMPART_IDENTITY act-run or act-kms): acts on the detector's requests, each after
    reading its audit entry from Cloud Logging itself (shared/split.py)."""
    from shared import split

    try:
        split.act(_get_pipeline(), cloud_event)
    finally:
        start_warm_up()


def _entry(rule_id: str) -> Any:
    def entry(cloud_event: Any) -> None:
        try:
            handle_cloud_event(cloud_event, only=rule_id)
        finally:
            start_warm_up()

    entry.__name__ = entry.__qualname__ = rule_id
    entry.__doc__ = f"Only the {rule_id} rule (deploy with its own sink filter and service account)."
    return functions_framework.cloud_event(entry)


# One entry point per rule, named by its id (functions-framework's --target), made from the registry.
for _rule_id in functions.RULE_IDS:
    globals()[_rule_id] = _entry(_rule_id)


@functions_framework.cloud_event
def rampart_sweep(cloud_event: Any) -> None:
    """The posture sweep (shared/sweep): a sweep request from Cloud Scheduler is planned into shards
    published to the sweep topic; a shard is judged and acted on. Deploy it on the sweep topic's
    push subscription, with its own service account (deploy.sh does)."""
    from shared.sweep.worker import handle

    handle(cloud_event)


@functions_framework.cloud_event
def rampart_dead_letter(cloud_event: Any) -> None:
    """The dead-letter topic's consumer: alerts on, and records, every message Rampart never finished
    handling, with the event's facts (never its payload). Raises only if no alert channel took it."""
    from shared.deadletter import handle_dead_letter

    pipeline = _get_pipeline()
    try:
        loaded = pipeline.store.current()
    except Exception as exc:
        log.error("rampart.dead_letter_unhandled", error=type(exc).__name__, ce_id=_attr(cloud_event, "id"),
                  action="returning an error: redelivered from the dead-letter subscription once the policy is fixed")
        raise
    handle_dead_letter(cloud_event, loaded, pipeline.report)


# gunicorn (what functions-framework serves with) imports this module in its arbiter and forks the
# worker from it: warm up in the worker as soon as it exists, before the first event arrives.
os.register_at_fork(after_in_child=start_warm_up)


if __name__ == "__main__":
    from shared.cli import main

    sys.exit(main())
