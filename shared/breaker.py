"""Fights with infrastructure as code: a circuit breaker per rule and resource, and a per-project
write rate limit.

When a rule has remediated the same resource `remediation.circuit_breaker.max_remediations` times
within `window_seconds` (default 3 in 1 hour) and the resource is opened again, something keeps
putting it back (a Terraform apply, a deploy pipeline). Reverting again only starts a loop, so
Rampart stops: it sends one escalating alert naming the principals on the other side, and holds the
resource in alert mode until a human runs `python main.py reset RESOURCE` or the window passes.

State lives in the dedupe store (Firestore, the same database, so every instance agrees; documents
`brk-<sha256(rule, resource)>`). Read-then-write, not a transaction: two instances racing may count
one remediation too few, never hold a resource that should not be held.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared import log
from shared.model import Action, ActionRecord, Finding, Mode, Outcome

_ACTED = (Outcome.REMEDIATED, Outcome.QUARANTINED)
_local_store: Any = None
_local_lock = threading.Lock()


def breaker_key(rule: str, resource: str) -> str:
    return "brk-" + hashlib.sha256(f"{rule}\0{resource}".encode()).hexdigest()


def _store(loaded: Any) -> Any:
    global _local_store
    if loaded.alerts is not None:
        from shared.alerts.dedupe import store_for

        return store_for(loaded.alerts)
    with _local_lock:
        if _local_store is None:
            from shared.alerts.dedupe import MemoryStore

            _local_store = MemoryStore()
        return _local_store


def _read(store: Any, key: str) -> dict[str, Any] | None:
    from shared.alerts.dedupe import StoreUnavailable

    try:
        return store.get(key)
    except StoreUnavailable:
        return None  # fail open: without the count, Rampart keeps remediating


def _write(store: Any, key: str, doc: dict[str, Any]) -> None:
    from shared.alerts.dedupe import StoreUnavailable

    try:
        store.put(key, doc)
    except StoreUnavailable as e:
        log.warning("rampart.breaker_unavailable", error=type(e).__name__, action="counting without this remediation")


def guarded(finding: Finding, settings: Any, loaded: Any, act: Callable[[], ActionRecord], *,
            store: Any = None, now: Callable[[], float] = time.time) -> ActionRecord:
    """`act()` unless the breaker holds this rule and resource; counts what `act()` remediated.
    `store`: the dedupe store (None: the one the policy names)."""
    cb = loaded.policy.remediation.circuit_breaker
    if settings.mode is not Mode.ENFORCE or cb.max_remediations <= 0:
        return act()
    store = store if store is not None else _store(loaded)
    key = breaker_key(finding.rule, finding.resource)
    t = now()
    doc = _read(store, key) or {}
    recent = [x for x in doc.get("remediations", []) if t - float(x["at"]) < cb.window_seconds]
    tripped = float(doc.get("tripped_at") or 0.0)
    if tripped and t - tripped < cb.window_seconds:
        return _held(finding, settings, doc, tripped, cb, first=False)
    if len(recent) >= cb.max_remediations:
        principals = sorted({x["principal"] for x in recent if x.get("principal")} | {finding.principal} - {""})
        doc = {"rule": finding.rule, "resource": finding.resource, "remediations": recent, "tripped_at": t,
               "principals": principals[:20], "released_at": t}
        _write(store, key, doc)
        log.warning("rampart.breaker_tripped", rule=finding.rule, resource=finding.resource[:300],
                    remediations=len(recent), principals=principals[:20])
        return _held(finding, settings, doc, t, cb, first=True)
    if settings.action is not Action.ALERT:
        take_write(finding.project, loaded.policy.remediation.project_writes_per_minute)
    record = act()
    if record.outcome in _ACTED:
        recent.append({"at": t, "principal": finding.principal[:200], "event_id": finding.event_id[:200]})
        _write(store, key, {"rule": finding.rule, "resource": finding.resource, "remediations": recent[-50:],
                            "tripped_at": 0.0, "released_at": t})
    return record


def _held(finding: Finding, settings: Any, doc: dict[str, Any], tripped: float, cb: Any, *, first: bool) -> ActionRecord:
    from shared.alerts.format import raise_severity

    principals = ", ".join(doc.get("principals", [])) or "unknown"
    n = len(doc.get("remediations", []))
    minutes = max(1, round(cb.window_seconds / 60))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(tripped + cb.window_seconds))
    reason = (
        f"circuit breaker: {finding.rule} remediated this resource {n} times within {minutes} min and it was opened "
        f"again, by {principals}: something keeps putting it back (infrastructure as code?). Rampart stopped "
        f"reverting it and holds it in alert mode until {until} or `python main.py reset {finding.resource}`. "
        "Next step: fix the source of the change (the Terraform config, the deploy pipeline), then reset"
    )
    observed, title = dict(finding.observed), finding.title
    if first:
        # Its own content, so the dedupe sends it even within the window of the remediations before it.
        observed["circuit_breaker"] = {"remediations": n, "within_minutes": minutes, "principals": doc.get("principals", []),
                                       "held_until": until, "reset": f"python main.py reset {finding.resource}"}
        title = f"Circuit breaker: Rampart stopped reverting ({finding.title}; reopened by {principals})"
    return ActionRecord(
        finding=replace(finding, observed=observed, title=title),
        mode=Mode.ALERT,
        outcome=Outcome.ALERTED,
        reason=reason,
        severity=raise_severity(settings.severity) if first else settings.severity,
    )


def reset(loaded: Any, resource: str, rule_ids: tuple[str, ...], *, store: Any = None) -> int:
    """Clear the breaker of `resource` for every rule; returns how many were holding it."""
    store = store if store is not None else _store(loaded)
    held = 0
    for rule in rule_ids:
        key = breaker_key(rule, resource)
        doc = _read(store, key)
        if doc is None:
            continue
        held += bool(doc.get("tripped_at"))
        _write(store, key, {"rule": rule, "resource": resource, "remediations": [], "tripped_at": 0.0,
                            "released_at": time.time()})
    return held


# ---------------------------------------------------------------------------
# Per-project write rate limit (per instance: a sliding window of write starts).

_writes: dict[str, deque[float]] = {}
_writes_lock = threading.Lock()


class ProjectRateLimited(Exception):
    """Too many writes for one project just now: fail so Pub/Sub redelivers later."""


def take_write(project: str, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
    """Count one remediation write for `project`; ProjectRateLimited past `per_minute` (0: no limit)."""
    if per_minute <= 0:
        return
    t = now()
    with _writes_lock:
        q = _writes.setdefault(project, deque())
        while q and t - q[0] >= 60.0:
            q.popleft()
        if len(q) >= per_minute:
            raise ProjectRateLimited(
                f"project {project[:100]}: {per_minute} remediation writes in the last minute already;"
                " retried on the next delivery so one noisy project cannot spend the quota the rest need"
            )
        q.append(t)
