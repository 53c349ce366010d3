"""Shared fixtures. Each part of the local stack has its own fixture module in tests/support/."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = [
    "tests.support.fixtures_standin",
    "tests.support.fixtures_local",
]


@pytest.fixture(autouse=True)
def _fresh_process_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no remediation counted by the in-process circuit breaker and no
    alert remembered by the process-wide dedupe stores (both live for the process): otherwise a
    test that remediates a resource three times trips the breaker for whichever test next
    remediates it, an alert sent by one test silences the same alert in the next, and results
    depend on test order (as under `make mutate`, which runs a different subset and order)."""
    from shared import breaker
    from shared.alerts import dedupe

    monkeypatch.setattr(breaker, "_local_store", None)
    monkeypatch.setattr(dedupe, "_stores", {})
