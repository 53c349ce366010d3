"""Quarantine records kept where only Rampart writes (issue 14, finding 1): Firestore (emulator)
and memory, the same contract; and terminal output that nothing in a record can take over."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.quarantine_store import FirestoreRecords, MemoryRecords, RecordError
from shared.terminal import printable

SVC = "projects/demo-project/locations/us-central1/services/patient-api"
RECORD = {"rule": "run_default_service_account", "prior": {"ingress": "INGRESS_TRAFFIC_ALL"},
          "removed": [["roles/run.invoker", "allUsers"]]}


@pytest.fixture(params=["memory", "firestore"])
def records(request: pytest.FixtureRequest) -> Iterator[MemoryRecords]:
    if request.param == "memory":
        yield MemoryRecords()
        return
    emu = request.getfixturevalue("firestore_emulator")
    mp = pytest.MonkeyPatch()
    mp.setenv("FIRESTORE_EMULATOR_HOST", emu.host)
    try:
        yield FirestoreRecords(f"q_{uuid.uuid4().hex[:10]}", project="demo-project")
    finally:
        mp.undo()


def test_a_saved_record_loads_by_its_marker(records) -> None:
    stored = records.save(SVC, RECORD)
    assert records.load(SVC, stored.marker).record == RECORD


@pytest.mark.parametrize("marker", [None, "", '{"rule": "x", "prior": {"ingress": "INGRESS_TRAFFIC_ALL"}}',
                                    "q0000000000000000:" + "0" * 64])
def test_a_missing_or_foreign_marker_is_refused(records, marker) -> None:
    with pytest.raises(RecordError):
        records.load(SVC, marker)


def test_an_edited_digest_or_another_services_marker_is_refused(records) -> None:
    stored = records.save(SVC, RECORD)
    qid, d = stored.marker.split(":")
    with pytest.raises(RecordError, match="digest"):
        records.load(SVC, f"{qid}:{'f' * 64}")
    with pytest.raises(RecordError, match="no quarantine record"):
        records.load(SVC.replace("patient-api", "other"), stored.marker)
    assert d == stored.digest


def test_terminal_output_carries_no_escape_or_control_sequence() -> None:
    hostile = "ok\x1b[2J\x1b]0;owned\x07\x1b]8;;https://evil\x1b\\link\x1b]8;;\x1b\\\r\nnext\u202eevil\x00\x9b31m"
    out = printable(hostile)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out and "\u202e" not in out and "\x9b" not in out
    assert out.startswith("ok") and "next" in out and "link" in out
