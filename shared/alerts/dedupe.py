"""Claims that make an alert go out once per event, and group repeats per resource.

Two documents per alert, both written in one atomic step (`Store.begin`):

- the *event claim* `evt-<sha256(rule, event_id)>`: who holds it (owner + lease),
  the decision (alert / escalate / suppress), the record as first seen (later
  redeliveries send that, not a re-evaluation), which channels already have it,
  and `done`. A redelivery of a done claim is a duplicate; a claim whose holder
  died (lease expired, not done) is taken over and resumes with the channels that
  are still missing; a claim with a live lease is busy, so a racing instance
  never sends.
  A *tentative* record (one that only found the work already done, e.g. a
  duplicate delivery that read the live state right after another instance
  fixed it) does not get to speak first: it opens the claim unowned and
  `deferred` for `settle_seconds`, during which the record of the delivery that
  did the work replaces it; after that it is sent as it is (the instance that
  did the work may have died before alerting).
- the *resource window* `res-<sha256(rule, resource)>`: when the window started,
  how many times the rule fired on it since, whether the escalation went out, and
  when the rule last alerted on the resource (`alerted_at`, kept across windows).
  A sweep's claim (`changed_at`: when the resource last changed) is a duplicate
  when the rule alerted on the resource after that change, by whichever path: the
  violation it found is already in front of a human. So is a tentative record
  (`changed_at`: the event's time) once another path that did the work alerted.

The transitions are pure functions over plain dicts; `MemoryStore` applies them
under a lock (unit tests, offline replay), `FirestoreStore` in a transaction.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared import firestore_client

if TYPE_CHECKING:
    from shared.alerts.config import AlertsConfig

ClaimStatus = Literal["new", "resumed", "duplicate", "busy", "deferred"]
Decision = Literal["alert", "escalate", "suppress"]

# How long the dedupe store may hold up an alert (issue 15 §6: it was about 10 s per alert while
# the store was unreachable). A healthy store answers in milliseconds. One call retries "cannot
# connect" errors for at most PROBE_SECONDS, then the alert goes out without dedupe (fail open); a
# store that is connected but slow to answer (one just back, warming up) gets ANSWER_SECONDS. After
# a failure, calls within DOWN_SKIP_SECONDS of it fail open at once, and later ones retry for only
# DOWN_TRY_SECONDS: a store that is back is used again at once, so two instances do not both alert
# for longer than a moment after it returns. The channel reconnects at least every
# shared.firestore_client.RECONNECT_MAX_MS (grpc's default backoff grows to 120 s, and it is shared by every channel to
# the same target in the process: a store back for a minute was still "unreachable" from here);
# shared/firestore_client.py builds that channel.
PROBE_SECONDS = 2.0
ANSWER_SECONDS = 5.0
DOWN_TRY_SECONDS = 1.0
DOWN_SKIP_SECONDS = 0.5


class LeaseLost(Exception):
    """Another instance took over this claim (our lease expired); stop sending."""


class StoreUnavailable(Exception):
    """The dedupe store could not be reached or answered with an error."""


def event_key(rule: str, event_id: str) -> str:
    """Document id of the claim for one event under one rule."""
    return "evt-" + hashlib.sha256(f"{rule}\0{event_id}".encode()).hexdigest()


def resource_key(rule: str, resource: str, content: str = "") -> str:
    """Document id of the repeat window for one finding: one rule on one resource, seeing the same
    thing (`content`: what was observed). A different later violation on the same resource gets its
    own window, so it alerts."""
    return "res-" + hashlib.sha256(f"{rule}\0{resource}\0{content}".encode()).hexdigest()


def finding_content(rec: dict[str, Any]) -> str:
    """What makes two records the same finding for grouping: what was observed, and whether
    Rampart failed (a failure is never folded into the successes before it)."""
    import json

    failed = rec.get("outcome") == "failed"
    return json.dumps({"observed": rec.get("observed"), "failed": failed}, sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class BeginRequest:
    """Everything `Store.begin` needs to claim one event."""

    event_key: str
    resource_key: str
    owner: str
    payload: str  # the record as JSON, stored so a redelivery sends what was first seen
    now: float
    lease_seconds: float
    window_seconds: float
    escalate_after: int | None
    labels: dict[str, str] = field(default_factory=dict)  # rule, event_id, resource: for people reading the store
    tentative: bool = False  # the payload only found the work done: a record of the work itself wins
    settle_seconds: float = 0.0  # how long a tentative claim waits for that record
    changed_at: float | None = None  # a sweep's claim: when the resource last changed (None: unknown, or an event)
    released_at: float = 0.0  # when a human last released this resource: a repeat after it is new


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of `Store.begin`: whether this caller may send, and what."""

    status: ClaimStatus
    decision: Decision
    payload: str
    delivered: frozenset[str] = frozenset()
    occurrences: int = 1  # times the rule fired on this resource in the window, this event included
    attempt: int = 1


def begin_transition(
    ev: dict[str, Any] | None, res: dict[str, Any] | None, req: BeginRequest
) -> tuple[Claim, dict[str, Any] | None, dict[str, Any] | None]:
    """Decide a claim from the stored docs; returns the claim and the docs to write (None: unchanged)."""
    if ev is not None:
        prior = Claim(
            status="duplicate",
            decision=ev["decision"],
            payload=ev["payload"],
            delivered=frozenset(ev.get("delivered", ())),
            occurrences=int(ev.get("occurrences", 1)),
            attempt=int(ev.get("attempt", 1)),
        )
        if ev.get("done"):
            return prior, None, None
        if ev.get("owner") and float(ev.get("lease_until", 0)) > req.now:
            return replace(prior, status="busy"), None, None
        if ev.get("tentative"):
            if req.tentative and float(ev.get("settle_until", 0)) > req.now:
                return replace(prior, status="deferred"), None, None
            if req.tentative and _told_since(res, req.changed_at):
                # The path that did the work (a sweep, another event) alerted since this change.
                return prior, {**ev, "tentative": False, "done": True, "owner": None, "lease_until": 0.0}, None
            # Nothing was sent yet: a record of the work replaces one that found it done; once
            # the settle time is over, the tentative record goes out as it is.
            payload = ev["payload"] if req.tentative else req.payload
            new_ev = {**ev, "payload": payload, "tentative": False, "owner": req.owner,
                      "lease_until": req.now + req.lease_seconds, "attempt": 1}
            # Only now does it count on the resource (a tentative claim did not, so that the record
            # of the work, from whichever path, was not taken for a repeat).
            told = {**res, "alerted_at": req.now} if res is not None else {
                "window_start": req.now, "count": 1, "escalated": False, "alerted_at": req.now, **req.labels}
            return replace(prior, status="new", payload=payload, attempt=1), new_ev, told
        attempt = prior.attempt + 1
        new_ev = {**ev, "owner": req.owner, "lease_until": req.now + req.lease_seconds, "attempt": attempt}
        return replace(prior, status="resumed", attempt=attempt), new_ev, None

    if _told_since(res, req.changed_at):
        # Alerted on since the resource last changed: the same violation, already told.
        return Claim(status="duplicate", decision="suppress", payload=req.payload), None, None
    if (res is None or req.now - float(res["window_start"]) >= req.window_seconds
            or req.released_at > float(res["window_start"])):
        count = 1
        new_res = {"window_start": req.now, "count": count, "escalated": False, **req.labels}
        decision: Decision = "alert"
    else:
        count = int(res["count"]) + 1
        new_res = {**res, "count": count}
        repeats = count - 1
        if req.escalate_after is not None and not res.get("escalated") and repeats >= req.escalate_after:
            new_res["escalated"] = True
            decision = "escalate"
        else:
            decision = "suppress"
    tentative = req.tentative and req.settle_seconds > 0 and decision != "suppress"
    if decision != "suppress" and not tentative:
        new_res["alerted_at"] = req.now
    idle = decision == "suppress" or tentative
    new_ev = {
        "decision": decision,
        "payload": req.payload,
        "delivered": [],
        "occurrences": new_res["count"],
        "attempt": 1,
        "owner": None if idle else req.owner,
        "lease_until": 0.0 if idle else req.now + req.lease_seconds,
        "done": decision == "suppress",
        "tentative": tentative,
        "settle_until": req.now + req.settle_seconds if tentative else 0.0,
        "created_at": req.now,
        "resource_key": req.resource_key,
        **req.labels,
    }
    status: ClaimStatus = "deferred" if tentative else "new"
    claim = Claim(status=status, decision=decision, payload=req.payload, occurrences=count)
    return claim, new_ev, None if tentative else new_res


def _told_since(res: dict[str, Any] | None, changed_at: float | None) -> bool:
    """Whether the rule alerted on the resource at or after `changed_at` (None: not asked)."""
    return changed_at is not None and res is not None and float(res.get("alerted_at", 0)) >= changed_at


def progress_transition(
    ev: dict[str, Any] | None, owner: str, channel: str | None, now: float, lease_seconds: float
) -> dict[str, Any]:
    """Record that `channel` has the alert (if given) and renew the lease; LeaseLost if it is not ours."""
    _check_owner(ev, owner)
    assert ev is not None
    delivered = list(ev.get("delivered", []))
    if channel is not None and channel not in delivered:
        delivered.append(channel)
    return {**ev, "delivered": delivered, "lease_until": now + lease_seconds}


def finish_transition(ev: dict[str, Any] | None, owner: str) -> dict[str, Any]:
    """Mark the claim done: every later redelivery is a duplicate."""
    _check_owner(ev, owner)
    assert ev is not None
    return {**ev, "done": True, "owner": None, "lease_until": 0.0}


def release_transition(ev: dict[str, Any] | None, owner: str) -> dict[str, Any]:
    """Give the claim back undone, so the next redelivery retries at once instead of after the lease."""
    _check_owner(ev, owner)
    assert ev is not None
    return {**ev, "owner": None, "lease_until": 0.0}


def _check_owner(ev: dict[str, Any] | None, owner: str) -> None:
    if ev is None or ev.get("owner") != owner:
        holder = "nobody" if ev is None or not ev.get("owner") else "another instance"
        raise LeaseLost(f"expected this call to hold the alert claim; found it held by {holder}")


class Store(Protocol):
    """Atomic read-modify-write of claim and window documents."""

    def begin(self, req: BeginRequest) -> Claim: ...

    def progress(self, key: str, owner: str, channel: str | None, now: float, lease_seconds: float) -> None: ...

    def finish(self, key: str, owner: str) -> None: ...

    def release(self, key: str, owner: str) -> None: ...


class MemoryStore:
    """Claims in a dict behind a lock: one process only (unit tests, offline replay, no Firestore)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def begin(self, req: BeginRequest) -> Claim:
        with self._lock:
            claim, ev, res = begin_transition(self.docs.get(req.event_key), self.docs.get(req.resource_key), req)
            if ev is not None:
                self.docs[req.event_key] = ev
            if res is not None:
                self.docs[req.resource_key] = res
            return claim

    def progress(self, key: str, owner: str, channel: str | None, now: float, lease_seconds: float) -> None:
        with self._lock:
            self.docs[key] = progress_transition(self.docs.get(key), owner, channel, now, lease_seconds)

    def finish(self, key: str, owner: str) -> None:
        with self._lock:
            self.docs[key] = finish_transition(self.docs.get(key), owner)

    def release(self, key: str, owner: str) -> None:
        with self._lock:
            self.docs[key] = release_transition(self.docs.get(key), owner)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self.docs.get(key)
            return dict(doc) if doc is not None else None

    def put(self, key: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self.docs[key] = dict(doc)


class FirestoreStore:
    """Claims in a Firestore collection, shared by every instance (honours FIRESTORE_EMULATOR_HOST).

    Each step reads the documents, applies a transition and writes them in one atomic
    batch guarded by preconditions (`create` when a document was absent, otherwise its
    update time as read), so two instances can never both win; the loser re-reads.
    IAM: roles/datastore.user. Set a TTL policy on `expire_at` so old claims are deleted.

    Unreachable, it costs an alert at most PROBE_SECONDS, then DOWN_TRY_SECONDS or nothing (see
    those constants); calls keep trying it, so a store that is back dedupes at once.
    """

    def __init__(
        self,
        collection: str = "rampart_alerts",
        *,
        project: str | None = None,
        database: str = "(default)",
        retention_seconds: float = 8 * 86400,
        timeout: float = 10.0,
        client: Any = None,
    ) -> None:
        self.collection = collection
        self.project = project
        self.database = database
        self.retention_seconds = retention_seconds
        self.timeout = timeout
        self.client = firestore_client.Lazy(project, database, client)
        self._failed_at: float | None = None  # time.monotonic() of the last failure; None: it answered since

    def _budget(self) -> float:
        """Seconds this call may spend on the store; StoreUnavailable at once if it failed a moment ago."""
        import time

        failed_at = self._failed_at
        if failed_at is None:
            return min(self.timeout, PROBE_SECONDS)
        ago = time.monotonic() - failed_at
        if ago < DOWN_SKIP_SECONDS:
            raise StoreUnavailable(f"Firestore {self.collection}: unreachable {ago:.1f}s ago (tried again after {DOWN_SKIP_SECONDS:g}s)")
        return min(self.timeout, DOWN_TRY_SECONDS)

    def _answered(self) -> None:
        self._failed_at = None

    def _failed(self) -> None:
        import time

        self._failed_at = time.monotonic()

    def _call_options(self, budget: float) -> dict[str, Any]:
        """Retry unavailability for `budget` seconds; wait up to ANSWER_SECONDS for an answer."""
        from google.api_core.retry import Retry

        retry = Retry(initial=0.05, maximum=0.5, multiplier=2.0, timeout=budget)
        return {"retry": retry, "timeout": max(budget, min(self.timeout, ANSWER_SECONDS))}

    def begin(self, req: BeginRequest) -> Claim:
        def step(ev: dict[str, Any] | None, res: dict[str, Any] | None) -> tuple[Claim, Any, Any]:
            return begin_transition(ev, res, req)

        return self._apply(req.event_key, req.resource_key, step, req.now)

    def progress(self, key: str, owner: str, channel: str | None, now: float, lease_seconds: float) -> None:
        self._apply(key, None, lambda ev, _: (None, progress_transition(ev, owner, channel, now, lease_seconds), None))

    def finish(self, key: str, owner: str) -> None:
        self._apply(key, None, lambda ev, _: (None, finish_transition(ev, owner), None))

    def release(self, key: str, owner: str) -> None:
        self._apply(key, None, lambda ev, _: (None, release_transition(ev, owner), None))

    def get(self, key: str) -> dict[str, Any] | None:
        """One document (a release note), or None."""
        from google.api_core import exceptions as gexc

        call = self._call_options(self._budget())
        try:
            snap = self.client().collection(self.collection).document(key).get(**call)
        except (gexc.GoogleAPICallError, gexc.RetryError) as e:
            self._failed()
            raise StoreUnavailable(f"Firestore {self.collection}: {type(e).__name__}") from None
        self._answered()
        return snap.to_dict() if snap.exists else None

    def put(self, key: str, doc: dict[str, Any]) -> None:
        from google.api_core import exceptions as gexc

        call = self._call_options(self._budget())
        try:
            self.client().collection(self.collection).document(key).set(
                self._expiring(doc, float(doc.get("released_at", 0.0))), **call)
        except (gexc.GoogleAPICallError, gexc.RetryError) as e:
            self._failed()
            raise StoreUnavailable(f"Firestore {self.collection}: {type(e).__name__}") from None
        self._answered()

    def _apply(self, ev_key: str, res_key: str | None, step: Any, now: float | None = None) -> Any:
        """Read, transition, write atomically with preconditions; re-read on a lost race."""
        import random
        import time

        from google.api_core import exceptions as gexc

        call = self._call_options(self._budget())
        client = self.client()
        col = client.collection(self.collection)
        refs = [col.document(ev_key)] + ([col.document(res_key)] if res_key else [])
        try:
            for _ in range(8):
                snaps = [ref.get(**call) for ref in refs]
                docs = [snap.to_dict() if snap.exists else None for snap in snaps]
                result, new_ev, new_res = step(docs[0], docs[1] if res_key else None)
                batch = client.batch()
                for ref, snap, new in zip(refs, snaps, (new_ev, new_res), strict=False):
                    if new is None:
                        continue
                    if now is not None:
                        new = self._expiring(new, now)
                    if snap.exists:
                        batch.update(ref, new, option=client.write_option(last_update_time=snap.update_time))
                    else:
                        batch.create(ref, new)
                if len(batch) == 0:
                    self._answered()
                    return result
                try:
                    batch.commit(**call)
                    self._answered()
                    return result
                except (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.Aborted):
                    # Another instance wrote first: read its state and decide again.
                    time.sleep(random.uniform(0.005, 0.05))
            raise StoreUnavailable(f"Firestore {self.collection}: still contended after 8 attempts")
        except (gexc.GoogleAPICallError, gexc.RetryError) as e:
            self._failed()
            raise StoreUnavailable(f"Firestore {self.collection}: {type(e).__name__}: {e}") from None

    def _expiring(self, doc: dict[str, Any], now: float) -> dict[str, Any]:
        return {**doc, "expire_at": datetime.fromtimestamp(now, UTC) + timedelta(seconds=self.retention_seconds)}


_stores: dict[tuple[Any, ...], Store] = {}
_stores_lock = threading.Lock()


def store_for(cfg: AlertsConfig) -> Store:
    """The process-wide store for `cfg.dedupe`: one Firestore client, or one in-memory dict."""
    d = cfg.dedupe
    key = (d.store, d.project, d.database, d.collection, d.retention_seconds)
    with _stores_lock:
        if key not in _stores:
            if d.store == "firestore":
                _stores[key] = FirestoreStore(
                    d.collection, project=d.project, database=d.database, retention_seconds=d.retention_seconds
                )
            else:
                _stores[key] = MemoryStore()
        return _stores[key]
