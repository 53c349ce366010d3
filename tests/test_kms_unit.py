"""KMS key-version actions (shared.actions.kms) on their own, with the version held in this
process (the KMS client replaced): which state moves are made, which are refused and why, what
the record keeps when a second call is refused after a first went through, and the exact undo
commands. tests/test_kms_actions.py runs the same actions against the stand-in."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import kms_v1

from shared.actions import ActionContext, kms
from shared.actions.iam import EXEMPT_FIRST
from shared.model import Action, Change, Finding, Mode, Outcome, Severity

KEY = "projects/p1/locations/us/keyRings/ring/cryptoKeys/k1"
V1 = f"{KEY}/cryptoKeyVersions/1"
FLAGS = "--key=k1 --keyring=ring --location=us --project=p1"
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState


def _at(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


class Kms:
    """One key version; `refuse` makes the named call answer 400 FAILED_PRECONDITION, and
    `then` is the state the version is found in after the refusal."""

    def __init__(self, state: str, destroy_time: float | None = None, destroyed_at: float | None = None) -> None:
        self.version = kms_v1.CryptoKeyVersion(name=V1, state=state)
        if destroy_time is not None:
            self.version.destroy_time = _at(destroy_time)
        if destroyed_at is not None:
            self.version.destroy_event_time = _at(destroyed_at)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.refuse: str = ""
        self.then: str = ""
        self.then_destroyed_at: float | None = None
        self.then_forget_times = False
        self.then_destroy_time: float | None = None

    def _refused(self, call: str) -> None:
        if self.refuse == call:
            self.version.state = getattr(State, self.then)
            if self.then_destroyed_at is not None:
                self.version.destroy_event_time = _at(self.then_destroyed_at)
            if self.then_forget_times:
                self.version.destroy_time = None
            if self.then_destroy_time is not None:
                self.version.destroy_time = _at(self.then_destroy_time)
            raise gexc.BadRequest("The request was refused: FAILED_PRECONDITION")

    def get_crypto_key_version(self, **kw: Any) -> Any:
        self.calls.append(("get", kw))
        return kms_v1.CryptoKeyVersion(self.version)

    def update_crypto_key_version(self, **kw: Any) -> Any:
        self.calls.append(("update", kw))
        self._refused("update")
        self.version.state = kw["crypto_key_version"].state
        return kms_v1.CryptoKeyVersion(self.version)

    def restore_crypto_key_version(self, **kw: Any) -> Any:
        self.calls.append(("restore", kw))
        self._refused("restore")
        self.version.state = State.DISABLED
        self.version.destroy_time = None
        return kms_v1.CryptoKeyVersion(self.version)


@pytest.fixture
def version(monkeypatch: pytest.MonkeyPatch) -> Any:
    def make(state: str, **kw: Any) -> Kms:
        fake = Kms(state, **kw)
        monkeypatch.setattr(kms, "_kms", lambda: fake)
        return fake

    return make


def _finding(rule: str = "kms_version_disabled") -> Finding[Any]:
    return Finding(rule=rule, severity=Severity.HIGH, title="t", resource=V1, resource_type="kms.cryptoKeyVersion",
                   project="p1", location="us", principal="dev@example.com", action=Action.RESTORE, event_id="e1",
                   method="m", timestamp="2026-01-01T00:00:00Z")


def _ctx(mode: Mode = Mode.ENFORCE, **kw: Any) -> ActionContext:
    return ActionContext(mode=mode, action=Action.RESTORE, clock=lambda: NOW, **kw)


# -- re-enable a DISABLED version ---------------------------------------------------------------

def test_a_disabled_version_is_enabled_with_one_bounded_state_write_and_an_exact_undo(version: Any) -> None:
    live = version("DISABLED")
    rec = kms.reenable_version(_finding(), _ctx(operation_timeout=90.0))
    assert rec.outcome is Outcome.REMEDIATED and live.version.state == State.ENABLED
    assert rec.changes == [Change("state", "DISABLED", "ENABLED")] and rec.attempts == 1
    assert rec.before == {"name": V1, "state": "DISABLED"} and rec.after == {"name": V1, "state": "ENABLED"}
    assert rec.undo == f"gcloud kms keys versions disable 1 {FLAGS}  # {EXEMPT_FIRST}"
    (_, get), (_, update) = live.calls
    assert get == {"name": V1, "retry": None, "timeout": 30.0}
    assert update["crypto_key_version"].name == V1 and update["crypto_key_version"].state == State.ENABLED
    assert list(update["update_mask"].paths) == ["state"]  # nothing but the state is written
    assert (update["retry"], update["timeout"]) == (None, 30.0)


def test_an_enabled_version_is_left_alone(version: Any) -> None:
    live = version("ENABLED")
    rec = kms.reenable_version(_finding(), _ctx())
    assert rec.outcome is Outcome.ALREADY_COMPLIANT and rec.reason == "version is ENABLED" and rec.finding == _finding()
    assert rec.before == rec.after == {"name": V1, "state": "ENABLED"} and [c for c, _ in live.calls] == ["get"]


@pytest.mark.parametrize(("state", "why"), [
    ("DESTROY_SCHEDULED", ": restoring it is kms_version_destroy_scheduled's job"),
    ("DESTROYED", ": restoring it is kms_version_destroy_scheduled's job"),
    ("PENDING_GENERATION", ""),
])
def test_a_version_in_another_state_is_not_enabled_from_here(version: Any, state: str, why: str) -> None:
    live = version(state)
    rec = kms.reenable_version(_finding(), _ctx())
    assert rec.outcome is Outcome.FAILED and rec.reason == f"expected version {V1} DISABLED or ENABLED, found {state}{why}"
    assert rec.finding == _finding()
    assert [c for c, _ in live.calls] == ["get"] and rec.before["state"] == state


def test_a_dry_run_re_enable_writes_nothing(version: Any) -> None:
    live = version("DISABLED")
    rec = kms.reenable_version(_finding(), _ctx(Mode.DRY_RUN))
    assert rec.outcome is Outcome.DRY_RUN and rec.changes == [Change("state", "DISABLED", "ENABLED")] and rec.finding == _finding()
    assert rec.before == {"name": V1, "state": "DISABLED"} and [c for c, _ in live.calls] == ["get"]


def test_a_re_enable_refused_because_the_state_moved_says_what_it_is_now(version: Any) -> None:
    live = version("DISABLED")
    live.refuse, live.then = "update", "DESTROY_SCHEDULED"
    rec = kms.reenable_version(_finding(), _ctx())
    assert rec.outcome is Outcome.FAILED and rec.attempts == 1 and rec.finding == _finding()
    assert rec.reason == (f"enabling version {V1} was refused (The request was refused: FAILED_PRECONDITION); "
                          "it is now DESTROY_SCHEDULED")
    assert rec.after == {"name": V1, "state": "DESTROY_SCHEDULED"} and rec.before["state"] == "DISABLED"


# -- cancel a scheduled destruction -----------------------------------------------------------------

def test_a_scheduled_destruction_is_cancelled_then_the_version_enabled(version: Any) -> None:
    live = version("DESTROY_SCHEDULED", destroy_time=NOW + 86400 + 3600 + 120)
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.outcome is Outcome.REMEDIATED and live.version.state == State.ENABLED and rec.attempts == 2
    assert rec.changes == [Change("state", "DESTROY_SCHEDULED", "DISABLED"), Change("state", "DISABLED", "ENABLED")]
    assert rec.reason == "re-enabled after restore" and rec.finding == _finding("kms_version_destroy_scheduled")
    assert rec.undo == (f"gcloud kms keys versions disable 1 {FLAGS} && gcloud kms keys versions destroy 1 {FLAGS}"
                        f"  # {EXEMPT_FIRST}")
    assert rec.before == {"name": V1, "state": "DESTROY_SCHEDULED", "destroy_time": "2027-01-16T09:02:00Z",
                          "seconds_left": 86400 + 3600 + 120, "time_left": "1d 1h 2m"}
    assert rec.after == {"name": V1, "state": "ENABLED"}
    assert [c for c, _ in live.calls] == ["get", "restore", "update"]
    assert live.calls[1][1] == {"name": V1, "retry": None, "timeout": 30.0}


def test_a_restore_without_re_enable_leaves_it_disabled_and_says_why(version: Any) -> None:
    live = version("DESTROY_SCHEDULED", destroy_time=NOW + 600)
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=False)
    assert rec.outcome is Outcome.REMEDIATED and live.version.state == State.DISABLED and rec.attempts == 1
    assert rec.changes == [Change("state", "DESTROY_SCHEDULED", "DISABLED")]
    assert rec.reason == "left DISABLED after restore"
    assert rec.undo == f"gcloud kms keys versions destroy 1 {FLAGS}  # {EXEMPT_FIRST}"


def test_a_dry_run_restore_lists_both_moves_and_writes_nothing(version: Any) -> None:
    live = version("DESTROY_SCHEDULED", destroy_time=NOW + 600)
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(Mode.DRY_RUN), reenable=True, why="because")
    assert rec.outcome is Outcome.DRY_RUN and rec.reason == "because" and rec.finding == _finding("kms_version_destroy_scheduled")
    assert rec.before == {"name": V1, "state": "DESTROY_SCHEDULED", "destroy_time": "2027-01-15T08:10:00Z",
                          "seconds_left": 600, "time_left": "0h 10m"}
    assert rec.changes == [Change("state", "DESTROY_SCHEDULED", "DISABLED"), Change("state", "DISABLED", "ENABLED")]
    assert [c for c, _ in live.calls] == ["get"]


def test_a_version_past_its_destroy_time_is_not_restored(version: Any) -> None:
    live = version("DESTROY_SCHEDULED", destroy_time=NOW - 60)
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.outcome is Outcome.FAILED
    assert rec.reason == f"version {V1} was destroyed at 2027-01-15T07:59:00Z; nothing can be restored"
    assert rec.before["time_left"] == "window closed 0h 1m ago" and rec.before["seconds_left"] == 0
    assert [c for c, _ in live.calls] == ["get"]


def test_a_destroyed_version_is_reported_with_when(version: Any) -> None:
    version("DESTROYED", destroyed_at=NOW - 86400)
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.outcome is Outcome.FAILED
    assert rec.reason == f"version {V1} was destroyed at 2027-01-14T08:00:00Z; nothing can be restored"
    version("DESTROYED")
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.reason == f"version {V1} was destroyed at an unknown time; nothing can be restored"


@pytest.mark.parametrize("state", ["ENABLED", "DISABLED"])
def test_a_version_not_scheduled_for_destruction_is_not_this_rules(version: Any, state: str) -> None:
    live = version(state)
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.outcome is Outcome.ALREADY_COMPLIANT and rec.reason == f"version is {state}: not scheduled for destruction"
    assert rec.before == rec.after and [c for c, _ in live.calls] == ["get"]


def test_a_version_in_an_unexpected_state_is_a_failure(version: Any) -> None:
    version("PENDING_IMPORT")
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.outcome is Outcome.FAILED and rec.reason == f"expected version {V1} DESTROY_SCHEDULED, found PENDING_IMPORT"


def test_a_refused_re_enable_after_a_restore_keeps_the_restore_on_the_record(version: Any) -> None:
    live = version("DESTROY_SCHEDULED", destroy_time=NOW + 600)
    live.refuse, live.then = "update", "DISABLED"
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.outcome is Outcome.FAILED and rec.attempts == 2
    assert rec.changes == [Change("state", "DESTROY_SCHEDULED", "DISABLED")]  # that one happened
    assert rec.undo == f"gcloud kms keys versions destroy 1 {FLAGS}  # {EXEMPT_FIRST}"
    assert rec.reason == (f"restoring version {V1} was refused (The request was refused: FAILED_PRECONDITION); "
                          "it is now DISABLED")
    assert rec.after == {"name": V1, "state": "DISABLED"}


def test_a_restore_refused_because_the_version_was_destroyed_meanwhile(version: Any) -> None:
    live = version("DESTROY_SCHEDULED", destroy_time=NOW + 600)
    live.refuse, live.then = "restore", "DESTROYED"
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.outcome is Outcome.FAILED and rec.attempts == 1 and rec.changes == [] and rec.undo == ""
    assert rec.reason == f"version {V1} was destroyed at 2027-01-15T08:10:00Z; nothing can be restored"
    assert rec.before["state"] == "DESTROY_SCHEDULED" and rec.after["state"] == "DESTROYED"


def test_a_restore_refused_over_a_destruction_names_when_it_happened(version: Any) -> None:
    live = version("DESTROY_SCHEDULED", destroy_time=NOW + 600)
    live.refuse, live.then, live.then_destroyed_at = "restore", "DESTROYED", NOW + 5
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.reason == f"version {V1} was destroyed at 2027-01-15T08:00:05Z; nothing can be restored"
    live = version("DESTROY_SCHEDULED", destroy_time=NOW + 600)
    live.refuse, live.then, live.then_destroy_time = "restore", "DESTROYED", NOW + 30  # destroyed early
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.reason == f"version {V1} was destroyed at 2027-01-15T08:00:30Z; nothing can be restored"
    live = version("DESTROY_SCHEDULED", destroy_time=NOW + 600)
    live.refuse, live.then, live.then_forget_times = "restore", "DESTROYED", True  # the read says no time: ours
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.reason == f"version {V1} was destroyed at 2027-01-15T08:10:00Z; nothing can be restored"


# -- small helpers ---------------------------------------------------------------------------------

def test_times_read_plainly() -> None:
    assert kms._span(59) == "0h 0m" and kms._span(3600 + 60) == "1h 1m" and kms._span(2 * 86400) == "2d 0h 0m"
    assert kms._time_left(NOW + 61, NOW) == {"seconds_left": 61, "time_left": "0h 1m"}
    assert kms._time_left(NOW, NOW) == {"seconds_left": 0, "time_left": "window closed 0h 0m ago"}
    assert kms._parse_time("2027-01-15T08:00:00Z") == NOW
    assert kms._parse_time("2027-01-15 08:00:00") == NOW  # no zone: UTC, as KMS writes it
    assert kms._parse_time("soon") is None
    assert kms._iso(dt.datetime(2027, 1, 15, 8, 0)) == "2027-01-15T08:00:00Z"
    assert kms._iso(dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == "2027-01-15T08:00:00Z"


def test_times_without_a_zone_are_utc_on_any_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert kms._parse_time("2027-01-15 08:00:00") == NOW
        assert kms._parse_time("2027-01-15T03:00:00-05:00") == NOW
        assert kms._iso(dt.datetime(2027, 1, 15, 8, 0)) == "2027-01-15T08:00:00Z"  # a naive time is UTC
        assert kms._iso(_at(NOW)) == "2027-01-15T08:00:00Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# -- facts for alerts ----------------------------------------------------------------------------

def test_rotation_facts_are_read_live_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    class Client:
        def __init__(self, key: Any) -> None:
            self.key = key

        def get_crypto_key(self, **kw: Any) -> Any:
            calls.append(kw)
            if isinstance(self.key, Exception):
                raise self.key
            return self.key

    key = kms_v1.CryptoKey(name=KEY, rotation_period=dt.timedelta(days=90), next_rotation_time=_at(NOW + 86400))
    monkeypatch.setattr(kms, "_kms", lambda: Client(key))
    assert kms.key_rotation_facts(KEY, _ctx()) == {"rotation_period_days_now": 90.0,
                                                    "next_rotation_time": "2027-01-16T08:00:00Z"}
    assert calls == [{"name": KEY, "retry": None, "timeout": 30.0}]
    for days, shown in ((45.5, 45.5), (5000, 5000.0), (0.04, 0.0)):
        key.rotation_period = dt.timedelta(days=days)
        assert repr(kms.key_rotation_facts(KEY, _ctx())["rotation_period_days_now"]) == repr(shown)
    monkeypatch.setattr(kms, "_kms", lambda: Client(kms_v1.CryptoKey(name=KEY)))  # no rotation at all
    assert kms.key_rotation_facts(KEY, _ctx()) == {"rotation_period_days_now": None, "next_rotation_time": None}
    monkeypatch.setattr(kms, "_kms", lambda: Client(gexc.PermissionDenied("cloudkms.cryptoKeys.get denied")))
    assert kms.key_rotation_facts(KEY, _ctx()) == {"key_error": "PermissionDenied: cloudkms.cryptoKeys.get denied"}


def test_dependents_are_the_services_using_the_key_scanned_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.cloud import run_v2

    from shared import clients

    def svc(name: str, key: str, action: str = "") -> Any:
        s = run_v2.Service(name=f"projects/p1/locations/us/services/{name}")
        s.template.encryption_key = key
        if action:
            s.template.encryption_key_revocation_action = action
        return s

    services = [svc("a", KEY, "SHUTDOWN"), svc("b", KEY + "2"), svc("c", V1), svc("d", "")]
    requests: list[dict[str, Any]] = []

    class Run:
        def list_services(self, request: dict[str, Any], retry: Any, timeout: float) -> Any:
            requests.append({"request": request, "retry": retry, "timeout": timeout})
            return iter(services)

    monkeypatch.setattr(clients, "run_services", Run)
    facts = kms.dependents(KEY, "p1", "us", _ctx(), max_services=500)
    assert facts == {"dependents_searched": "projects/p1/locations/us",
                     "dependents": [{"service": "projects/p1/locations/us/services/a", "revocation_action": "SHUTDOWN"},
                                    {"service": "projects/p1/locations/us/services/c"}],
                     "services_scanned": 4}
    assert requests == [{"request": {"parent": "projects/p1/locations/us", "page_size": 100}, "retry": None, "timeout": 30.0}]
    capped = kms.dependents(KEY, "p1", "us", _ctx(), max_services=2)
    assert capped["services_scanned"] == 2 and capped["dependents_truncated"] == "stopped after 2 services"
    assert requests[-1]["request"]["page_size"] == 2
    assert "dependents_truncated" not in kms.dependents(KEY, "p1", "us", _ctx(), max_services=4)


def test_one_second_left_is_still_open() -> None:
    assert kms._time_left(NOW + 1, NOW) == {"seconds_left": 1, "time_left": "0h 0m"}


def test_a_version_whose_destroy_time_is_now_is_destroyed(version: Any) -> None:
    version("DESTROY_SCHEDULED", destroy_time=NOW)
    rec = kms.restore_version(_finding("kms_version_destroy_scheduled"), _ctx(), reenable=True)
    assert rec.outcome is Outcome.FAILED and rec.reason.endswith("nothing can be restored")
    assert rec.finding == _finding("kms_version_destroy_scheduled") and rec.before["state"] == "DESTROY_SCHEDULED"


def test_restore_records_name_their_finding(version: Any) -> None:
    f = _finding("kms_version_destroy_scheduled")
    version("ENABLED")
    assert kms.restore_version(f, _ctx(), reenable=True).finding == f
    version("PENDING_IMPORT")
    rec = kms.restore_version(f, _ctx(), reenable=True)
    assert rec.finding == f and rec.before == {"name": V1, "state": "PENDING_IMPORT"}


def _facts(**kw: Any) -> dict[str, Any]:
    return kms.version_facts(_finding("kms_version_destroy_scheduled"), _ctx(), find_dependents=False, max_services=10, **kw)


def test_version_facts_of_a_scheduled_version_say_how_long_is_left(version: Any) -> None:
    version("DESTROY_SCHEDULED", destroy_time=NOW + 7200 + 60)
    assert _facts(destroy_time="2027-01-01T00:00:00Z") == {
        "key": KEY, "version": "1", "state_now": "DESTROY_SCHEDULED", "destroy_time": "2027-01-15T10:01:00Z",
        "seconds_left": 7260, "time_left": "2h 1m"}  # the live destroy time wins over the event's


def test_version_facts_of_a_destroyed_version_say_when(version: Any) -> None:
    version("DESTROYED", destroy_time=NOW - 100, destroyed_at=NOW - 50)
    assert _facts()["destroyed_at"] == "2027-01-15T07:59:10Z"
    version("DESTROYED", destroy_time=NOW - 100)
    assert _facts()["destroyed_at"] == "2027-01-15T07:58:20Z"
    version("DESTROYED")
    assert _facts() == {"key": KEY, "version": "1", "state_now": "DESTROYED", "destroyed_at": "unknown"}


def test_version_facts_of_a_version_restored_since_keep_the_events_time_but_no_window(version: Any) -> None:
    version("ENABLED")
    assert _facts(destroy_time="2027-01-20T00:00:00Z") == {
        "key": KEY, "version": "1", "state_now": "ENABLED", "destroy_time_in_event": "2027-01-20T00:00:00Z"}
    assert _facts() == {"key": KEY, "version": "1", "state_now": "ENABLED"}


def test_version_facts_when_the_version_cannot_be_read_keep_the_events_window(monkeypatch: pytest.MonkeyPatch) -> None:
    class Denied:
        def get_crypto_key_version(self, **kw: Any) -> Any:
            raise gexc.PermissionDenied("cloudkms.cryptoKeyVersions.get denied")

    monkeypatch.setattr(kms, "_kms", Denied)
    assert _facts(destroy_time="2027-01-15T09:00:00Z") == {
        "key": KEY, "version": "1", "state_error": "PermissionDenied: cloudkms.cryptoKeyVersions.get denied",
        "destroy_time": "2027-01-15T09:00:00Z", "seconds_left": 3600, "time_left": "1h 0m"}
    assert "seconds_left" not in _facts(destroy_time="not a time")
