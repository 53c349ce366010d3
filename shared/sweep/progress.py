"""A scaled-out sweep's progress, so it can resume and its report can be fetched afterwards.

Firestore (`FirestoreProgress`, the database Rampart already uses for alert dedupe), one document
per sweep in `sweep.progress_collection` (default `rampart_sweeps`):
  rampart_sweeps/{sweep_id}                 scopes, max mode, start time, the planner's cursor per
                                            (scope, kind) (next page index and token), shards
                                            planned, plan_done, the parts of the scope not swept
  rampart_sweeps/{sweep_id}/shards/{key}    done, finish time, the shard's Tally
Only the planner writes the sweep document and each shard's worker its own shard document, so
nothing contends; a redelivered shard that is done is skipped. `MemoryProgress` is the same in a
dict (unit tests). IAM: roles/datastore.user.

Both documents carry `expire_at`, RETENTION_DAYS after they were written; infra/sweep.sh sets a
Firestore TTL policy on it for `rampart_sweeps` and `shards`, so a daily sweep does not grow the
database for ever (`scan --html` writes a report to keep).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from shared import firestore_client
from shared.sweep.local import SweepReport, now_text
from shared.sweep.records import timestamp_seconds
from shared.sweep.shard import Tally

RETENTION_DAYS = 90


def _expiry() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(days=RETENTION_DAYS)


class Progress(Protocol):
    def begin(self, sweep_id: str, scopes: list[str], max_mode: str) -> dict[str, Any]: ...

    def update(self, sweep_id: str, fields: dict[str, Any]) -> None: ...

    def shard_done(self, sweep_id: str, key: str) -> bool: ...

    def finish_shard(self, sweep_id: str, key: str, tally: Tally) -> None: ...

    def report(self, sweep_id: str) -> SweepReport | None: ...


def _fresh(scopes: list[str], max_mode: str) -> dict[str, Any]:
    return {"scopes": list(scopes), "max_mode": max_mode, "started_at": now_text(), "cursors": {},
            "shards_total": 0, "plan_done": False, "not_swept": [], "finished_planning_at": ""}


def _report(sweep_id: str, doc: dict[str, Any], shards: list[dict[str, Any]]) -> SweepReport:
    rep = SweepReport(sweep_id=sweep_id, scopes=tuple(doc.get("scopes") or ()), max_mode=str(doc.get("max_mode", "")),
                      started_at=str(doc.get("started_at", "")), shards_total=int(doc.get("shards_total") or 0),
                      plan_done=bool(doc.get("plan_done")), not_swept=list(doc.get("not_swept") or []))
    last = ""
    for s in shards:
        if s.get("done"):
            rep.shards_done += 1
            rep.tally.merge(Tally.from_dict(s.get("tally") or {}))
            last = max(last, str(s.get("finished_at", "")))
    rep.finished_at = last if rep.plan_done and rep.shards_done >= rep.shards_total else ""
    start, end = timestamp_seconds(rep.started_at), timestamp_seconds(last) if last else None
    rep.seconds = end - start if start is not None and end is not None else 0.0
    rep.api_calls = dict(doc.get("api_calls") or {})
    rep.api_calls["full_reads"] = rep.tally.reads
    return rep


class MemoryProgress:
    """Progress in a dict (one process)."""

    def __init__(self) -> None:
        self.sweeps: dict[str, dict[str, Any]] = {}
        self.shards: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def begin(self, sweep_id: str, scopes: list[str], max_mode: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.sweeps.setdefault(sweep_id, _fresh(scopes, max_mode)))

    def update(self, sweep_id: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self.sweeps[sweep_id].update(fields)

    def shard_done(self, sweep_id: str, key: str) -> bool:
        with self._lock:
            return bool(self.shards.get(sweep_id, {}).get(key, {}).get("done"))

    def finish_shard(self, sweep_id: str, key: str, tally: Tally) -> None:
        with self._lock:
            self.shards.setdefault(sweep_id, {})[key] = {"done": True, "finished_at": now_text(), "tally": tally.to_dict()}

    def report(self, sweep_id: str) -> SweepReport | None:
        with self._lock:
            doc = self.sweeps.get(sweep_id)
            return None if doc is None else _report(sweep_id, doc, list(self.shards.get(sweep_id, {}).values()))


# Each Firestore call gives up after this long (the library alone retries an unreachable store for
# 60 s): a shard fails and Pub/Sub redelivers it, well within its acknowledgement deadline.
CALL_SECONDS = 10.0


def _bounded() -> dict[str, Any]:
    return firestore_client.bounded(CALL_SECONDS)


class FirestoreProgress:
    """Progress in Firestore (honours FIRESTORE_EMULATOR_HOST); see the module docstring."""

    def __init__(self, collection: str = "rampart_sweeps", *, project: str | None = None, database: str = "(default)",
                 client: Any = None) -> None:
        self.collection = collection
        self.project = project
        self.database = database
        self.client = firestore_client.Lazy(project, database, client)

    def _doc(self, sweep_id: str) -> Any:
        return self.client().collection(self.collection).document(sweep_id)

    def begin(self, sweep_id: str, scopes: list[str], max_mode: str) -> dict[str, Any]:
        from google.api_core import exceptions as gexc

        ref = self._doc(sweep_id)
        fresh = _fresh(scopes, max_mode)
        try:
            ref.create({**fresh, "expire_at": _expiry()}, **_bounded())
            return fresh
        except gexc.AlreadyExists:  # a redelivered request: resume from the stored cursors
            return ref.get(**_bounded()).to_dict() or fresh

    def update(self, sweep_id: str, fields: dict[str, Any]) -> None:
        self._doc(sweep_id).set(fields, merge=True, **_bounded())

    def shard_done(self, sweep_id: str, key: str) -> bool:
        snap = self._doc(sweep_id).collection("shards").document(key).get(**_bounded())
        return bool(snap.exists and (snap.to_dict() or {}).get("done"))

    def finish_shard(self, sweep_id: str, key: str, tally: Tally) -> None:
        self._doc(sweep_id).collection("shards").document(key).set(
            {"done": True, "finished_at": now_text(), "tally": tally.to_dict(), "expire_at": _expiry()}, **_bounded())

    def report(self, sweep_id: str) -> SweepReport | None:
        snap = self._doc(sweep_id).get(**_bounded())
        if not snap.exists:
            return None
        shards = [s.to_dict() or {} for s in self._doc(sweep_id).collection("shards").stream(**_bounded())]
        return _report(sweep_id, snap.to_dict() or {}, shards)
