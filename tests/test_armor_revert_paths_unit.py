"""Every path of the Cloud Armor revert (functions/armor_policy_detached.py), one fast unit test
each, against plain fakes: a fake Compute session (GETs of the backend answered in turn, the
setSecurityPolicy POST answered with an Operation) and fake Cloud Logging look-ups
(`shared.audit_confirm.lookup` and `history`). Which record each path makes, with which
outcome, facts, changes, attempts, undo command and reason, and what is (not) written.
tests/test_armor_revert_unit.py covers the policy string's shape and the operation's end;
tests/test_armor_revert.py runs the same against the stand-in with the real clients."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import functions.armor_policy_detached as armor
from shared.actions import ActionContext
from shared.event import AuditEvent, parse
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


def _expect(finding: Finding, outcome: Outcome, mode: Mode = Mode.ENFORCE, **kw: Any) -> ActionRecord:
    return ActionRecord(finding=finding, mode=mode, outcome=outcome, **kw)


NONE_F1 = {"security_policy": "(none)", "fingerprint": "f1"}
NONE_F2 = {"security_policy": "(none)", "fingerprint": "f2"}
UNDO_GLOBAL = ("gcloud compute backend-services update phi-api-backend --global --project=phi-prod --security-policy=''"
               "  # add an exemption first, or Rampart attaches it again")
AGAIN = "the backend service has a security policy again: left as it is"


def _gets(fake: Compute, backend: str = BACKEND) -> list[tuple[str, str, Any, float]]:
    return [c for c in fake.calls if c[0] == "GET" and c[1] == f"http://compute.test/compute/v1/{backend}"]


class Clock:
    """armor.time for `_await_policy`: monotonic() is a counter that sleep() advances."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class StrictCompute(Compute):
    """A Compute session that answers only GET and POST, to URLs under its base."""

    def request(self, method: str, url: str, timeout: float, **kw: Any) -> _Resp:
        assert method in ("GET", "POST") and url.startswith("http://compute.test/compute/v1/projects/"), (method, url)
        assert isinstance(timeout, float), timeout
        return super().request(method, url, timeout, **kw)


def test_a_rule_change_inside_a_policy_is_alerted_only_and_nothing_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = StrictCompute([{}])
    f = _finding("positive_rule_removed.json")
    record = _remediate(monkeypatch, fake, finding=f)
    assert record == _expect(f, Outcome.ALERTED, reason="rules changed inside a security policy: alert only, "
                             "a human decides which rule is right")
    assert fake.calls == []


def test_a_backend_name_outside_the_strict_shape_fails_with_the_shape_it_expected(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    fake = StrictCompute([{}])
    f = dataclasses.replace(_finding(), resource="projects/phi-prod/global/backendServices/Phi_API")
    record = _remediate(monkeypatch, fake, finding=f)
    assert record == _expect(f, Outcome.FAILED, reason="not reattached: the backend service's name is not one Rampart "
                             "writes to (projects/P/{global|regions/R}/backendServices/NAME): a human decides")
    assert fake.calls == []


def test_a_backend_that_has_a_policy_at_the_first_read_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Finding] = []
    fake = StrictCompute([{"fingerprint": "f1", "securityPolicy": EDGE}])
    monkeypatch.setattr(armor, "compute_rest", lambda: (fake, "http://compute.test"))
    monkeypatch.setattr(armor, "confirmed_prior_policy", lambda f, p: asked.append(f) or (EDGE, EVIDENCE))
    f = _finding()
    record = armor.remediate(f, default_policy().settings(armor.RULE.id).params, _ctx(timeout=40.0))
    facts = {"security_policy": EDGE, "fingerprint": "f1"}
    assert record == _expect(f, Outcome.ALREADY_COMPLIANT, before=facts, after=facts, reason=AGAIN)
    assert asked == [] and fake.posts() == []
    assert [(c[1], c[3]) for c in fake.calls] == [(f"http://compute.test/compute/v1/{BACKEND}", 30.0)]  # a read: 30 s at most


def test_a_detach_cloud_logging_does_not_confirm_is_a_failed_record_and_nothing_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = StrictCompute([{"fingerprint": "f1"}])
    f = _finding()
    seen: list[tuple[Finding, Any]] = []
    monkeypatch.setattr(armor, "compute_rest", lambda: (fake, "http://compute.test"))
    monkeypatch.setattr(armor, "confirmed_prior_policy", lambda finding, params: seen.append((finding, params)) or (None, "why not"))
    params = default_policy().settings(armor.RULE.id).params
    record = armor.remediate(f, params, _ctx())
    assert record == _expect(f, Outcome.FAILED, before=NONE_F1, reason="not reattached: why not")
    assert seen == [(f, params)] and fake.posts() == []


def test_a_policy_attached_while_confirming_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = "https://www.googleapis.com/compute/v1/projects/phi-prod/global/securityPolicies/theirs"
    fake = StrictCompute([{"fingerprint": "f1"}, {"fingerprint": "f2", "securityPolicy": theirs}])
    f = _finding()
    record = _remediate(monkeypatch, fake, finding=f)
    facts = {"security_policy": theirs, "fingerprint": "f2"}
    assert record == _expect(f, Outcome.ALREADY_COMPLIANT, before=facts, after=facts, reason=AGAIN)
    assert fake.posts() == [] and len(_gets(fake)) == 2


def test_a_reattach_reads_twice_writes_once_and_records_both_fingerprints_and_the_undo(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(armor, "time", clock)
    fake = StrictCompute([{"fingerprint": "f1"}, {"fingerprint": "f2"}, {"fingerprint": "f3", "securityPolicy": EDGE}])
    f = _finding()
    record = _remediate(monkeypatch, fake, finding=f)
    assert record == _expect(f, Outcome.REMEDIATED, changes=[Change("securityPolicy", "(none)", EDGE)], before=NONE_F2,
                             after={"security_policy": EDGE, "fingerprint": "f3"}, attempts=1, undo=UNDO_GLOBAL,
                             reason=f"reattached the policy {EVIDENCE}")
    url = f"http://compute.test/compute/v1/{BACKEND}"
    assert fake.calls == [("GET", url, None, 0.5), ("GET", url, None, 0.5),
                          ("POST", f"{url}/setSecurityPolicy", {"securityPolicy": EDGE}, 0.5), ("GET", url, None, 0.5)]
    assert clock.slept == []


def test_a_regional_backends_undo_names_its_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(armor, "time", Clock())
    regional = "https://www.googleapis.com/compute/v1/projects/phi-prod/regions/us-east4/securityPolicies/w"
    f = _finding("positive_detached_regional.json")
    fake = StrictCompute([{"fingerprint": "f1"}, {"fingerprint": "f2"}, {"fingerprint": "f3", "securityPolicy": regional}])
    record = _remediate(monkeypatch, fake, finding=f, prior=(regional, EVIDENCE))
    assert record.outcome is Outcome.REMEDIATED
    assert record.undo == ("gcloud compute backend-services update phi-internal-backend --region=us-east4 --project=phi-prod "
                           "--security-policy=''  # add an exemption first, or Rampart attaches it again")


def test_the_policy_shown_after_the_write_is_compared_by_reference_not_by_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(armor, "time", Clock())
    shown = "https://compute.googleapis.com/compute/v1/projects/phi-prod/global/securityPolicies/phi-edge"  # another host form
    fake = StrictCompute([{"fingerprint": "f1"}, {"fingerprint": "f2"}, {"fingerprint": "f3", "securityPolicy": shown}])
    assert _remediate(monkeypatch, fake).outcome is Outcome.REMEDIATED


def test_another_policy_shown_after_the_write_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(armor, "time", Clock())
    theirs = "https://www.googleapis.com/compute/v1/projects/phi-prod/global/securityPolicies/theirs"
    fake = StrictCompute([{"fingerprint": "f1"}, {"fingerprint": "f2"}, {"fingerprint": "f3", "securityPolicy": theirs}])
    f = _finding()
    record = _remediate(monkeypatch, fake, finding=f)
    assert record == _expect(f, Outcome.ALREADY_COMPLIANT, before=NONE_F2, after={"security_policy": theirs, "fingerprint": "f3"},
                             attempts=1, reason="another security policy was attached meanwhile: left as it is")


def test_a_write_whose_policy_never_shows_is_failed_after_the_operation_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend is read every POLL_SECONDS while another read still fits in the budget: with
    2 s and 1 s polls, at 0, 1 and 2 s after the write (a read at 3 s would end past it)."""
    clock = Clock()
    monkeypatch.setattr(armor, "time", clock)
    fake = StrictCompute([{"fingerprint": "f1"}, {"fingerprint": "f2"}, {"fingerprint": "f3"}])
    f = _finding()
    record = _remediate(monkeypatch, fake, finding=f, timeout=2.0)
    assert record == _expect(f, Outcome.FAILED, before=NONE_F2, after={"security_policy": "(none)", "fingerprint": "f3"},
                             attempts=1, reason="setSecurityPolicy was sent but the backend shows no policy after 2s")
    assert clock.slept == [1.0, 1.0] and len(_gets(fake)) == 2 + 3


def test_a_write_whose_policy_shows_late_is_seen_through(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(armor, "time", clock)
    fake = StrictCompute([{"fingerprint": "f1"}, {"fingerprint": "f2"}, {"fingerprint": "f2"}, {"fingerprint": "f2"},
                          {"fingerprint": "f3", "securityPolicy": EDGE}])
    monkeypatch.setattr(armor, "compute_rest", lambda: (fake, "http://compute.test"))
    monkeypatch.setattr(armor, "confirmed_prior_policy", lambda f, p: (EDGE, EVIDENCE))
    record = armor.remediate(_finding(), default_policy().settings(armor.RULE.id).params, _ctx(timeout=10.0))
    assert record.outcome is Outcome.REMEDIATED and record.after == {"security_policy": EDGE, "fingerprint": "f3"}
    assert clock.slept == [1.0, 1.0]


@pytest.mark.parametrize(("error", "reason"), [
    ({"errors": [{"code": "RESOURCE_NOT_FOUND"}, {"code": "Q" * 99}]}, "RESOURCE_NOT_FOUND, " + "Q" * 60),
    ({"errors": []}, "no code"),
    ({"errors": [{"message": "no code here"}]}, "no code"),
])
def test_an_operation_error_is_a_failed_record_naming_its_codes(monkeypatch: pytest.MonkeyPatch, error: dict[str, Any], reason: str) -> None:
    fake = StrictCompute([{"fingerprint": "f1"}, {"fingerprint": "f2"}], op={"status": "DONE", "error": error})
    f = _finding()
    record = _remediate(monkeypatch, fake, finding=f)
    assert record == _expect(f, Outcome.FAILED, before=NONE_F2, attempts=1, reason=f"setSecurityPolicy failed: {reason}")
    assert len(fake.posts()) == 1 and len(_gets(fake)) == 2


# ---------------------------------------------------------------------------
# prior_policy: which earlier entry names the policy.

LINK = "https://www.googleapis.com/compute/v1/"


def _entry(name: str, insert_id: str, *, policy: str | None = None, method: str = "", actor: str | None = None,
           operation: dict[str, Any] | bool | None = True) -> AuditEvent:
    e = copy.deepcopy(load_json(FIXTURES / name))
    e["insertId"] = insert_id
    if policy is not None:
        e["protoPayload"]["request"]["securityPolicy"] = policy
    if method:
        e["protoPayload"]["methodName"] = method
    if actor is not None:
        e["protoPayload"]["authenticationInfo"] = {"principalEmail": actor} if actor else {}
    if operation is None:
        del e["operation"]
    return parse(e)


def test_an_entry_that_is_no_operation_still_names_the_policy() -> None:
    detach = _entry("positive_detached.json", "d")
    policy, evidence = armor.prior_policy([detach, _entry("negative_attached.json", "a1", policy=EDGE, operation=None)], detach)
    assert (policy, evidence) == (EDGE, "attached by deployer@example.com at 2026-11-30T10:00:00.000000Z (entry a1)")


def test_an_attach_by_no_named_principal_is_attributed_to_someone() -> None:
    detach = _entry("positive_detached.json", "d")
    policy, evidence = armor.prior_policy([detach, _entry("negative_attached.json", "a1", policy=EDGE, actor="")], detach)
    assert (policy, evidence) == (EDGE, "attached by someone at 2026-11-30T10:00:00.000000Z (entry a1)")


def test_an_entry_of_another_api_on_the_backend_is_passed_over() -> None:
    detach = _entry("positive_detached.json", "d")
    other = _entry("negative_attached.json", "x", method="SetSecurityPolicy")  # no "compute." in its method
    assert armor.prior_policy([detach, other, _entry("negative_attached.json", "a1", policy=EDGE)], detach)[0] == EDGE


def test_no_earlier_attach_says_how_far_it_looked() -> None:
    detach = _entry("positive_detached.json", "d")
    assert armor.prior_policy([detach], detach) == (
        "", "Cloud Logging holds no earlier setSecurityPolicy on the backend (last 50 entries read)")
    assert armor.prior_policy([], detach) == ("", "Cloud Logging's history of the backend does not hold the detach entry d")


# ---------------------------------------------------------------------------
# confirmed_prior_policy: the detach as Cloud Logging holds it, then its history.


class Logging:
    """Fake shared.audit_confirm.lookup and history: answers `held` and `entries`, records the asks."""

    def __init__(self, held: AuditEvent | Exception, entries: list[AuditEvent] | None = None) -> None:
        self.held, self.entries = held, entries or []
        self.lookups: list[tuple[str, str, str]] = []
        self.histories: list[tuple[str, str, str, int]] = []

    def lookup(self, project: str, insert_id: str, timestamp: str) -> AuditEvent:
        self.lookups.append((project, insert_id, timestamp))
        if isinstance(self.held, Exception):
            raise self.held
        return self.held

    def history(self, project: str, resource: str, *, until: str, limit: int = 0) -> list[AuditEvent]:
        self.histories.append((project, resource, until, limit))
        return self.entries


def _confirm(monkeypatch: pytest.MonkeyPatch, fake: Logging, finding: Finding | None = None) -> tuple[str | None, str]:
    from shared import audit_confirm

    monkeypatch.setattr(audit_confirm, "lookup", fake.lookup)
    monkeypatch.setattr(audit_confirm, "history", fake.history)
    return armor.confirmed_prior_policy(finding or _finding(), default_policy().settings(armor.RULE.id).params)


def test_a_confirmed_detach_gets_the_canonical_link_of_the_policy_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    held = _entry("positive_detached.json", "armor-detach")
    fake = Logging(held, [held, _entry("negative_attached.json", "a1",
                                       policy="projects/phi-prod/global/securityPolicies/phi-edge")])
    assert _confirm(monkeypatch, fake) == (EDGE, "attached by deployer@example.com at 2026-11-30T10:00:00.000000Z (entry a1)")
    assert fake.lookups == [("phi-prod", "armor-detach", "2026-11-30T10:00:00.000000Z")]
    assert fake.histories == [("phi-prod", BACKEND, "2026-11-30T10:00:00.000000Z", 50)]


def test_a_finding_without_an_entry_is_not_confirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    fake = Logging(AssertionError("not asked"))
    assert _confirm(monkeypatch, fake, dataclasses.replace(_finding(), event_id="")) == (
        None, "no audit entry to confirm (found by a sweep): a human decides")
    assert fake.lookups == []


def test_an_entry_cloud_logging_does_not_hold_is_not_confirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.audit_confirm import Unconfirmed

    assert _confirm(monkeypatch, Logging(Unconfirmed("no such entry"))) == (
        None, "the audit entry is not confirmed in Cloud Logging (no such entry)")


@pytest.mark.parametrize("change", [
    {"method": "v1.compute.regionBackendServices.setSecurityPolicy"},
    {"actor": "someone.else@example.com"},
])
def test_a_held_entry_other_than_the_one_delivered_is_not_confirmed(monkeypatch: pytest.MonkeyPatch, change: dict[str, str]) -> None:
    fake = Logging(_entry("positive_detached.json", "armor-detach", **change))
    assert _confirm(monkeypatch, fake) == (None, "the audit entry is not confirmed in Cloud Logging (Cloud Logging's entry "
                                                 "armor-detach does not match the one delivered)")
    assert fake.histories == []


def test_a_held_entry_on_another_backend_is_not_confirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    e = copy.deepcopy(load_json(FIXTURES / "positive_detached.json"))
    e["protoPayload"]["resourceName"] = "projects/phi-prod/global/backendServices/other"
    assert _confirm(monkeypatch, Logging(parse(e)))[0] is None


def test_a_held_entry_that_attaches_a_policy_is_not_confirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    held = _entry("negative_attached.json", "armor-detach")  # the same method, backend and principal, but an attach
    fake = Logging(held)
    assert _confirm(monkeypatch, fake) == (None, "the audit entry is not confirmed in Cloud Logging (Cloud Logging's entry "
                                                 "armor-detach does not detach a policy)")
    assert fake.histories == []


def test_a_history_without_an_earlier_policy_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    held = _entry("positive_detached.json", "armor-detach")
    assert _confirm(monkeypatch, Logging(held, [held])) == (
        None, "Cloud Logging holds no earlier setSecurityPolicy on the backend (last 50 entries read)")


def test_an_earlier_policy_of_another_project_is_not_attached_nor_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    held = _entry("positive_detached.json", "armor-detach")
    ref = f"{LINK}projects/other-project/global/securityPolicies/phi-edge"
    policy, why = _confirm(monkeypatch, Logging(held, [held, _entry("negative_attached.json", "a1", policy=ref)]))
    assert policy is None and ref not in why
    assert why == (f"the earlier policy (attached by deployer@example.com at 2026-11-30T10:00:00.000000Z (entry a1); {len(ref)} "
                   "characters, not echoed) is not a security policy of the backend's own project and scope: a human decides")


def test_a_dry_runs_record_is_of_the_finding_in_dry_run_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    f = _finding()
    record = _remediate(monkeypatch, StrictCompute([{"fingerprint": "f1"}]), finding=f, mode=Mode.DRY_RUN)
    assert record == _expect(f, Outcome.DRY_RUN, mode=Mode.DRY_RUN, changes=[Change("securityPolicy", "(none)", EDGE)],
                             before=NONE_F1, after={"security_policy": EDGE}, reason=f"would reattach the policy {EVIDENCE}")
