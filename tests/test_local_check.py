"""`make check-local-stack` asks what the emulators ask when they start, and says how to fix it."""

from __future__ import annotations

import pytest

from infra.local import check, emulators


def test_this_machine_has_what_the_emulators_need() -> None:
    assert check.problems() == []
    assert emulators.require_component("pubsub-emulator", "Pub/Sub emulator")


def test_missing_gcloud_is_said_once_per_emulator_with_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert check.problems() == [
        "expected the gcloud CLI on PATH for the Pub/Sub emulator; found none",
        "expected the gcloud CLI on PATH for the Firestore emulator; found none",
    ]
    assert check.main() == 1
    assert "apt-get install google-cloud-cli" in capsys.readouterr().err
    with pytest.raises(emulators.EmulatorMissing, match="apt-get install"):
        emulators.require_component("pubsub-emulator", "Pub/Sub emulator")


def test_a_missing_component_names_where_it_was_looked_for() -> None:
    problem = emulators.component_problem("no-such-emulator", "Imaginary emulator")
    assert problem is not None and problem.endswith("platform/no-such-emulator; found no such directory")
