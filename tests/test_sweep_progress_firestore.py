"""Sweep progress in a real Firestore emulator: a sweep's document and its shards' documents round-trip
into the report, a redelivered request resumes from what is stored, and every document carries the
`expire_at` the deployed TTL policy deletes it by (infra/sweep.sh)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.sweep.progress import RETENTION_DAYS, FirestoreProgress
from shared.sweep.shard import Tally

pytestmark = pytest.mark.integration


def test_progress_round_trips_resumes_and_expires(firestore_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    collection = f"sweeps_{uuid.uuid4().hex[:8]}"
    progress = FirestoreProgress(collection, project="rampart-local")
    scopes = ["projects/p1"]
    first = progress.begin("sw-1", scopes, "dry-run")
    assert first["cursors"] == {} and first["plan_done"] is False
    progress.update("sw-1", {"cursors": {"projects/p1|resources": [2, "tok"]}, "shards_total": 2})
    # A redelivered request finds the stored cursors instead of starting again.
    again = progress.begin("sw-1", scopes, "dry-run")
    assert again["cursors"] == {"projects/p1|resources": [2, "tok"]} and again["shards_total"] == 2
    tally = Tally()
    tally.violations["run_ingress_open"] += 3
    progress.finish_shard("sw-1", "s0", tally)
    assert progress.shard_done("sw-1", "s0") and not progress.shard_done("sw-1", "s1")
    rep = progress.report("sw-1")
    assert rep is not None and rep.shards_done == 1 and rep.tally.violations["run_ingress_open"] == 3
    assert progress.report("no-such-sweep") is None
    # Both kinds of document expire RETENTION_DAYS from now (the TTL policy's field).
    client = progress.client()
    sweep_doc = client.collection(collection).document("sw-1").get().to_dict()
    shard_doc = client.collection(collection).document("sw-1").collection("shards").document("s0").get().to_dict()
    due = datetime.now(UTC) + timedelta(days=RETENTION_DAYS)
    for doc in (sweep_doc, shard_doc):
        assert abs((doc["expire_at"] - due).total_seconds()) < 120, doc["expire_at"]
