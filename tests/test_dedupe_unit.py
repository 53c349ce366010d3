"""Fast unit tests of the alert claims (shared/alerts/dedupe.py), no emulator: the pure
transitions over plain dicts (begin, progress, finish, release), `MemoryStore`, and
`FirestoreStore`'s read-transition-write loop, preconditions and failure budget against a plain
fake client. tests/test_alerts_dedupe.py and tests/test_dedupe_preconditions.py run the stores
against the Firestore emulator; these fail in a fraction of a second and name the field that
went wrong. Times are plain numbers (seconds), as the pipeline passes time.time()."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from shared.alerts import dedupe as D

LABELS = {"rule": "run_ingress_open", "event_id": "e1", "resource": "projects/p/locations/l/services/s"}


def _req(**kw: Any) -> D.BeginRequest:
    base: dict[str, Any] = {"event_key": "evt-1", "resource_key": "res-1", "owner": "me", "payload": '{"p": 1}',
                            "now": 1000.0, "lease_seconds": 30.0, "window_seconds": 600.0, "escalate_after": 3}
    return D.BeginRequest(**(base | kw))


# ---------------------------------------------------------------------------
# Keys and grouping.


def test_the_keys_are_sha256_of_the_rule_and_event_or_resource_and_content() -> None:
    assert D.event_key("r", "e1") == "evt-" + hashlib.sha256(b"r\x00e1").hexdigest()
    assert D.resource_key("r", "res") == "res-" + hashlib.sha256(b"r\x00res\x00").hexdigest()
    assert D.resource_key("r", "res", "c") == "res-" + hashlib.sha256(b"r\x00res\x00c").hexdigest()


def test_a_findings_content_is_what_was_observed_and_whether_rampart_failed() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    assert D.finding_content({"observed": {"b": 1, "a": when}, "outcome": "failed"}) == (
        '{"failed": true, "observed": {"a": "2026-01-02 00:00:00+00:00", "b": 1}}')
    assert D.finding_content({"outcome": "remediated"}) == '{"failed": false, "observed": null}'


# ---------------------------------------------------------------------------
# begin_transition: no claim yet.


def test_a_first_claim_alerts_and_holds_the_lease() -> None:
    claim, ev, res = D.begin_transition(None, None, _req(labels={"rule": "r"}))
    assert claim == D.Claim(status="new", decision="alert", payload='{"p": 1}', occurrences=1, attempt=1)
    assert ev == {"decision": "alert", "payload": '{"p": 1}', "delivered": [], "occurrences": 1, "attempt": 1,
                  "owner": "me", "lease_until": 1030.0, "done": False, "tentative": False, "settle_until": 0.0,
                  "created_at": 1000.0, "resource_key": "res-1", "rule": "r"}
    assert res == {"window_start": 1000.0, "count": 1, "escalated": False, "rule": "r", "alerted_at": 1000.0}


def test_a_repeat_in_the_window_is_suppressed_and_counted() -> None:
    window = {"window_start": 900.0, "count": 1, "escalated": False, "alerted_at": 900.0, "rule": "r"}
    claim, ev, res = D.begin_transition(None, window, _req(labels=LABELS))
    assert claim == D.Claim(status="new", decision="suppress", payload='{"p": 1}', occurrences=2)
    assert res == {**window, "count": 2}  # alerted_at stays: nothing was sent
    assert ev == {"decision": "suppress", "payload": '{"p": 1}', "delivered": [], "occurrences": 2, "attempt": 1,
                  "owner": None, "lease_until": 0.0, "done": True, "tentative": False, "settle_until": 0.0,
                  "created_at": 1000.0, "resource_key": "res-1", **LABELS}


@pytest.mark.parametrize(("count", "escalated", "escalate_after", "decision"), [
    (2, False, 3, "suppress"),   # the 3rd occurrence: 2 repeats
    (3, False, 3, "escalate"),   # the 4th: 3 repeats
    (3, True, 3, "suppress"),    # escalated once per window
    (9, False, None, "suppress"),
    (1, False, 1, "escalate"),
])
def test_repeats_escalate_once_after_escalate_after(count: int, escalated: bool, escalate_after: int | None, decision: str) -> None:
    window = {"window_start": 900.0, "count": count, "escalated": escalated, "alerted_at": 900.0}
    claim, ev, res = D.begin_transition(None, window, _req(escalate_after=escalate_after))
    assert (claim.status, claim.decision, claim.occurrences) == ("new", decision, count + 1)
    assert ev is not None and res is not None
    assert (ev["occurrences"], res["count"]) == (count + 1, count + 1)
    if decision == "escalate":
        assert res == {**window, "count": count + 1, "escalated": True, "alerted_at": 1000.0}
        assert (ev["owner"], ev["lease_until"], ev["done"]) == ("me", 1030.0, False)
    else:
        assert res == {**window, "count": count + 1}
        assert (ev["owner"], ev["lease_until"], ev["done"]) == (None, 0.0, True)


@pytest.mark.parametrize(("window", "released_at", "new_window"), [
    ({"window_start": 400.0, "count": 5, "escalated": True}, 0.0, True),     # exactly window_seconds ago
    ({"window_start": 400.5, "count": 5, "escalated": True}, 0.0, False),
    ({"window_start": 900.0, "count": 5, "escalated": True}, 950.0, True),   # released by a human since
    ({"window_start": 900.0, "count": 5, "escalated": True}, 900.0, False),  # released when it started
])
def test_a_window_ends_after_window_seconds_or_when_a_human_releases_the_resource(
        window: dict[str, Any], released_at: float, new_window: bool) -> None:
    claim, _, res = D.begin_transition(None, window, _req(released_at=released_at))
    if new_window:
        assert claim.decision == "alert" and claim.occurrences == 1
        assert res == {"window_start": 1000.0, "count": 1, "escalated": False, "alerted_at": 1000.0}
    else:
        assert claim.decision == "suppress" and res == {**window, "count": 6}


@pytest.mark.parametrize(("alerted_at", "changed_at", "told"), [
    (950.0, 950.0, True), (951.0, 950.0, True), (949.0, 950.0, False), (None, 0.5, False), (950.0, None, False)])
def test_a_sweeps_claim_is_a_duplicate_when_the_rule_alerted_since_the_change(
        alerted_at: float | None, changed_at: float | None, told: bool) -> None:
    window: dict[str, Any] = {"window_start": 100.0, "count": 1, "escalated": False}
    if alerted_at is not None:
        window["alerted_at"] = alerted_at
    claim, ev, res = D.begin_transition(None, window, _req(changed_at=changed_at))
    if told:
        assert (claim, ev, res) == (D.Claim(status="duplicate", decision="suppress", payload='{"p": 1}'), None, None)
    else:
        assert claim.status == "new" and claim.decision == "alert" and ev is not None and res is not None


def test_a_sweeps_claim_with_no_window_is_new() -> None:
    claim, ev, res = D.begin_transition(None, None, _req(changed_at=10.0))
    assert claim.status == "new" and ev is not None and res is not None


def test_a_tentative_first_claim_waits_unowned_and_does_not_count_on_the_resource() -> None:
    claim, ev, res = D.begin_transition(None, None, _req(tentative=True, settle_seconds=5.0, labels=LABELS))
    assert claim == D.Claim(status="deferred", decision="alert", payload='{"p": 1}', occurrences=1)
    assert res is None
    assert ev == {"decision": "alert", "payload": '{"p": 1}', "delivered": [], "occurrences": 1, "attempt": 1,
                  "owner": None, "lease_until": 0.0, "done": False, "tentative": True, "settle_until": 1005.0,
                  "created_at": 1000.0, "resource_key": "res-1", **LABELS}


def test_a_tentative_claim_without_settle_time_or_in_a_suppressed_window_is_not_deferred() -> None:
    claim, ev, _ = D.begin_transition(None, None, _req(tentative=True, settle_seconds=0.0))
    assert claim.status == "new" and ev is not None and ev["tentative"] is False and ev["owner"] == "me"
    window = {"window_start": 900.0, "count": 1, "escalated": False}
    claim, ev, res = D.begin_transition(None, window, _req(tentative=True, settle_seconds=5.0))
    assert claim.status == "new" and claim.decision == "suppress" and ev is not None and ev["tentative"] is False
    assert res == {**window, "count": 2}


# ---------------------------------------------------------------------------
# begin_transition: a claim exists.

CLAIMED = {"decision": "escalate", "payload": "first", "delivered": ["slack"], "occurrences": 4, "attempt": 2,
           "owner": "other", "lease_until": 1010.0, "done": False, "tentative": False, "settle_until": 0.0}


def test_a_done_claim_is_a_duplicate_that_sends_what_was_first_seen() -> None:
    claim, ev, res = D.begin_transition({**CLAIMED, "done": True, "owner": None}, None, _req())
    assert (claim, ev, res) == (D.Claim(status="duplicate", decision="escalate", payload="first",
                                        delivered=frozenset({"slack"}), occurrences=4, attempt=2), None, None)


def test_a_claim_without_counts_reads_as_one_attempt_and_occurrence() -> None:
    claim, _, _ = D.begin_transition({"decision": "alert", "payload": "x", "done": True}, None, _req())
    assert claim == D.Claim(status="duplicate", decision="alert", payload="x", delivered=frozenset(), occurrences=1, attempt=1)


def test_a_claim_with_a_live_lease_is_busy() -> None:
    claim, ev, res = D.begin_transition(CLAIMED, None, _req())
    assert (claim.status, claim.payload, claim.delivered, claim.attempt, ev, res) == (
        "busy", "first", frozenset({"slack"}), 2, None, None)


@pytest.mark.parametrize("ev", [
    {**CLAIMED, "lease_until": 1000.0},               # the lease ends now
    {**CLAIMED, "owner": None},                       # released: nobody holds it
    {k: v for k, v in CLAIMED.items() if k != "lease_until"},
])
def test_a_claim_whose_holder_is_gone_is_resumed_with_the_next_attempt(ev: dict[str, Any]) -> None:
    claim, new_ev, res = D.begin_transition(ev, {"window_start": 0.0, "count": 1}, _req())
    assert claim == D.Claim(status="resumed", decision="escalate", payload="first", delivered=frozenset({"slack"}),
                            occurrences=4, attempt=3)
    assert new_ev == {**ev, "owner": "me", "lease_until": 1030.0, "attempt": 3}
    assert res is None


TENTATIVE = {"decision": "alert", "payload": "found it done", "delivered": [], "occurrences": 1, "attempt": 1,
             "owner": None, "lease_until": 0.0, "done": False, "tentative": True, "settle_until": 1005.0, "rule": "r"}


def test_a_tentative_claim_defers_another_tentative_record_until_it_settles() -> None:
    claim, ev, res = D.begin_transition(TENTATIVE, None, _req(tentative=True, settle_seconds=5.0))
    assert (claim.status, claim.payload, ev, res) == ("deferred", "found it done", None, None)


def test_the_record_of_the_work_replaces_a_tentative_one_and_counts_on_the_resource() -> None:
    claim, ev, res = D.begin_transition(TENTATIVE, None, _req(payload="did the work", labels={"rule": "r"}))
    assert claim == D.Claim(status="new", decision="alert", payload="did the work", occurrences=1, attempt=1)
    assert ev == {**TENTATIVE, "payload": "did the work", "tentative": False, "owner": "me", "lease_until": 1030.0, "attempt": 1}
    assert res == {"window_start": 1000.0, "count": 1, "escalated": False, "alerted_at": 1000.0, "rule": "r"}
    window = {"window_start": 900.0, "count": 3, "escalated": False, "alerted_at": 900.0}
    _, _, res = D.begin_transition(TENTATIVE, window, _req(payload="did the work"))
    assert res == {**window, "alerted_at": 1000.0}


def test_a_settled_tentative_record_goes_out_as_it_is() -> None:
    ev = {**TENTATIVE, "settle_until": 1000.0}  # settles now
    claim, new_ev, res = D.begin_transition(ev, None, _req(tentative=True, payload="also found it done", changed_at=990.0))
    assert (claim.status, claim.payload) == ("new", "found it done")
    assert new_ev is not None and new_ev["payload"] == "found it done" and new_ev["owner"] == "me"
    assert res is not None and res["alerted_at"] == 1000.0


def test_a_settled_tentative_record_is_done_when_the_work_was_alerted_since_the_change() -> None:
    ev = {**TENTATIVE, "settle_until": 990.0}
    window = {"window_start": 900.0, "count": 1, "escalated": False, "alerted_at": 995.0}
    claim, new_ev, res = D.begin_transition(ev, window, _req(tentative=True, changed_at=995.0))
    assert claim == D.Claim(status="duplicate", decision="alert", payload="found it done")
    assert new_ev == {**ev, "tentative": False, "done": True, "owner": None, "lease_until": 0.0}
    assert res is None


# ---------------------------------------------------------------------------
# progress, finish, release: only by the holder.

HELD = {"decision": "alert", "payload": "p", "delivered": ["slack"], "owner": "me", "lease_until": 1030.0, "done": False}


def test_progress_adds_a_channel_once_and_renews_the_lease() -> None:
    assert D.progress_transition(HELD, "me", "email", 1020.0, 30.0) == {**HELD, "delivered": ["slack", "email"], "lease_until": 1050.0}
    assert D.progress_transition(HELD, "me", "slack", 1020.0, 30.0) == {**HELD, "lease_until": 1050.0}
    assert D.progress_transition(HELD, "me", None, 1020.0, 10.0) == {**HELD, "lease_until": 1030.0}
    assert D.progress_transition({"owner": "me"}, "me", "email", 0.0, 1.0) == {"owner": "me", "delivered": ["email"], "lease_until": 1.0}
    assert HELD["delivered"] == ["slack"]  # the stored list is not changed in place


def test_finish_and_release_give_the_claim_back_done_or_undone() -> None:
    assert D.finish_transition(HELD, "me") == {**HELD, "done": True, "owner": None, "lease_until": 0.0}
    assert D.release_transition(HELD, "me") == {**HELD, "owner": None, "lease_until": 0.0}


@pytest.mark.parametrize(("ev", "holder"), [
    (None, "nobody"), ({**HELD, "owner": None}, "nobody"), ({**HELD, "owner": ""}, "nobody"), (HELD, "another instance")])
@pytest.mark.parametrize("step", ["progress", "finish", "release"])
def test_a_claim_not_held_by_the_caller_is_lost(ev: dict[str, Any] | None, holder: str, step: str) -> None:
    calls = {"progress": lambda: D.progress_transition(ev, "them", "slack", 0.0, 1.0),
             "finish": lambda: D.finish_transition(ev, "them"), "release": lambda: D.release_transition(ev, "them")}
    with pytest.raises(D.LeaseLost) as lost:
        calls[step]()
    assert str(lost.value) == f"expected this call to hold the alert claim; found it held by {holder}"


# ---------------------------------------------------------------------------
# MemoryStore.


def test_the_memory_store_keeps_both_documents_and_hands_out_copies() -> None:
    store = D.MemoryStore()
    assert store.begin(_req()).status == "new"
    assert set(store.docs) == {"evt-1", "res-1"}
    assert store.begin(_req(owner="other")).status == "busy"
    store.progress("evt-1", "me", "slack", 1001.0, 30.0)
    assert store.docs["evt-1"]["delivered"] == ["slack"] and store.docs["evt-1"]["lease_until"] == 1031.0
    store.release("evt-1", "me")
    assert store.docs["evt-1"]["owner"] is None
    assert store.begin(_req(owner="other")).status == "resumed"
    store.finish("evt-1", "other")
    assert store.begin(_req(owner="third")).status == "duplicate"
    copy = store.get("evt-1")
    assert copy is not None and copy["done"] is True
    copy["done"] = False
    assert store.docs["evt-1"]["done"] is True and store.get("missing") is None
    doc = {"released_at": 5.0}
    store.put("note", doc)
    doc["released_at"] = 6.0
    assert store.get("note") == {"released_at": 5.0}


def test_a_duplicate_writes_nothing_to_the_memory_store() -> None:
    store = D.MemoryStore()
    window = {"window_start": 100.0, "count": 1, "escalated": False, "alerted_at": 990.0}
    store.put("res-1", window)
    assert store.begin(_req(changed_at=950.0)).status == "duplicate"
    assert store.docs == {"res-1": window}


# ---------------------------------------------------------------------------
# FirestoreStore against a fake client: the same calls google-cloud-firestore answers.


class Snap:
    def __init__(self, doc: dict[str, Any] | None, version: int) -> None:
        self.exists, self._doc, self.update_time = doc is not None, doc, version

    def to_dict(self) -> dict[str, Any] | None:
        return dict(self._doc) if self._doc is not None else None


class Ref:
    def __init__(self, db: FakeClient, collection: str, key: str) -> None:
        self.db, self.path = db, f"{collection}/{key}"

    def get(self, **call: Any) -> Snap:
        self.db.calls.append(("get", self.path, call))
        if self.db.get_error is not None:
            raise self.db.get_error
        doc = self.db.docs.get(self.path)
        return Snap(doc, self.db.versions.get(self.path, 0))

    def set(self, doc: dict[str, Any], **call: Any) -> None:
        self.db.calls.append(("set", self.path, call))
        if self.db.get_error is not None:
            raise self.db.get_error
        self.db.write(self.path, doc)


class Batch:
    def __init__(self, db: FakeClient) -> None:
        self.db, self.ops = db, []

    def create(self, ref: Ref, doc: dict[str, Any]) -> None:
        self.ops.append(("create", ref.path, doc, None))

    def update(self, ref: Ref, doc: dict[str, Any], option: Any = None) -> None:
        self.ops.append(("update", ref.path, doc, option))

    def __len__(self) -> int:
        return len(self.ops)

    def commit(self, **call: Any) -> None:
        self.db.calls.append(("commit", [(op, path) for op, path, _, _ in self.ops], call))
        self.db.commits.append(self.ops)
        if self.db.conflicts:
            raise self.db.conflicts.pop(0)
        for op, path, doc, option in self.ops:
            if op == "create":
                assert path not in self.db.docs, "create of an existing document"
            else:
                assert option == ("last_update_time", self.db.versions[path]), "update without the precondition read"
            self.db.write(path, doc)


class Collection:
    def __init__(self, db: FakeClient, name: str) -> None:
        self.db, self.name = db, name

    def document(self, key: str) -> Ref:
        return Ref(self.db, self.name, key)


class FakeClient:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.calls: list[Any] = []
        self.commits: list[Any] = []
        self.conflicts: list[Exception] = []
        self.get_error: Exception | None = None
        self.collections: list[str] = []

    def collection(self, name: str) -> Collection:
        self.collections.append(name)
        return Collection(self, name)

    def batch(self) -> Batch:
        return Batch(self)

    def write_option(self, *, last_update_time: Any) -> Any:
        return ("last_update_time", last_update_time)

    def write(self, path: str, doc: dict[str, Any]) -> None:
        self.docs[path] = dict(doc)
        self.versions[path] = self.versions.get(path, 0) + 1


def _store(**kw: Any) -> tuple[D.FirestoreStore, FakeClient]:
    client = FakeClient()
    return D.FirestoreStore(client=client, **kw), client


EXPIRE_1000 = datetime.fromtimestamp(1000.0, UTC) + timedelta(days=8)


def test_the_firestore_store_defaults() -> None:
    store = D.FirestoreStore(client=FakeClient())
    assert (store.collection, store.project, store.database, store.retention_seconds, store.timeout) == (
        "rampart_alerts", None, "(default)", 8 * 86400, 10.0)


def test_a_first_claim_creates_both_documents_with_their_expiry() -> None:
    store, client = _store()
    claim = store.begin(_req())
    assert claim.status == "new"
    (ops,) = client.commits
    assert [(op, path) for op, path, _, _ in ops] == [("create", "rampart_alerts/evt-1"), ("create", "rampart_alerts/res-1")]
    assert client.docs["rampart_alerts/evt-1"]["expire_at"] == EXPIRE_1000
    assert client.docs["rampart_alerts/res-1"] == {"window_start": 1000.0, "count": 1, "escalated": False,
                                                   "alerted_at": 1000.0, "expire_at": EXPIRE_1000}
    assert set(client.collections) == {"rampart_alerts"}


def test_later_steps_update_under_the_read_precondition_and_add_no_expiry() -> None:
    store, client = _store(collection="c", retention_seconds=60.0)
    store.begin(_req())
    assert client.docs["c/evt-1"]["expire_at"] == datetime.fromtimestamp(1000.0, UTC) + timedelta(seconds=60)
    store.progress("evt-1", "me", "slack", 1010.0, 30.0)
    store.release("evt-1", "me")
    assert store.begin(_req(owner="other", now=1020.0)).status == "resumed"
    store.finish("evt-1", "other")
    ops = [[(op, path) for op, path, _, _ in batch] for batch in client.commits]
    assert ops == [[("create", "c/evt-1"), ("create", "c/res-1")], [("update", "c/evt-1")], [("update", "c/evt-1")],
                   [("update", "c/evt-1")], [("update", "c/evt-1")]]
    doc = client.docs["c/evt-1"]
    assert (doc["done"], doc["owner"], doc["delivered"], doc["attempt"]) == (True, None, ["slack"], 2)
    # progress, release and finish keep the expiry begin set; the resumed begin renews it
    assert client.commits[1][0][2]["expire_at"] == datetime.fromtimestamp(1000.0, UTC) + timedelta(seconds=60)
    assert client.commits[3][0][2]["expire_at"] == datetime.fromtimestamp(1020.0, UTC) + timedelta(seconds=60)
    assert [c[1] for c in client.calls if c[0] == "get"].count("c/res-1") == 2  # only begin reads the window


def test_a_duplicate_writes_nothing() -> None:
    store, client = _store()
    store.begin(_req())
    store.finish("evt-1", "me")
    before = len(client.commits)
    assert store.begin(_req(owner="late")).status == "duplicate"
    assert len(client.commits) == before


@pytest.mark.parametrize("conflict", [gexc.AlreadyExists("x"), gexc.FailedPrecondition("x"), gexc.Aborted("x")])
def test_a_lost_race_reads_again_and_decides_again(conflict: Exception) -> None:
    store, client = _store()
    client.conflicts = [conflict]
    assert store.begin(_req()).status == "new"
    assert len(client.commits) == 2 and [c[1] for c in client.calls if c[0] == "get"] == [
        "rampart_alerts/evt-1", "rampart_alerts/res-1"] * 2


def test_eight_lost_races_make_the_store_unavailable() -> None:
    store, client = _store()
    client.conflicts = [gexc.Aborted("x")] * 8
    with pytest.raises(D.StoreUnavailable, match=r"^Firestore rampart_alerts: still contended after 8 attempts$"):
        store.begin(_req())
    assert len(client.commits) == 8


def test_seven_lost_races_still_win_on_the_eighth() -> None:
    store, client = _store()
    client.conflicts = [gexc.Aborted("x")] * 7
    assert store.begin(_req()).status == "new" and len(client.commits) == 8


def test_each_call_is_bounded_by_the_probe_budget_then_the_answer_time() -> None:
    store, client = _store()
    store.begin(_req())
    calls = [c[2] for c in client.calls]
    assert len(calls) == 3 and all(c["timeout"] == 5.0 for c in calls)  # max(2 s probe, min(10 s, 5 s answer))
    retry = calls[0]["retry"]
    assert (retry._initial, retry._maximum, retry._multiplier, retry.timeout) == (0.05, 0.5, 2.0, 2.0)


def test_a_short_store_timeout_bounds_the_budget_and_the_answer() -> None:
    store, client = _store(timeout=1.5)
    store.get("k")
    ((_, _, call),) = client.calls
    assert call["timeout"] == 1.5 and call["retry"].timeout == 1.5


@pytest.mark.parametrize("error", [gexc.ServiceUnavailable("down"), gexc.RetryError("gave up", cause=None)])
def test_an_unreachable_store_fails_open_at_once_for_a_moment_then_is_tried_briefly(error: Exception) -> None:
    store, client = _store()
    client.get_error = error
    with pytest.raises(D.StoreUnavailable, match=f"^Firestore rampart_alerts: {type(error).__name__}: "):
        store.begin(_req())
    assert store._failed_at is not None
    before = len(client.calls)
    with pytest.raises(D.StoreUnavailable, match=r"^Firestore rampart_alerts: unreachable 0\.\ds ago \(tried again after 0\.5s\)$"):
        store.begin(_req())
    assert len(client.calls) == before  # not even tried
    store._failed_at = time.monotonic() - 0.6
    client.get_error = None
    assert store.begin(_req()).status == "new"
    assert client.calls[before][2]["retry"].timeout == 1.0  # a store that failed is tried for DOWN_TRY_SECONDS
    assert store._failed_at is None  # it answered: the full budget again
    store.get("evt-1")
    assert client.calls[-1][2]["retry"].timeout == 2.0


def test_a_short_timeout_bounds_the_retry_after_a_failure_too() -> None:
    store, client = _store(timeout=0.7)
    store._failed_at = time.monotonic() - 0.6
    store.get("k")
    assert client.calls[-1][2]["retry"].timeout == 0.7


def test_a_duplicate_read_counts_as_an_answer() -> None:
    store, _ = _store()
    store.begin(_req())
    store.finish("evt-1", "me")
    store._failed_at = time.monotonic() - 0.6
    assert store.begin(_req(owner="late")).status == "duplicate"
    assert store._failed_at is None


def test_get_and_put_a_release_note() -> None:
    store, client = _store(retention_seconds=100.0)
    assert store.get("note") is None
    store.put("note", {"released_at": 2000.0, "by": "alice"})
    assert client.docs["rampart_alerts/note"] == {"released_at": 2000.0, "by": "alice",
                                                  "expire_at": datetime.fromtimestamp(2100.0, UTC)}
    assert store.get("note") == client.docs["rampart_alerts/note"]
    store.put("other", {"by": "bob"})  # no release time: it expires retention after the epoch
    assert client.docs["rampart_alerts/other"]["expire_at"] == datetime.fromtimestamp(100.0, UTC)
    assert {c[2]["timeout"] for c in client.calls} == {5.0}


@pytest.mark.parametrize("step", ["get", "put"])
def test_get_and_put_fail_as_store_unavailable(step: str) -> None:
    store, client = _store()
    client.get_error = gexc.ServiceUnavailable("down")
    with pytest.raises(D.StoreUnavailable, match=r"^Firestore rampart_alerts: ServiceUnavailable$"):
        store.get("k") if step == "get" else store.put("k", {})
    assert store._failed_at is not None
    client.get_error = None
    store._failed_at = time.monotonic() - 0.6
    store.get("k") if step == "get" else store.put("k", {})
    assert store._failed_at is None


# ---------------------------------------------------------------------------
# store_for: one store per dedupe configuration, for the process.


def test_store_for_makes_one_store_per_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.config import parse_policy

    def cfg(extra: str) -> Any:
        loaded = parse_policy("alerts:\n  slack: {webhook_url_file: /secrets/slack-webhook}\n" + extra)
        return loaded.alerts

    memory = cfg("")
    assert isinstance(D.store_for(memory), D.MemoryStore) and D.store_for(memory) is D.store_for(cfg(""))
    fs = cfg("  dedupe: {store: firestore, project: p1, database: db1, collection: c1, retention_seconds: 7200}\n")
    store = D.store_for(fs)
    assert isinstance(store, D.FirestoreStore) and store is D.store_for(fs)
    assert (store.collection, store.project, store.database, store.retention_seconds) == ("c1", "p1", "db1", 7200)
    assert D.store_for(cfg("  dedupe: {store: firestore, project: p1, database: db1, collection: c2}\n")) is not store


def test_store_for_keys_its_stores_by_every_setting_that_names_a_store() -> None:
    from shared.config import parse_policy

    def store(dedupe: str) -> D.Store:
        loaded = parse_policy("alerts:\n  slack: {webhook_url_file: /secrets/slack-webhook}\n  dedupe: " + dedupe + "\n")
        assert loaded.alerts is not None
        return D.store_for(loaded.alerts)

    base = store("{store: firestore}")
    assert isinstance(base, D.FirestoreStore) and isinstance(store("{store: memory}"), D.MemoryStore)
    others = [store("{store: firestore, project: p2}"), store("{store: firestore, database: db2}"),
              store("{store: firestore, collection: c2}"), store("{store: firestore, retention_seconds: 7200}")]
    assert len({id(s) for s in [base, *others]}) == 5
    assert [(s.project, s.database, s.collection, s.retention_seconds) for s in others if isinstance(s, D.FirestoreStore)] == [
        ("p2", "(default)", "rampart_alerts", 8 * 86400), (None, "db2", "rampart_alerts", 8 * 86400),
        (None, "(default)", "c2", 8 * 86400), (None, "(default)", "rampart_alerts", 7200)]


def test_a_lost_race_waits_a_random_5_to_50_ms_before_reading_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    waits: list[tuple[float, float]] = []
    monkeypatch.setattr(random, "uniform", lambda a, b: waits.append((a, b)) or 0.0)
    store, client = _store()
    client.conflicts = [gexc.Aborted("x"), gexc.FailedPrecondition("y")]
    assert store.begin(_req()).status == "new"
    assert waits == [(0.005, 0.05), (0.005, 0.05)]


def test_a_claim_taken_from_a_tentative_one_reports_the_attempt_it_writes() -> None:
    """The claim and the document agree: a record of the work starts at attempt 1, whatever the
    tentative document said."""
    claim, ev, _ = D.begin_transition({**TENTATIVE, "attempt": 3}, None, _req(payload="did the work"))
    assert ev is not None and (claim.attempt, ev["attempt"]) == (1, 1)


def test_half_a_second_of_settle_time_defers_a_tentative_claim() -> None:
    claim, ev, res = D.begin_transition(None, None, _req(tentative=True, settle_seconds=0.5))
    assert claim.status == "deferred" and ev is not None and ev["settle_until"] == 1000.5 and res is None


def test_a_claim_without_a_lease_or_settle_time_is_never_waited_on() -> None:
    """Documents written without lease_until or settle_until (another version's) read as expired,
    at any time."""
    claim, _, _ = D.begin_transition({"decision": "alert", "payload": "p", "owner": "x"}, None, _req(now=0.5))
    assert claim.status == "resumed"
    tentative = {k: v for k, v in TENTATIVE.items() if k != "settle_until"}
    claim, _, _ = D.begin_transition(tentative, None, _req(now=0.5, tentative=True))
    assert (claim.status, claim.payload) == ("new", "found it done")


def test_the_firestore_client_is_made_for_the_stores_project_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import firestore_client

    made: list[tuple[Any, Any]] = []
    monkeypatch.setattr(firestore_client, "fast_reconnect_client", lambda project, database: made.append((project, database)) or "client")
    store = D.FirestoreStore(project="p1", database="db2")
    assert made == []  # lazily, on the first call
    assert store.client() == "client" and store.client() == "client"
    assert made == [("p1", "db2")]


def test_progress_finish_and_release_read_only_the_claim() -> None:
    store, client = _store()
    store.begin(_req())
    del client.calls[:]
    store.progress("evt-1", "me", "slack", 1001.0, 30.0)
    store.release("evt-1", "me")
    assert store.begin(_req(owner="other")).status == "resumed"
    del client.calls[:]
    store.finish("evt-1", "other")
    assert [(c[0], c[1]) for c in client.calls] == [("get", "rampart_alerts/evt-1"), ("commit", [("update", "rampart_alerts/evt-1")])]


def test_a_store_that_failed_half_a_second_ago_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    store, client = _store()
    store._failed_at = 100.0
    monkeypatch.setattr(time, "monotonic", lambda: 100.5)
    store.get("k")
    assert client.calls[-1][2]["retry"].timeout == 1.0
    monkeypatch.setattr(time, "monotonic", lambda: 101.0)
    store._failed_at = 100.51
    with pytest.raises(D.StoreUnavailable, match=r"unreachable 0\.5s ago"):
        store.get("k")
