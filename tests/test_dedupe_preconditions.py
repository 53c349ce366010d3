"""Firestore dedupe across two instances when their read-then-write steps interleave (issue 18
item 1): every update carries its read's update time as a precondition, so the instance that
read first and writes second loses, reads again and decides again, instead of overwriting.

The interleaving is made exact, not left to thread timing: instance B's read-decide-write runs
whole between instance A's read and A's commit (a client wrapper holds A's commit back once).
The Firestore emulator enforces the preconditions; nothing else is faked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.local.emulators import FirestoreEmulator
from shared.alerts.dedupe import BeginRequest, Claim, FirestoreStore, event_key, resource_key
from tests.support.fixtures_local import EMULATOR_PROJECT

pytestmark = pytest.mark.integration


class CommitsLate:
    """A Firestore client whose next batch runs `between()` just before it commits."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.between: Callable[[], Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def batch(self) -> Any:
        batch = self._real.batch()
        hook, self.between = self.between, None
        if hook is not None:
            commit = batch.commit

            def late_commit(**kw: Any) -> Any:
                hook()
                return commit(**kw)

            batch.commit = late_commit
        return batch


def req(event: str, owner: str, now: float, *, resource: str = "svc") -> BeginRequest:
    return BeginRequest(
        event_key=event_key("rule_a", event), resource_key=resource_key("rule_a", resource), owner=owner,
        payload=f'{{"event": "{event}"}}', now=now, lease_seconds=60.0, window_seconds=3600.0, escalate_after=None,
        labels={"rule": "rule_a", "event_id": event, "resource": resource},
    )


@pytest.fixture
def two_instances(firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FirestoreStore, FirestoreStore, CommitsLate]]:
    """Instance A (whose commits can be held back) and instance B, on one fresh collection."""
    from google.cloud import firestore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    collection = f"alerts_{uuid.uuid4().hex[:10]}"
    late = CommitsLate(firestore.Client(project=EMULATOR_PROJECT))
    yield FirestoreStore(collection, project=EMULATOR_PROJECT, client=late), FirestoreStore(collection, project=EMULATOR_PROJECT), late


def test_window_counts_are_not_lost_when_two_instances_count_at_once(two_instances: Any) -> None:
    a, b, late = two_instances
    assert a.begin(req("e1", "A", 1000.0)).occurrences == 1
    got: list[Claim] = []
    late.between = lambda: got.append(b.begin(req("e2", "B", 1001.0)))

    mine = a.begin(req("e3", "A", 1002.0))  # read count 1; B counts e2 (2) before A writes

    assert [c.occurrences for c in got] == [2]
    assert mine.occurrences == 3, "A overwrote B's count instead of reading it again"
    assert mine.decision == "suppress" and got[0].decision == "suppress"
    assert b.begin(req("e4", "B", 1003.0)).occurrences == 4


def test_an_expired_lease_is_taken_over_by_one_instance_only(two_instances: Any) -> None:
    a, b, late = two_instances
    first = FirestoreStore(a.collection, project=EMULATOR_PROJECT)
    assert first.begin(req("e1", "dead", 1000.0)).status == "new"  # its holder dies; the lease ends at 1060
    got: list[Claim] = []
    late.between = lambda: got.append(b.begin(req("e1", "B", 2000.0)))

    mine = a.begin(req("e1", "A", 2000.0))  # both read the expired lease; B takes it over first

    assert [c.status for c in got] == ["resumed"]
    assert mine.status == "busy", f"A took over a lease B already held: {mine}"
    snap = b.client().collection(b.collection).document(event_key("rule_a", "e1")).get()
    assert snap.to_dict()["owner"] == "B" and snap.to_dict()["attempt"] == 2
