"""Fixtures for the emulators and alert receivers (infra/local/emulators.py, receivers.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import pytest

from infra.local.emulators import FirestoreEmulator, PubSubEmulator
from infra.local.receivers import SlackReceiver, SmtpReceiver
from shared import log
from shared.model import Action, ActionRecord, Change, Finding, Mode, Outcome, Severity

EMULATOR_PROJECT = "rampart-test"


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSubEmulator]:
    """One Pub/Sub emulator per session (project rampart-test); stopped by process group."""
    root = tmp_path_factory.mktemp("pubsub-emulator")
    emu = PubSubEmulator(EMULATOR_PROJECT, data_dir=root / "data", log_path=root / "emulator.log")
    try:
        emu.start()
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    """One Firestore emulator per session; tests keep apart by using their own collection."""
    root = tmp_path_factory.mktemp("firestore-emulator")
    emu = FirestoreEmulator(log_path=root / "emulator.log")
    try:
        emu.start()
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def slack_receiver() -> Iterator[SlackReceiver]:
    """A fresh Slack webhook stand-in on 127.0.0.1."""
    receiver = SlackReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """A fresh aiosmtpd server on 127.0.0.1."""
    receiver = SmtpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    """Structured log lines written through shared.log during the test."""
    with log.captured() as buf:
        yield buf


def log_entries(buf: io.StringIO) -> list[dict[str, Any]]:
    """The JSON entries in a captured log."""
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def make_record(**overrides: Any) -> ActionRecord:
    """A remediated Cloud Run ingress change; keyword arguments replace Finding or ActionRecord fields."""
    finding_fields = {f.name for f in fields(Finding)}
    finding_kw: dict[str, Any] = {
        "rule": "run_ingress_open",
        "severity": Severity.HIGH,
        "title": "Cloud Run service opened to all ingress",
        "resource": "projects/phi-prod/locations/us-central1/services/phi-app",
        "resource_type": "run.service",
        "project": "phi-prod",
        "location": "us-central1",
        "principal": "alice@example.com",
        "action": Action.REVERT,
        "event_id": "evt-0001",
        "method": "google.cloud.run.v2.Services.UpdateService",
        "timestamp": "2026-11-23T08:59:00.123Z",
        "observed": {"ingress": "INGRESS_TRAFFIC_ALL"},
    }
    record_kw: dict[str, Any] = {
        "mode": Mode.ENFORCE,
        "outcome": Outcome.REMEDIATED,
        "changes": [Change("ingress", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER")],
        "before": {"ingress": "INGRESS_TRAFFIC_ALL"},
        "after": {"ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"},
        "undo": "gcloud run services update phi-app --region=us-central1 --project=phi-prod --ingress=all",
        "attempts": 1,
        "duration_ms": 412.5,
    }
    for k, v in overrides.items():
        (finding_kw if k in finding_fields else record_kw)[k] = v
    return ActionRecord(finding=Finding(**finding_kw), **record_kw)
