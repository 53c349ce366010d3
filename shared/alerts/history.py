"""What a human did to a resource that later alerts must know: a `release` of a quarantine.

`python main.py release` notes the release in the dedupe store; a quarantine of the same resource
after it always alerts (never folded into the window of the quarantine before it), and says so.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from shared import log


def release_key(resource: str) -> str:
    return "rel-" + hashlib.sha256(resource.encode()).hexdigest()


def note_release(store: Any, resource: str, *, rule: str = "", quarantined_at: str = "", now: float | None = None) -> bool:
    """Record that `resource` was released; False (logged) if the store could not take it."""
    from shared.alerts.dedupe import StoreUnavailable

    doc = {"resource": resource, "rule": rule, "quarantined_at": quarantined_at,
           "released_at": now if now is not None else time.time()}
    try:
        store.put(release_key(resource), doc)
    except (StoreUnavailable, AttributeError) as e:
        log.warning("rampart.release_not_noted", resource=resource[:300], error=type(e).__name__,
                    action="a quarantine of it again may be grouped with the earlier one")
        return False
    return True


def last_release(store: Any, resource: str) -> dict[str, Any] | None:
    """The release note of `resource`, or None (also when the store cannot say)."""
    from shared.alerts.dedupe import StoreUnavailable

    get = getattr(store, "get", None)
    if get is None:
        return None
    try:
        return get(release_key(resource))
    except StoreUnavailable:
        return None


def history_note(note: dict[str, Any]) -> str:
    at = datetime.fromtimestamp(float(note.get("released_at", 0.0)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = f" (quarantined by {note['rule']} at {note['quarantined_at']})" if note.get("rule") else ""
    return f"Quarantined again after a human released it at {at}{before}: whatever put it back is still at work."
