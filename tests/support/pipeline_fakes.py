"""Fakes for unit tests of shared/pipeline.py: a policy store pinned to one policy, and an `act`
that records its calls."""

from __future__ import annotations

from typing import Any

from shared.model import ActionRecord, Finding, Outcome


class Pinned:
    """A policy store that always answers the same loaded policy."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    def current(self) -> Any:
        return self.loaded


class Acts:
    """Stands in for `act`: records each call; raises the exception given for a rule."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.fail = fail or {}
        self.calls: list[str] = []

    def __call__(self, finding: Finding, settings: Any, loaded: Any, today: Any = None) -> ActionRecord:
        self.calls.append(finding.rule)
        if finding.rule in self.fail:
            raise self.fail[finding.rule]
        return ActionRecord(finding=finding, mode=settings.mode, outcome=Outcome.ALERTED, reason="unit")
