"""The Cloud Armor revert's pieces, one function at a time: which policy strings may be attached
(`policy_link`), what Cloud Logging's history says was attached before a detach (`prior_policy`),
and how the write's Operation is seen through (`remediate` against a fake Compute session; the
end-to-end cases against the stand-in are in tests/test_armor_revert.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import functions.armor_policy_detached as armor
from shared.event import AuditEvent, parse
from shared.model import Action, Mode, Outcome
from tests.helpers import RULE_FIXTURES, default_policy, load_json

BACKEND = "projects/phi-prod/global/backendServices/phi-api-backend"
REGIONAL = "projects/phi-prod/regions/us-east4/backendServices/internal"
LINK = "https://www.googleapis.com/compute/v1/"
EDGE = f"{LINK}projects/phi-prod/global/securityPolicies/phi-edge"


@pytest.mark.parametrize(("ref", "backend", "expected"), [
    (EDGE, BACKEND, EDGE),
    ("projects/phi-prod/global/securityPolicies/phi-edge", BACKEND, EDGE),
    ("https://compute.googleapis.com/compute/beta/projects/phi-prod/global/securityPolicies/phi-edge", BACKEND, EDGE),
    (f"{LINK}projects/phi-prod/regions/us-east4/securityPolicies/w", REGIONAL,
     f"{LINK}projects/phi-prod/regions/us-east4/securityPolicies/w"),
])
def test_a_policy_of_the_backends_own_project_and_scope_is_rebuilt_canonically(ref: str, backend: str, expected: str) -> None:
    assert armor.policy_link(ref, backend) == expected


@pytest.mark.parametrize("ref", [
    f"{LINK}projects/other-project/global/securityPolicies/phi-edge",
    f"{LINK}projects/phi-prod/regions/us-east4/securityPolicies/phi-edge",  # regional policy, global backend
    "https://evil.example/compute/v1/projects/phi-prod/global/securityPolicies/phi-edge",
    "http://www.googleapis.com/compute/v1/projects/phi-prod/global/securityPolicies/phi-edge",
    f"{EDGE}?alt=json", f"{EDGE}/", f"{EDGE}#x", EDGE.upper(), f"{LINK}projects/phi-prod/global/securityPolicies/../x",
    f"{LINK}projects/phi-prod/global/securityPolicies/" + "a" * 64, "global/securityPolicies/phi-edge", "phi-edge", "",
    f"{EDGE}\n",
])
def test_anything_else_is_refused(ref: str) -> None:
    assert armor.policy_link(ref, BACKEND) is None


def test_a_regional_backend_takes_only_a_policy_of_its_own_region() -> None:
    assert armor.policy_link(f"{LINK}projects/phi-prod/regions/europe-west1/securityPolicies/w", REGIONAL) is None
    assert armor.policy_link(EDGE, REGIONAL) is None


def _event(name: str, insert_id: str, *, policy: str | None = None, method: str = "", last: bool = False) -> AuditEvent:
    e = copy.deepcopy(load_json(RULE_FIXTURES / "armor_policy_detached" / name))
    e["insertId"] = insert_id
    if policy is not None:
        e["protoPayload"]["request"]["securityPolicy"] = policy
    if method:
        e["protoPayload"]["methodName"] = method
    if last:
        e["operation"] = {"id": "op", "producer": "compute.googleapis.com", "last": True}
        e["protoPayload"]["request"] = {"@type": "type.googleapis.com/compute.backendServices.setSecurityPolicy"}
    return parse(e)


def test_the_last_set_security_policy_before_the_detach_names_the_policy() -> None:
    detach = _event("positive_detached.json", "d")
    entries = [
        _event("negative_attached.json", "after", policy=f"{LINK}projects/phi-prod/global/securityPolicies/later"),
        detach,
        _event("negative_attached.json", "op-end", last=True),  # an operation's end: no request body
        _event("negative_attached.json", "patch", method="v1.compute.backendServices.patch"),
        _event("negative_attached.json", "a1", policy=EDGE),
        _event("negative_attached.json", "a0", policy=f"{LINK}projects/phi-prod/global/securityPolicies/older"),
    ]
    policy, evidence = armor.prior_policy(entries, detach)
    assert policy == EDGE and "entry a1" in evidence


def test_history_without_the_detach_or_with_a_detach_before_it_names_nothing() -> None:
    detach = _event("positive_detached.json", "d")
    assert armor.prior_policy([_event("negative_attached.json", "a", policy=EDGE)], detach)[0] == ""
    before = [detach, _event("positive_detached.json", "d0"), _event("negative_attached.json", "a", policy=EDGE)]
    policy, why = armor.prior_policy(before, detach)
    assert policy == "" and "detached too" in why
    assert armor.prior_policy([detach], detach)[0] == ""


class _Resp:
    def __init__(self, body: dict[str, Any]) -> None:
        self.status_code, self.content, self._body = 200, json.dumps(body).encode(), body

    def json(self) -> dict[str, Any]:
        return self._body


class _Compute:
    """Answers GETs of the backend from `reads` in turn (the last one repeats) and POSTs with `op`."""

    def __init__(self, reads: list[dict[str, Any]], op: dict[str, Any]) -> None:
        self.reads, self.op, self.calls = reads, op, []

    def request(self, method: str, url: str, timeout: float, **kw: Any) -> _Resp:
        self.calls.append((method, url, kw.get("json")))
        if method == "POST":
            return _Resp(self.op)
        return _Resp(self.reads.pop(0) if len(self.reads) > 1 else self.reads[0])


def _remediate(monkeypatch: pytest.MonkeyPatch, fake: _Compute, timeout: float = 0.5) -> Any:
    from shared.actions import ActionContext

    monkeypatch.setattr(armor, "compute_rest", lambda: (fake, "http://compute.test"))
    monkeypatch.setattr(armor, "confirmed_prior_policy", lambda f, p: (EDGE, "attached by a at t (entry a1)"))
    monkeypatch.setattr(armor, "POLL_SECONDS", 0.01)
    params = default_policy().settings(armor.RULE.id).params
    f = armor.RULE.evaluate(parse(load_json(RULE_FIXTURES / "armor_policy_detached" / "positive_detached.json")), params)
    assert f is not None
    return armor.remediate(f, params, ActionContext(mode=Mode.ENFORCE, action=Action.REVERT, operation_timeout=timeout))


def test_a_running_operation_is_seen_through_by_reading_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Compute([{"fingerprint": "a"}, {"fingerprint": "a"}, {"fingerprint": "a"}, {"fingerprint": "b", "securityPolicy": EDGE}],
                    {"kind": "compute#operation", "status": "RUNNING"})
    record = _remediate(monkeypatch, fake)
    assert record.outcome is Outcome.REMEDIATED and record.after == {"security_policy": EDGE, "fingerprint": "b"}
    assert [c for c in fake.calls if c[0] == "POST"] == [
        ("POST", f"http://compute.test/compute/v1/{BACKEND}/setSecurityPolicy", {"securityPolicy": EDGE})]


def test_an_operation_that_failed_is_a_failed_record(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Compute([{"fingerprint": "a"}], {"status": "DONE", "error": {"errors": [{"code": "RESOURCE_NOT_FOUND",
                                                                                     "message": "x" * 999}]}})
    record = _remediate(monkeypatch, fake)
    assert record.outcome is Outcome.FAILED and record.reason == "setSecurityPolicy failed: RESOURCE_NOT_FOUND"


def test_a_policy_that_never_shows_is_a_failed_record_not_a_success(monkeypatch: pytest.MonkeyPatch) -> None:
    record = _remediate(monkeypatch, _Compute([{"fingerprint": "a"}], {"status": "RUNNING"}), timeout=0.1)
    assert record.outcome is Outcome.FAILED and "shows no policy" in record.reason


def test_a_policy_someone_else_attached_meanwhile_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = f"{LINK}projects/phi-prod/global/securityPolicies/theirs"
    fake = _Compute([{"fingerprint": "a"}, {"fingerprint": "a"}, {"fingerprint": "c", "securityPolicy": theirs}], {"status": "DONE"})
    record = _remediate(monkeypatch, fake)
    assert record.outcome is Outcome.ALREADY_COMPLIANT and record.after["security_policy"] == theirs


def test_a_resource_name_with_a_trailing_newline_locates_nothing() -> None:
    """It would otherwise reach the Compute URL the revert reads and writes."""
    e = load_json(RULE_FIXTURES / "armor_policy_detached" / "positive_detached.json")
    e["protoPayload"]["resourceName"] += "\n"
    assert armor.RULE.evaluate(parse(e), default_policy().settings(armor.RULE.id).params) is None


def test_a_backend_name_outside_the_strict_shape_is_never_put_in_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import ActionContext

    fake = _Compute([{}], {})
    monkeypatch.setattr(armor, "compute_rest", lambda: (fake, "http://compute.test"))
    params = default_policy().settings(armor.RULE.id).params
    e = load_json(RULE_FIXTURES / "armor_policy_detached" / "positive_detached.json")
    e["protoPayload"]["resourceName"] = "projects/../global/backendServices/phi-api-backend"
    f = armor.RULE.evaluate(parse(e), params)
    assert f is not None
    record = armor.remediate(f, params, ActionContext(mode=Mode.ENFORCE, action=Action.REVERT))
    assert record.outcome is Outcome.FAILED and fake.calls == []
