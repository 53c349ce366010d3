"""Dedupe claims: once per event, repeats grouped per resource, escalation, leases; memory and Firestore."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from infra.local.emulators import FirestoreEmulator
from shared.alerts.dedupe import (
    BeginRequest,
    Claim,
    FirestoreStore,
    LeaseLost,
    MemoryStore,
    Store,
    event_key,
    resource_key,
)
from tests.support.fixtures_local import EMULATOR_PROJECT

StoreFactory = Callable[[], Store]


def req(event: str, *, resource: str = "svc", now: float = 1000.0, owner: str | None = None, **kw: object) -> BeginRequest:
    base: dict[str, object] = {"lease_seconds": 60.0, "window_seconds": 3600.0, "escalate_after": 3}
    base.update(kw)
    return BeginRequest(
        event_key=event_key("rule_a", event),
        resource_key=resource_key("rule_a", resource),
        owner=owner or uuid.uuid4().hex,
        payload=f'{{"event": "{event}"}}',
        now=now,
        labels={"rule": "rule_a", "event_id": event, "resource": resource},
        **base,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["memory", "firestore"])
def stores(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """A factory of stores sharing one state: each call is another function instance."""
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
        return
    emu: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    mp = pytest.MonkeyPatch()
    mp.setenv("FIRESTORE_EMULATOR_HOST", emu.host)
    collection = f"alerts_{uuid.uuid4().hex[:10]}"
    try:
        yield lambda: FirestoreStore(collection, project=EMULATOR_PROJECT)
    finally:
        mp.undo()


def test_same_event_claims_once_then_is_a_duplicate(stores: StoreFactory) -> None:
    a, b = stores(), stores()
    first = req("e1", owner="A")
    claim = a.begin(first)
    assert (claim.status, claim.decision, claim.occurrences) == ("new", "alert", 1)
    assert b.begin(req("e1", owner="B", now=1001)).status == "busy"  # A is still sending
    a.progress(first.event_key, "A", "slack", 1002, 60)
    a.finish(first.event_key, "A")
    dup = b.begin(req("e1", owner="B", now=1003))
    assert dup.status == "duplicate"
    assert dup.delivered == frozenset({"slack"})


def test_a_dead_holder_is_taken_over_after_its_lease_with_the_first_record(stores: StoreFactory) -> None:
    a, b = stores(), stores()
    first = req("e1", owner="A")
    a.begin(first)
    a.progress(first.event_key, "A", "slack", 1001, 60)  # A sent Slack, then died before e-mail
    later = BeginRequest(**{**_fields(req("e1", owner="B", now=1062)), "payload": '{"event": "re-evaluated"}'})
    claim = b.begin(later)
    assert (claim.status, claim.attempt) == ("resumed", 2)
    assert claim.delivered == frozenset({"slack"})
    assert claim.payload == '{"event": "e1"}'  # what was first seen, not the re-evaluation
    with pytest.raises(LeaseLost):
        a.progress(first.event_key, "A", "email", 1063, 60)  # A woke up: too late, it must not send
    b.finish(first.event_key, "B")
    assert a.begin(req("e1", now=1064)).status == "duplicate"


def test_a_released_claim_is_retried_at_once(stores: StoreFactory) -> None:
    a, b = stores(), stores()
    first = req("e1", owner="A")
    a.begin(first)
    a.release(first.event_key, "A")  # every channel failed
    claim = b.begin(req("e1", owner="B", now=1001))
    assert claim.status == "resumed" and claim.delivered == frozenset()


def test_repeats_are_counted_then_escalated_once_then_a_new_window(stores: StoreFactory) -> None:
    s = stores()
    decisions = []
    for i in range(6):
        c = s.begin(req(f"e{i}", now=1000 + i))
        decisions.append((c.decision, c.occurrences))
        if c.decision != "suppress":
            s.finish(event_key("rule_a", f"e{i}"), _owner_of(s, f"e{i}"))
    assert decisions == [
        ("alert", 1),
        ("suppress", 2),
        ("suppress", 3),
        ("escalate", 4),  # the 3rd repeat reaches escalate_after=3
        ("suppress", 5),
        ("suppress", 6),
    ]
    other = s.begin(req("x1", resource="other-svc", now=1010))
    assert other.decision == "alert"
    fresh = s.begin(req("e9", now=1000 + 3600))
    assert (fresh.decision, fresh.occurrences) == ("alert", 1)


def test_suppressed_repeat_redelivered_is_a_duplicate_not_a_new_count(stores: StoreFactory) -> None:
    s = stores()
    s.begin(req("e1"))
    assert s.begin(req("e2", now=1001)).decision == "suppress"
    again = s.begin(req("e2", now=1002))
    assert again.status == "duplicate"
    assert s.begin(req("e3", now=1003)).occurrences == 3


def test_two_instances_racing_on_one_event_never_both_win(stores: StoreFactory) -> None:
    for round_ in range(2):
        results: list[Claim] = []
        barrier = threading.Barrier(2)

        def run(
            store: Store,
            owner: str,
            event: str = f"race{round_}",
            barrier: threading.Barrier = barrier,
            results: list[Claim] = results,
        ) -> None:
            barrier.wait()
            results.append(store.begin(req(event, resource=event, owner=owner)))

        threads = [threading.Thread(target=run, args=(stores(), o)) for o in ("A", "B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(c.status for c in results) == ["busy", "new"], results


def _owner_of(store: Store, event: str) -> str:
    key = event_key("rule_a", event)
    if isinstance(store, MemoryStore):
        return str(store.docs[key]["owner"])
    assert isinstance(store, FirestoreStore)
    snap = store.client().collection(store.collection).document(key).get()
    return str(snap.to_dict()["owner"])


def _fields(r: BeginRequest) -> dict[str, object]:
    return {f: getattr(r, f) for f in r.__slots__}
