"""Fast unit tests of the alert claims (shared/alerts/dedupe.py), no emulator: the pure
transitions over plain dicts (begin, progress, finish, release), `MemoryStore`, and
`FirestoreStore`'s read-transition-write loop and failure budget against a plain fake client.
tests/test_alerts_dedupe.py and tests/test_dedupe_preconditions.py run the same against the
Firestore emulator; these fail in a fraction of a second and name the field that went wrong."""

from __future__ import annotations

from typing import Any

from shared.alerts import dedupe as D


def _req(**kw: Any) -> D.BeginRequest:
    base: dict[str, Any] = {"event_key": "evt-1", "resource_key": "res-1", "owner": "me", "payload": '{"p": 1}',
                            "now": 1000.0, "lease_seconds": 30.0, "window_seconds": 600.0, "escalate_after": 3}
    return D.BeginRequest(**(base | kw))


def test_a_first_claim_alerts_and_holds_the_lease() -> None:
    claim, ev, res = D.begin_transition(None, None, _req(labels={"rule": "r"}))
    assert claim == D.Claim(status="new", decision="alert", payload='{"p": 1}', occurrences=1, attempt=1)
    assert ev == {"decision": "alert", "payload": '{"p": 1}', "delivered": [], "occurrences": 1, "attempt": 1,
                  "owner": "me", "lease_until": 1030.0, "done": False, "tentative": False, "settle_until": 0.0,
                  "created_at": 1000.0, "resource_key": "res-1", "rule": "r"}
    assert res == {"window_start": 1000.0, "count": 1, "escalated": False, "rule": "r", "alerted_at": 1000.0}
