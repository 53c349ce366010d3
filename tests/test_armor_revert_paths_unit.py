"""Every path of the Cloud Armor revert (functions/armor_policy_detached.py), one fast unit test
each, against plain fakes: a fake Compute session (GETs of the backend answered in turn, the
setSecurityPolicy POST answered with an Operation) and fake Cloud Logging look-ups
(`shared.audit_confirm.lookup` and `history`). Which record each path makes, with which
outcome, facts, changes, attempts, undo command and reason, and what is (not) written.
tests/test_armor_revert_unit.py covers the policy string's shape and the operation's end;
tests/test_armor_revert.py runs the same against the stand-in with the real clients."""

from __future__ import annotations

import json
from typing import Any

import pytest

import functions.armor_policy_detached as armor
from shared.actions import ActionContext
from shared.event import parse
from shared.model import Action, ActionRecord, Change, Finding, Mode, Outcome
from tests.helpers import RULE_FIXTURES, default_policy, load_json

BACKEND = "projects/phi-prod/global/backendServices/phi-api-backend"
REGIONAL = "projects/phi-prod/regions/us-east4/backendServices/internal"
EDGE = "https://www.googleapis.com/compute/v1/projects/phi-prod/global/securityPolicies/phi-edge"
EVIDENCE = "attached by a@example.com at t (entry a1)"
FIXTURES = RULE_FIXTURES / "armor_policy_detached"


class _Resp:
    def __init__(self, body: dict[str, Any]) -> None:
        self.status_code, self.content, self._body = 200, json.dumps(body).encode() if body else b"", body

    def json(self) -> dict[str, Any]:
        return self._body


class Compute:
    """Answers GETs from `reads` in turn (the last one repeats) and the POST with `op`."""

    def __init__(self, reads: list[dict[str, Any]], op: dict[str, Any] | None = None) -> None:
        self.reads, self.op = list(reads), op or {"status": "DONE"}
        self.calls: list[tuple[str, str, Any, float]] = []

    def request(self, method: str, url: str, timeout: float, **kw: Any) -> _Resp:
        self.calls.append((method, url, kw.get("json"), timeout))
        if method == "POST":
            return _Resp(self.op)
        return _Resp(self.reads.pop(0) if len(self.reads) > 1 else self.reads[0])

    def posts(self) -> list[tuple[str, Any]]:
        return [(url, body) for method, url, body, _ in self.calls if method == "POST"]


def _finding(name: str = "positive_detached.json") -> Finding:
    params = default_policy().settings(armor.RULE.id).params
    f = armor.RULE.evaluate(parse(load_json(FIXTURES / name)), params)
    assert f is not None
    return f


def _ctx(mode: Mode = Mode.ENFORCE, timeout: float = 0.5) -> ActionContext:
    return ActionContext(mode=mode, action=Action.REVERT, operation_timeout=timeout)


def _remediate(monkeypatch: pytest.MonkeyPatch, fake: Compute, *, prior: tuple[str | None, str] = (EDGE, EVIDENCE),
               finding: Finding | None = None, mode: Mode = Mode.ENFORCE, timeout: float = 0.5) -> ActionRecord:
    monkeypatch.setattr(armor, "compute_rest", lambda: (fake, "http://compute.test"))
    monkeypatch.setattr(armor, "confirmed_prior_policy", lambda f, p: prior)
    monkeypatch.setattr(armor, "POLL_SECONDS", 0.01)
    params = default_policy().settings(armor.RULE.id).params
    return armor.remediate(finding or _finding(), params, _ctx(mode, timeout))


def test_a_dry_run_says_what_it_would_attach_and_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Compute([{"fingerprint": "f1"}])
    record = _remediate(monkeypatch, fake, mode=Mode.DRY_RUN)
    assert record.outcome is Outcome.DRY_RUN and record.mode is Mode.DRY_RUN
    assert record.changes == [Change("securityPolicy", "(none)", EDGE)]
    assert record.before == {"security_policy": "(none)", "fingerprint": "f1"}
    assert record.after == {"security_policy": EDGE}
    assert record.reason == f"would reattach the policy {EVIDENCE}"
    assert fake.posts() == [] and [c[:2] for c in fake.calls] == [("GET", f"http://compute.test/compute/v1/{BACKEND}")]
