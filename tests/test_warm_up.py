"""The background warm-up yields to a new instance's first violation: it loads the policy at once
(the event needs it too), then waits, up to main.WARM_UP_YIELD_S, until no relevant event is in
flight before it imports the client libraries, so the event imports only its own with the CPU to
itself (bench/coldstart.py, first_violations, measures the difference)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import main
from bench.corpus import cloud_event, push_body
from infra.local import scenario


class _Pipeline:
    def __init__(self, calls: list[str], fail: bool = False) -> None:
        self.calls, self.fail = calls, fail
        self.store = self

    def current(self) -> None:
        self.calls.append("policy")

    def warm_up(self, only: str | None = None) -> None:
        self.calls.append("libraries")

    def handle(self, event: Any, **_: Any) -> None:
        self.calls.append(f"in flight {main._in_flight}")
        if self.fail:
            raise RuntimeError("the API is down")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    monkeypatch.setattr(main, "_pipeline", _Pipeline(seen))
    yield seen
    assert main._in_flight == 0


def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_warm_up_waits_for_the_event_in_flight_before_loading_libraries(calls: list[str]) -> None:
    with main._idle:
        main._in_flight += 1
    warm = threading.Thread(target=main._warm_up)
    warm.start()
    try:
        _until(lambda: calls == ["policy"])
        time.sleep(0.3)
        assert calls == ["policy"], "the libraries must wait while an event is in flight"
    finally:
        with main._idle:
            main._in_flight -= 1
            main._idle.notify_all()
    warm.join(5)
    assert calls == ["policy", "libraries"]


def test_warm_up_waits_no_longer_than_its_bound(calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "WARM_UP_YIELD_S", 0.2)
    with main._idle:
        main._in_flight += 1
    try:
        t = time.monotonic()
        main._warm_up()
        assert calls == ["policy", "libraries"] and time.monotonic() - t >= 0.2
    finally:
        with main._idle:
            main._in_flight -= 1


@pytest.mark.parametrize("fail", [False, True])
def test_a_relevant_event_counts_as_in_flight_until_it_returns_or_raises(calls: list[str], monkeypatch: pytest.MonkeyPatch,
                                                                         fail: bool) -> None:
    monkeypatch.setattr(main._pipeline, "fail", fail)
    ce = cloud_event(push_body(scenario.replace_service_v1("patient-api", ingress="all"), "warm-1"))
    if fail:
        with pytest.raises(RuntimeError):
            main.handle_cloud_event(ce)
    else:
        main.handle_cloud_event(ce)
    assert calls == ["in flight 1"] and main._in_flight == 0
    irrelevant = cloud_event(push_body({"protoPayload": {"serviceName": "storage.googleapis.com", "methodName": "storage.objects.get"},
                                        "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
                                        "insertId": "x", "timestamp": "2026-11-23T09:00:00Z"}, "warm-2"))
    main.handle_cloud_event(irrelevant)
    assert calls == ["in flight 1"], "an irrelevant event never reaches the pipeline, nor the counter"
