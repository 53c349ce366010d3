"""Quarantine's pure parts (shared.actions.quarantine) on their own: what counts as drift since a
quarantine (release refuses over it), what release reports, and the record's strict reading.
tests/test_run_actions.py and tests/test_remediation_edges.py run quarantine and release end
to end against the stand-in; these pin each rule with exact expected values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.cloud import run_v2

from shared.actions.iam import Grant
from shared.actions.quarantine import (
    BadRecord,
    Drift,
    QuarantineRecord,
    ReleaseRefused,
    ReleaseResult,
    drift_of,
    label_value,
    still_violates,
)
from shared.model import Change

SVC = "projects/p1/locations/us-central1/services/api"
INVOKER = "roles/run.invoker"
WH = '{"expression":"request.time.getHours(\'UTC\') < 18","title":"work hours"}'


def _record(**kw: Any) -> QuarantineRecord:
    fields: dict[str, Any] = dict(
        rule="run_ingress_open", event="e1", at="2026-11-23T09:30:00Z", label="rampart-quarantine",
        prior_ingress="INGRESS_TRAFFIC_ALL", prior_invoker_iam_disabled=True, prior_label=None,
        set_ingress="INGRESS_TRAFFIC_INTERNAL_ONLY", removed=(Grant(INVOKER, "allUsers"),),
    )
    return QuarantineRecord(**(fields | kw))


def _svc(ingress: str = "INGRESS_TRAFFIC_INTERNAL_ONLY", invoker_off: bool = False) -> run_v2.Service:
    return run_v2.Service(name=SVC, ingress=ingress, invoker_iam_disabled=invoker_off)


def test_a_service_as_quarantine_left_it_has_no_drift() -> None:
    assert drift_of(_svc(), {"bindings": [{"role": INVOKER, "members": ["user:bob@example.com"]}]}, _record()) == []


def test_every_field_quarantine_set_is_checked_for_drift() -> None:
    policy = {"bindings": [{"role": INVOKER, "members": ["allUsers"]},
                           {"role": "roles/run.viewer", "members": ["allAuthenticatedUsers"]}]}
    drift = drift_of(_svc("INGRESS_TRAFFIC_ALL", invoker_off=True), policy, _record())
    assert [str(d) for d in drift] == [
        "ingress: quarantine left 'INGRESS_TRAFFIC_INTERNAL_ONLY', found 'INGRESS_TRAFFIC_ALL'",
        "invoker_iam_disabled: quarantine left False, found True",
        f"bindings[{INVOKER}].members: quarantine left 'without allUsers', found 'allUsers granted again'",
        "bindings[roles/run.viewer].members: quarantine left 'no public member', found 'allAuthenticatedUsers granted'",
    ]


def test_grants_release_itself_gave_back_are_not_drift() -> None:
    policy = {"bindings": [{"role": INVOKER, "members": ["allUsers"]}]}
    assert drift_of(_svc(), policy, _record(), ignore=[Grant(INVOKER, "allUsers")]) == []
    # a new public grant is drift even if it was in no record; one release gave back is not
    other = {"bindings": [{"role": INVOKER, "members": ["allAuthenticatedUsers"]}]}
    assert [d.found for d in drift_of(_svc(), other, _record())] == ["allAuthenticatedUsers granted"]
    assert drift_of(_svc(), other, _record(), ignore=[Grant(INVOKER, "allAuthenticatedUsers")]) == []


def test_a_conditional_public_grant_is_drift_under_its_condition() -> None:
    policy = {"bindings": [{"role": INVOKER, "members": ["allUsers"], "condition": json.loads(WH)}]}
    (d,) = drift_of(_svc(), policy, _record())
    assert d == Drift(f"bindings[{INVOKER} if work hours].members", "no public member", "allUsers granted")


def test_a_refused_release_lists_the_drift_and_the_way_forward() -> None:
    drift = [Drift("ingress", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_ALL")]
    err = ReleaseRefused(SVC, _record(), drift)
    assert str(err) == (
        f"refusing to release {SVC}: it changed since run_ingress_open quarantined it at 2026-11-23T09:30:00Z:\n"
        "  - ingress: quarantine left 'INGRESS_TRAFFIC_INTERNAL_ONLY', found 'INGRESS_TRAFFIC_ALL'\n"
        "Restoring the recorded state would overwrite those changes; re-run with --force to restore it anyway.")
    assert (err.name, err.record, err.drift) == (SVC, _record(), drift)
    two = ReleaseRefused(SVC, _record(), [*drift, Drift("invoker_iam_disabled", False, True)])
    assert str(two).splitlines()[1:3] == ["  - ingress: quarantine left 'INGRESS_TRAFFIC_INTERNAL_ONLY', found 'INGRESS_TRAFFIC_ALL'",
                                          "  - invoker_iam_disabled: quarantine left False, found True"]
    still = ReleaseRefused(SVC, _record(), [], still="it would still be open")
    assert str(still) == f"refusing to release {SVC}: it would still be open; or re-run with --force to release it anyway."


def test_a_release_result_reports_what_was_put_back() -> None:
    result = ReleaseResult(SVC, _record(), [Change("ingress", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_ALL")],
                           forced=True, drift=[Drift("invoker_iam_disabled", False, True)], attempts=2)
    assert result.to_dict() == {
        "service": SVC, "quarantined_by": "run_ingress_open", "quarantined_at": "2026-11-23T09:30:00Z", "event_id": "e1",
        "restored": [{"field": "ingress", "from": "INGRESS_TRAFFIC_INTERNAL_ONLY", "to": "INGRESS_TRAFFIC_ALL"}],
        "forced": True, "drift_overridden": ["invoker_iam_disabled: quarantine left False, found True"], "attempts": 2,
    }
    assert str(result).splitlines() == [
        f"released {SVC} (quarantined by run_ingress_open at 2026-11-23T09:30:00Z, event e1)",
        "  ingress: 'INGRESS_TRAFFIC_INTERNAL_ONLY' -> 'INGRESS_TRAFFIC_ALL'",
        "  forced over these changes made since the quarantine:",
        "    - invoker_iam_disabled: quarantine left False, found True",
    ]
    plain = ReleaseResult(SVC, _record())
    assert str(plain) == f"released {SVC} (quarantined by run_ingress_open at 2026-11-23T09:30:00Z, event e1)"
    assert plain.to_dict()["forced"] is False and plain.to_dict()["attempts"] == 0


def test_the_record_keeps_what_the_annotation_held_and_reads_back_the_same() -> None:
    rec = _record(prior_label="team-a", prior_annotation="someone's note", removed=(Grant(INVOKER, "allUsers", WH),
                                                                                    Grant(INVOKER, "allUsers", WH)))
    obj = json.loads(rec.to_json())
    assert obj["prior"] == {"ingress": "INGRESS_TRAFFIC_ALL", "invoker_iam_disabled": True, "label": "team-a",
                            "annotation": "someone's note"}
    assert obj["label"] == "rampart-quarantine" and obj["rule"] == "run_ingress_open" and obj["event"] == "e1"
    assert obj["removed"] == [{"role": INVOKER, "member": "allUsers", "condition": json.loads(WH)}]  # no repeats
    assert QuarantineRecord.parse(rec.to_json()) == rec
    assert "annotation" not in json.loads(_record().to_json())["prior"]


GOOD: dict[str, Any] = {"v": 1, "rule": "r", "event": "e", "at": "t", "label": "l",
                        "prior": {"ingress": "X", "invoker_iam_disabled": False}, "set": {"ingress": "Y"}}


@pytest.mark.parametrize(("doc", "why"), [
    ([1], 'expected an object with "v": 1, found \'[1]\''),
    ({**GOOD, "prior": "X"}, 'expected "prior" and "set" objects'),
    ({**GOOD, "set": None}, 'expected "prior" and "set" objects'),
    ({**GOOD, "rule": 7}, "expected strings for rule"),
    ({**GOOD, "at": None, "label": 1}, "expected strings for at, label"),
    ({**GOOD, "prior": {"ingress": "X", "invoker_iam_disabled": False, "label": 3}},
     "expected prior.invoker_iam_disabled a boolean and prior.label a string or null"),
    ({**GOOD, "prior": {"ingress": "X", "invoker_iam_disabled": False, "annotation": {}}},
     "expected prior.annotation a string or absent"),
    ({**GOOD, "removed": {"role": "r"}}, 'expected "removed" to be a list, found dict'),
    ({**GOOD, "set": {}}, "missing key 'ingress'"),
])
def test_a_record_rampart_did_not_write_is_refused_with_the_reason(doc: Any, why: str) -> None:
    with pytest.raises(BadRecord) as err:
        QuarantineRecord.parse(json.dumps(doc))
    assert str(err.value) == why


def test_a_refused_record_quotes_at_most_80_characters_of_it() -> None:
    junk = "x" * 200
    with pytest.raises(BadRecord) as err:
        QuarantineRecord.parse(junk)
    assert str(err.value) == f"expected JSON, found {'x' * 80!r}"
    with pytest.raises(BadRecord) as err:
        QuarantineRecord.parse(json.dumps({"v": 2, "pad": junk}))
    assert str(err.value) == f"expected an object with \"v\": 1, found {json.dumps({'v': 2, 'pad': junk})[:80]!r}"


def test_a_record_with_a_null_label_and_no_removed_list_reads() -> None:
    rec = QuarantineRecord.parse(json.dumps({**GOOD, "prior": {**GOOD["prior"], "label": None}}))
    assert rec.prior_label is None and rec.removed == () and rec.prior_invoker_iam_disabled is False


def test_label_values_are_lower_case_and_at_most_63_characters() -> None:
    assert label_value("Rule.X/1") == "rule-x-1"
    assert label_value("a" * 70) == "a" * 63


def test_release_is_refused_while_the_quarantining_rule_would_still_flag_the_service() -> None:
    default_sa = run_v2.Service(name=SVC, ingress="INGRESS_TRAFFIC_INTERNAL_ONLY")
    default_sa.template.service_account = "123-compute@developer.gserviceaccount.com"
    wrong = still_violates(_record(rule="run_default_service_account"), default_sa)
    assert wrong is not None and wrong.startswith("run_default_service_account would still flag it (")
    assert wrong.endswith("it would still run as a default service account: deploy it with a dedicated one first")
    own_sa = run_v2.Service(name=SVC, ingress="INGRESS_TRAFFIC_INTERNAL_ONLY")
    own_sa.template.service_account = "api@p1.iam.gserviceaccount.com"
    assert still_violates(_record(rule="run_default_service_account"), own_sa) is None
    assert still_violates(_record(rule="no_such_rule"), default_sa) is None  # a rule since removed: nothing to check
    open_ = run_v2.Service(name=SVC, ingress="INGRESS_TRAFFIC_ALL")
    hint = still_violates(_record(rule="run_ingress_open"), open_)
    assert hint is not None and hint.endswith(": fix that first")


def test_a_re_granted_conditional_grant_is_drift_under_its_condition() -> None:
    rec = _record(removed=(Grant(INVOKER, "allUsers", WH),))
    policy = {"bindings": [{"role": INVOKER, "members": ["allUsers"], "condition": json.loads(WH)}]}
    assert drift_of(_svc(), policy, rec) == [
        Drift(f"bindings[{INVOKER} if work hours].members", "without allUsers", "allUsers granted again")]


def test_release_checks_the_rule_with_the_params_of_the_policy_in_force(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = run_v2.Service(name=SVC, ingress="INGRESS_TRAFFIC_INTERNAL_ONLY")
    policy = tmp_path / "policy.yaml"
    policy.write_text('default_mode: "off"\napproved_regions: [us-central1]\n')
    monkeypatch.setenv("RAMPART_POLICY", str(policy))
    assert still_violates(_record(rule="run_unapproved_region"), svc) is None  # us-central1 is approved here
    monkeypatch.setenv("RAMPART_POLICY", str(tmp_path / "missing.yaml"))  # no readable policy: the rule's defaults
    wrong = still_violates(_record(rule="run_unapproved_region"), svc)
    assert wrong is not None and wrong.endswith("redeploy it in an approved region first")


# ---------------------------------------------------------------------------
# quarantine and release with the service and its policy held here (no stand-in).


class Held:
    """One service and its IAM policy as quarantine reads and writes them; writes check etags.
    `refuse` makes the next writes of "service" or "policy" answer a conflict with the etag unmoved."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, svc: run_v2.Service, policy: dict[str, Any]) -> None:
        from shared.actions import quarantine as q

        self.svc, self.policy = svc, {**policy, "etag": "p1"}
        self.svc.etag = "s1"
        self.refuse = ""
        self.timeouts: list[tuple[str, Any]] = []
        self.masks: list[list[str]] = []
        monkeypatch.setattr(q, "get_service", self.get_service)
        monkeypatch.setattr(q, "update_service", self.update_service)
        monkeypatch.setattr(q, "get_policy", self.get_policy)
        monkeypatch.setattr(q, "set_policy", self.set_policy)

    def get_service(self, name: str, timeout: float) -> run_v2.Service:
        self.timeouts.append(("get_service", timeout))
        return run_v2.Service(self.svc)

    def update_service(self, svc: run_v2.Service, budget: float, fields: Any = ()) -> run_v2.Service:
        from google.api_core import exceptions as gexc

        self.timeouts.append(("update_service", budget))
        self.masks.append(list(fields))
        if self.refuse == "service" or svc.etag != self.svc.etag:
            raise gexc.Conflict("refused")
        self.svc = run_v2.Service(svc)
        self.svc.etag += "+"
        return run_v2.Service(self.svc)

    def get_policy(self, name: str, timeout: float) -> dict[str, Any]:
        self.timeouts.append(("get_policy", timeout))
        return json.loads(json.dumps(self.policy))

    def set_policy(self, name: str, policy: dict[str, Any], timeout: float) -> dict[str, Any]:
        from google.api_core import exceptions as gexc

        self.timeouts.append(("set_policy", timeout))
        if self.refuse == "policy" or policy.get("etag") != self.policy["etag"]:
            raise gexc.Aborted("refused")
        self.policy = {**policy, "etag": self.policy["etag"] + "+"}
        return self.policy


def _open_service() -> run_v2.Service:
    svc = run_v2.Service(name=SVC, ingress="INGRESS_TRAFFIC_ALL", labels={"team": "a"})
    svc.template.service_account = "api@p1.iam.gserviceaccount.com"  # what the owner fixed before a release
    return svc


PUBLIC = {"bindings": [{"role": INVOKER, "members": ["allUsers", "user:bob@example.com"]}]}


def _quarantine(**kw: Any) -> Any:
    from shared.actions import ActionContext
    from shared.actions.quarantine import quarantine
    from shared.model import Action, Finding, Mode, Severity
    from shared.quarantine_store import MemoryRecords

    f = Finding(rule="run_default_service_account", severity=Severity.HIGH, title="t", resource=SVC, resource_type="run.service",
                project="p1", location="us-central1", principal="dev@example.com", action=Action.QUARANTINE, event_id="e1",
                method="m", timestamp="2026-01-01T00:00:00Z")
    records = kw.pop("records", None) or MemoryRecords()
    ctx = ActionContext(mode=Mode.ENFORCE, action=Action.QUARANTINE, clock=lambda: 1_800_000_000.0, records=records, **kw)
    return quarantine(f, ctx, violates=lambda svc, policy: True), records


@pytest.mark.parametrize(("refused", "call"), [("service", "update_service"), ("policy", "set_iam_policy")])
def test_a_quarantine_write_refused_with_its_etag_unmoved_fails_once_naming_the_call(
    monkeypatch: pytest.MonkeyPatch, refused: str, call: str,
) -> None:
    from shared.model import Outcome

    held = Held(monkeypatch, _open_service(), PUBLIC)
    held.refuse = refused
    rec, _ = _quarantine()
    assert rec.outcome is Outcome.FAILED and rec.attempts == 1
    assert rec.reason.startswith(f"{call} was refused as a conflict although the {refused} has not changed since it was read")
    assert [c for c, _ in held.timeouts].count("get_service") == 2  # read, wrote, read again: unmoved, stop
    assert rec.finding == _quarantine_finding() and rec.before["public_members"] == [{"role": INVOKER, "member": "allUsers"}]
    # the service write goes first: when the policy write is refused, the service changes happened and are recorded
    assert [c.field for c in rec.changes] == ([] if refused == "service" else
                                              ["ingress", "labels.rampart-quarantine", "annotations.rampart.dev/quarantine"])


def _released(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[Held, Any, Any]:
    from shared.actions.quarantine import release

    held = Held(monkeypatch, _open_service(), PUBLIC)
    rec, records = _quarantine()
    assert rec.outcome.value == "quarantined", rec.reason
    held.timeouts.clear()
    return held, records, lambda **more: release(SVC, records=records, **(kw | more))


def test_release_puts_back_what_quarantine_took_with_bounded_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    held, _, release = _released(monkeypatch)
    result = release()
    assert held.svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL and "rampart.dev/quarantine" not in held.svc.annotations
    assert "allUsers" in held.policy["bindings"][0]["members"]
    assert result.to_dict()["drift_overridden"] == [] and result.drift == [] and result.forced is False
    assert held.masks[-1] == ["annotations", "ingress", "labels"]  # release writes only what it puts back
    assert sorted(set(held.timeouts)) == [("get_policy", 30.0), ("get_service", 30.0), ("set_policy", 30.0),
                                          ("update_service", 60.0)]


def test_release_with_its_own_record_store_reads_the_record_there(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import quarantine_store
    from shared.quarantine_store import MemoryRecords

    quarantine_store.set_default(MemoryRecords())  # an empty default: the record is only in the store passed in
    try:
        held, _, release = _released(monkeypatch)
        release()
        assert "rampart.dev/quarantine" not in held.svc.annotations
    finally:
        quarantine_store.set_default(None)


def test_release_over_drift_is_refused_naming_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    held, _, release = _released(monkeypatch)
    held.svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    with pytest.raises(ReleaseRefused) as err:
        release()
    assert str(err.value).startswith(f"refusing to release {SVC}: it changed since run_default_service_account quarantined it at ")
    assert err.value.name == SVC


def test_release_of_an_annotation_rampart_did_not_write_says_to_check_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions.quarantine import ReleaseError

    held, _, release = _released(monkeypatch)
    held.svc.annotations["rampart.dev/quarantine"] = "q0000000000000000:" + "0" * 64
    with pytest.raises(ReleaseError) as err:
        release()
    assert str(err.value).startswith(f"refusing to release {SVC}: ")
    assert str(err.value).endswith("Rampart restores only a prior state it recorded itself; "
                                   "check the service by hand (its annotation may have been edited)")


def _someone_else_writes_before_each_update(held: Held, monkeypatch: pytest.MonkeyPatch,
                                            change: Any = lambda svc: svc.labels.update(by="someone")) -> None:
    """Every service update Rampart sends finds the service changed first: `change` (a label by
    default) applied to the live service, and a new etag."""
    real = held.update_service

    def raced(svc: run_v2.Service, budget: float, fields: Any = ()) -> run_v2.Service:
        change(held.svc)
        held.svc.etag += "*"
        return real(svc, budget, fields)

    monkeypatch.setattr("shared.actions.quarantine.update_service", raced)


def test_release_that_keeps_losing_races_gives_up_after_three_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions.quarantine import ReleaseError

    held, _, release = _released(monkeypatch)
    _someone_else_writes_before_each_update(held, monkeypatch)
    with pytest.raises(ReleaseError, match=f"^{SVC}: changed under us on each of 3 attempts; run release again$"):
        release()


def _prior_invoker_off_with_label() -> run_v2.Service:
    svc = _open_service()
    svc.invoker_iam_disabled = True
    svc.labels["rampart-quarantine"] = "keep-me"
    return svc


def test_release_reports_each_field_it_put_back_from_what_to_what(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions.quarantine import release

    held = Held(monkeypatch, _prior_invoker_off_with_label(), PUBLIC)
    _, records = _quarantine()
    marker = held.svc.annotations["rampart.dev/quarantine"]
    result = release(SVC, records=records)
    assert result.restored == [
        Change(f"bindings[{INVOKER}].members", ["user:bob@example.com"], ["allUsers", "user:bob@example.com"]),
        Change("ingress", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_ALL"),
        Change("invoker_iam_disabled", False, True),
        Change("labels.rampart-quarantine", "run_default_service_account", "keep-me"),
        Change("annotations.rampart.dev/quarantine", marker, None),
    ]
    assert held.svc.invoker_iam_disabled is True and held.svc.labels["rampart-quarantine"] == "keep-me"
    assert held.svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL and result.attempts == 1


def test_release_removes_the_label_quarantine_added(monkeypatch: pytest.MonkeyPatch) -> None:
    held, _, release = _released(monkeypatch)
    result = release()
    assert "rampart-quarantine" not in held.svc.labels and held.svc.labels["team"] == "a"
    assert Change("labels.rampart-quarantine", "run_default_service_account", None) in result.restored


@pytest.mark.parametrize(("refused", "call"), [("service", "update_service"), ("policy", "set_iam_policy")])
def test_a_release_write_refused_with_its_etag_unmoved_stops_and_says_why(
    monkeypatch: pytest.MonkeyPatch, refused: str, call: str,
) -> None:
    from shared.actions.quarantine import ReleaseError

    held, _, release = _released(monkeypatch)
    held.refuse = refused
    with pytest.raises(ReleaseError) as err:
        release()
    assert str(err.value).startswith(f"{SVC}: {call} was refused as a conflict although the {refused} has not changed")


def test_a_release_interrupted_after_the_policy_write_says_what_was_already_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.api_core import exceptions as gexc

    from shared.actions.quarantine import ReleaseError

    held, _, release = _released(monkeypatch)

    def denied(svc: run_v2.Service, budget: float, fields: Any = ()) -> run_v2.Service:
        raise gexc.PermissionDenied("Permission 'run.services.update' denied")

    monkeypatch.setattr("shared.actions.quarantine.update_service", denied)
    with pytest.raises(ReleaseError) as err:
        release()
    assert str(err.value) == (f"{SVC}: PermissionDenied: Permission 'run.services.update' denied; "
                              f"already restored: bindings[{INVOKER}].members")
    assert "allUsers" in held.policy["bindings"][0]["members"]


def test_a_release_failing_before_any_write_says_nothing_was_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.api_core import exceptions as gexc

    from shared.actions.quarantine import ReleaseError

    _held, _, release = _released(monkeypatch)

    def unavailable(name: str, policy: dict[str, Any], timeout: float) -> dict[str, Any]:
        raise gexc.ServiceUnavailable("try again")

    monkeypatch.setattr("shared.actions.quarantine.set_policy", unavailable)
    with pytest.raises(ReleaseError) as err:
        release()
    assert str(err.value) == f"{SVC}: ServiceUnavailable: try again; nothing was changed"


def test_a_release_of_a_service_gone_or_slow_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.api_core import exceptions as gexc

    from shared.actions import run
    from shared.actions.quarantine import ReleaseError

    _held, _, release = _released(monkeypatch)

    def slow(svc: run_v2.Service, budget: float, fields: Any = ()) -> run_v2.Service:
        raise run.OperationTimeout(f"operation did not finish within {budget:g}s")

    monkeypatch.setattr("shared.actions.quarantine.update_service", slow)
    with pytest.raises(ReleaseError) as err:
        release(operation_timeout=12.0)
    assert str(err.value) == f"{SVC}: operation did not finish within 12s; check the service, then run release again"

    def gone(name: str, timeout: float) -> run_v2.Service:
        raise gexc.NotFound("Service api not found")

    monkeypatch.setattr("shared.actions.quarantine.get_service", gone)
    with pytest.raises(ReleaseError, match=f"^{SVC}: not found \\(Service api not found\\)$"):
        release()


def test_a_release_the_rule_would_still_flag_is_refused_naming_service_rule_and_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    held, _, release = _released(monkeypatch)
    held.svc.template.service_account = "123-compute@developer.gserviceaccount.com"
    with pytest.raises(ReleaseRefused) as err:
        release()
    assert str(err.value).startswith(f"refusing to release {SVC}: run_default_service_account would still flag it (")
    assert str(err.value).endswith("deploy it with a dedicated one first; or re-run with --force to release it anyway.")
    assert err.value.drift == [] and err.value.record.rule == "run_default_service_account" and err.value.name == SVC


def test_a_dry_run_quarantine_reports_the_plan_and_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import ActionContext
    from shared.actions.quarantine import quarantine
    from shared.model import Action, Mode, Outcome
    from shared.quarantine_store import MemoryRecords

    held = Held(monkeypatch, _open_service(), PUBLIC)
    f = _quarantine_finding()
    ctx = ActionContext(mode=Mode.DRY_RUN, action=Action.QUARANTINE, records=MemoryRecords())
    rec = quarantine(f, ctx, violates=lambda svc, policy: True)
    assert rec.outcome is Outcome.DRY_RUN and rec.finding == f
    assert rec.before == {"ingress": "INGRESS_TRAFFIC_ALL", "invoker_iam_disabled": False,
                          "public_members": [{"role": INVOKER, "member": "allUsers"}]}
    assert rec.after["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and rec.after["public_members"] == []
    assert rec.after["label"] == {"rampart-quarantine": "run_default_service_account"}
    assert [c.field for c in rec.changes] == ["ingress", "labels.rampart-quarantine", "annotations.rampart.dev/quarantine",
                                              f"bindings[{INVOKER}].members"]
    assert [c for c, _ in held.timeouts if c in ("update_service", "set_policy")] == []


def _quarantine_finding() -> Any:
    from shared.model import Action, Finding, Severity

    return Finding(rule="run_default_service_account", severity=Severity.HIGH, title="t", resource=SVC,
                   resource_type="run.service", project="p1", location="us-central1", principal="dev@example.com",
                   action=Action.QUARANTINE, event_id="e1", method="m", timestamp="2026-01-01T00:00:00Z")


def test_a_service_that_no_longer_violates_is_not_quarantined(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import ActionContext
    from shared.actions.quarantine import quarantine
    from shared.model import Action, Mode, Outcome
    from shared.quarantine_store import MemoryRecords

    held = Held(monkeypatch, _open_service(), PUBLIC)
    f = _quarantine_finding()
    rec = quarantine(f, ActionContext(mode=Mode.ENFORCE, action=Action.QUARANTINE, records=MemoryRecords()),
                     violates=lambda svc, policy: False)
    assert rec.outcome is Outcome.ALREADY_COMPLIANT and rec.finding == f and rec.attempts == 0
    assert rec.reason == "live service no longer violates run_default_service_account"
    assert rec.before == rec.after == {"ingress": "INGRESS_TRAFFIC_ALL", "invoker_iam_disabled": False,
                                       "public_members": [{"role": INVOKER, "member": "allUsers"}]}
    assert held.svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL


def test_a_second_quarantine_finds_it_done_and_says_by_whom(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    Held(monkeypatch, _open_service(), PUBLIC)
    first, records = _quarantine()
    again, _ = _quarantine(records=records)
    assert again.outcome is Outcome.ALREADY_COMPLIANT and again.finding == first.finding
    assert again.reason == "already quarantined by run_default_service_account at 2027-01-15T08:00:00Z (event e1)"
    assert again.before == again.after and again.before["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"


def test_a_quarantine_whose_service_write_did_not_finish_says_it_may_be_half_done(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import run
    from shared.model import Outcome

    held = Held(monkeypatch, _open_service(), PUBLIC)

    def slow(svc: run_v2.Service, budget: float, fields: Any = ()) -> run_v2.Service:
        raise run.OperationTimeout(f"operation did not finish within {budget:g}s")

    monkeypatch.setattr("shared.actions.quarantine.update_service", slow)
    rec, _ = _quarantine()
    assert rec.outcome is Outcome.FAILED and rec.changes == [] and rec.attempts == 1 and rec.finding == _quarantine_finding()
    assert rec.reason == (f"operation did not finish within 60s; the quarantine may be half done: check {SVC} "
                          "(quarantining it again completes it)")
    assert rec.before["ingress"] == "INGRESS_TRAFFIC_ALL" and held.policy["bindings"][0]["members"][0] == "allUsers"


def test_a_quarantine_label_key_gcp_would_refuse_fails_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Mode, Outcome

    held = Held(monkeypatch, _open_service(), PUBLIC)
    rec, _ = _quarantine(quarantine_label="Rampart Quarantine")
    assert rec.outcome is Outcome.FAILED and rec.finding == _quarantine_finding() and rec.mode is Mode.ENFORCE
    assert rec.reason == "quarantine_label: expected a label key [a-z][a-z0-9_-]{0,62}, found 'Rampart Quarantine'"
    assert held.timeouts == []


def test_a_quarantine_reads_within_bounds_and_keeps_its_record_in_the_store_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import quarantine_store
    from shared.model import Outcome
    from shared.quarantine_store import MemoryRecords

    held = Held(monkeypatch, _open_service(), PUBLIC)
    default = MemoryRecords()
    quarantine_store.set_default(default)
    try:
        rec, records = _quarantine(operation_timeout=45.0)
    finally:
        quarantine_store.set_default(None)
    assert rec.outcome is Outcome.QUARANTINED
    assert sorted(set(held.timeouts)) == [("get_policy", 30.0), ("get_service", 30.0), ("set_policy", 30.0),
                                          ("update_service", 45.0)]
    marker = held.svc.annotations["rampart.dev/quarantine"]
    assert records.load(SVC, marker).record["rule"] == "run_default_service_account"
    with pytest.raises(quarantine_store.RecordError):
        default.load(SVC, marker)


def test_a_quarantine_records_every_change_and_keeps_what_was_there(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    svc = _prior_invoker_off_with_label()
    svc.annotations["rampart.dev/quarantine"] = "a note someone left"
    held = Held(monkeypatch, svc, PUBLIC)
    rec, records = _quarantine()
    assert rec.outcome is Outcome.QUARANTINED and rec.attempts == 1
    assert held.masks == [["annotations", "ingress", "invoker_iam_disabled", "labels"]]
    assert rec.reason == ("isolated by run_default_service_account; prior state kept in Rampart's quarantine records "
                          "(id on annotation rampart.dev/quarantine)")
    assert rec.undo == f"python main.py release {SVC}"
    marker = held.svc.annotations["rampart.dev/quarantine"]
    assert rec.changes == [
        Change("ingress", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY"),
        Change("invoker_iam_disabled", True, False),
        Change("labels.rampart-quarantine", "keep-me", "run_default_service_account"),
        Change("annotations.rampart.dev/quarantine", "a note someone left", marker),
        Change(f"bindings[{INVOKER}].members", ["allUsers", "user:bob@example.com"], ["user:bob@example.com"]),
    ]
    assert rec.before == {"ingress": "INGRESS_TRAFFIC_ALL", "invoker_iam_disabled": True,
                          "label": {"rampart-quarantine": "keep-me"}, "quarantine": "(an annotation Rampart did not write)",
                          "public_members": [{"role": INVOKER, "member": "allUsers"}]}
    assert rec.after["label"] == {"rampart-quarantine": "run_default_service_account"} and rec.after["public_members"] == []
    assert rec.after["quarantine"]["id"] == marker.split(":")[0] and held.svc.invoker_iam_disabled is False
    stored = QuarantineRecord.parse(json.dumps(records.load(SVC, marker).record))
    assert (stored.prior_ingress, stored.prior_invoker_iam_disabled, stored.prior_label, stored.prior_annotation,
            stored.set_ingress) == ("INGRESS_TRAFFIC_ALL", True, "keep-me", "a note someone left", "INGRESS_TRAFFIC_INTERNAL_ONLY")
    assert stored.removed == (Grant(INVOKER, "allUsers"),)


def test_a_service_closed_to_all_traffic_stays_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    svc = _open_service()
    svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_NONE
    held = Held(monkeypatch, svc, PUBLIC)
    rec, records = _quarantine()
    assert held.svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_NONE and "ingress" not in [c.field for c in rec.changes]
    stored = records.load(SVC, held.svc.annotations["rampart.dev/quarantine"]).record
    assert stored["set"]["ingress"] == "INGRESS_TRAFFIC_NONE"


def test_a_quarantined_service_opened_again_is_closed_again_under_the_same_record(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    held = Held(monkeypatch, _open_service(), PUBLIC)
    _, records = _quarantine()
    marker = held.svc.annotations["rampart.dev/quarantine"]
    held.svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    held.svc.etag = "s9"
    again, _ = _quarantine(records=records)
    assert again.outcome is Outcome.QUARANTINED
    assert again.changes == [Change("ingress", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY")]
    assert held.svc.annotations["rampart.dev/quarantine"] == marker  # the record that holds the prior state stays


def test_the_quarantine_gate_sees_the_live_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import ActionContext
    from shared.actions.quarantine import quarantine
    from shared.model import Action, Mode, Outcome
    from shared.quarantine_store import MemoryRecords

    Held(monkeypatch, _open_service(), PUBLIC)
    seen: list[Any] = []

    def violates(svc: run_v2.Service, policy: dict[str, Any]) -> bool:
        seen.append(policy)
        return True

    rec = quarantine(_quarantine_finding(), ActionContext(mode=Mode.ENFORCE, action=Action.QUARANTINE, records=MemoryRecords()),
                     violates=violates)
    assert rec.outcome is Outcome.QUARANTINED and seen[0]["bindings"] == PUBLIC["bindings"] and seen[0]["etag"] == "p1"


def test_a_service_write_race_with_no_public_grant_is_replanned(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    held = Held(monkeypatch, _open_service(), {"bindings": [{"role": INVOKER, "members": ["user:bob@example.com"]}]})
    real = held.update_service
    raced = {"n": 0}

    def once_raced(svc: run_v2.Service, budget: float, fields: Any = ()) -> run_v2.Service:
        if not raced["n"]:
            raced["n"] += 1
            held.svc.labels["by"] = "terraform"
            held.svc.etag += "*"
        return real(svc, budget, fields)

    monkeypatch.setattr("shared.actions.quarantine.update_service", once_raced)
    rec, _ = _quarantine()
    assert rec.outcome is Outcome.QUARANTINED and rec.attempts == 2 and held.svc.labels["by"] == "terraform"
    assert rec.reason.endswith(" after 1 conflicting write(s)")


def test_a_record_over_16_kib_is_refused_and_nothing_written(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    bindings = [{"role": f"roles/custom.r{i}", "members": ["allUsers"], "condition": {"title": "t" * 2000, "expression": "true"}}
                for i in range(10)]
    held = Held(monkeypatch, _open_service(), {"bindings": bindings})
    rec, _ = _quarantine()
    assert rec.outcome is Outcome.FAILED and rec.changes == []
    assert rec.reason.startswith("quarantine record of ") and rec.reason.endswith(" bytes is over the 16384-byte limit")
    assert int(rec.reason.split()[3]) > 16384
    assert [c for c, _ in held.timeouts if c in ("update_service", "set_policy")] == []


def test_a_quarantine_raced_by_someone_who_fixed_it_ends_compliant_with_what_they_left(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    held = Held(monkeypatch, _open_service(), {"bindings": []})
    _someone_else_writes_before_each_update(
        held, monkeypatch, lambda svc: setattr(svc, "ingress", run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER))
    from shared.actions import ActionContext
    from shared.actions.quarantine import quarantine
    from shared.model import Action, Mode
    from shared.quarantine_store import MemoryRecords

    rec = quarantine(_quarantine_finding(), ActionContext(mode=Mode.ENFORCE, action=Action.QUARANTINE, records=MemoryRecords()),
                     violates=lambda svc, policy: svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL)
    assert rec.outcome is Outcome.ALREADY_COMPLIANT and rec.attempts == 1
    assert rec.reason == "live service no longer violates run_default_service_account after 1 conflicting write(s)"
    assert rec.before["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"  # the last read, not the first


def test_a_quarantine_losing_every_race_is_redelivered_naming_rule_and_service(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import TransientError

    held = Held(monkeypatch, _open_service(), PUBLIC)
    _someone_else_writes_before_each_update(held, monkeypatch)
    with pytest.raises(TransientError) as err:
        _quarantine()
    assert str(err.value) == (f"run_default_service_account on {SVC}: the service or its IAM policy changed under us "
                              "3 time(s) in 3 attempt(s); a redelivery will read it again")


def test_a_service_quarantined_while_closed_to_all_is_closed_to_all_again(monkeypatch: pytest.MonkeyPatch) -> None:
    svc = _open_service()
    svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_NONE
    held = Held(monkeypatch, svc, PUBLIC)
    _, records = _quarantine()
    held.svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    held.svc.etag = "s9"
    _quarantine(records=records)
    assert held.svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_NONE  # what it was, not merely internal-only


def test_a_release_whose_policy_write_raced_still_gives_every_grant_back(monkeypatch: pytest.MonkeyPatch) -> None:
    held, _, release = _released(monkeypatch)
    real = held.set_policy
    raced = {"n": 0}

    def once_raced(name: str, policy: dict[str, Any], timeout: float) -> dict[str, Any]:
        if not raced["n"]:
            raced["n"] += 1
            held.policy["etag"] += "*"  # a concurrent write of something else
        return real(name, policy, timeout)

    monkeypatch.setattr("shared.actions.quarantine.set_policy", once_raced)
    result = release()
    assert "allUsers" in held.policy["bindings"][0]["members"] and result.attempts == 2


def test_a_forced_release_over_a_disabled_invoker_check_puts_back_what_was_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    held, _, release = _released(monkeypatch)
    held.svc.invoker_iam_disabled = True  # drift since the quarantine (prior: enabled)
    result = release(force=True)
    assert held.svc.invoker_iam_disabled is False
    assert Change("invoker_iam_disabled", True, False) in result.restored and result.forced


def test_an_interrupted_release_lists_every_field_already_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.api_core import exceptions as gexc

    from shared.actions.quarantine import ReleaseError, release

    two_public = {"bindings": [{"role": INVOKER, "members": ["allUsers"]}, {"role": "roles/run.viewer", "members": ["allUsers"]}]}
    Held(monkeypatch, _open_service(), two_public)
    _, records = _quarantine()

    def denied(svc: run_v2.Service, budget: float, fields: Any = ()) -> run_v2.Service:
        raise gexc.PermissionDenied("denied")

    monkeypatch.setattr("shared.actions.quarantine.update_service", denied)
    with pytest.raises(ReleaseError) as err:
        release(SVC, records=records)
    assert str(err.value).endswith(f"already restored: bindings[{INVOKER}].members, bindings[roles/run.viewer].members")


def test_a_record_of_exactly_16_kib_is_kept_one_byte_more_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    def bindings(pad: int) -> list[dict[str, Any]]:
        return [{"role": f"roles/custom.r{i}", "members": ["allUsers"],
                 "condition": {"title": "t" * (1500 + (pad if i == 0 else 0)), "expression": "true"}} for i in range(10)]

    def size(pad: int) -> int:  # the record quarantine will write for this policy (fixed clock, event e1)
        removed = tuple(Grant.of(b["role"], "allUsers", b["condition"]) for b in bindings(pad))
        rec = QuarantineRecord(rule="run_default_service_account", event="e1", at="2027-01-15T08:00:00Z",
                               label="rampart-quarantine", prior_ingress="INGRESS_TRAFFIC_ALL",
                               prior_invoker_iam_disabled=False, prior_label=None,
                               set_ingress="INGRESS_TRAFFIC_INTERNAL_ONLY", removed=removed)
        return len(rec.to_json().encode())

    pad = 16384 - size(0)
    assert size(pad) == 16384
    Held(monkeypatch, _open_service(), {"bindings": bindings(pad)})
    assert _quarantine()[0].outcome is Outcome.QUARANTINED
    Held(monkeypatch, _open_service(), {"bindings": bindings(pad + 1)})
    rec, _ = _quarantine()
    assert rec.outcome is Outcome.FAILED and rec.reason == "quarantine record of 16385 bytes is over the 16384-byte limit"


def test_an_unfinished_quarantine_keeps_the_writes_an_earlier_attempt_made(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import run
    from shared.model import Outcome

    held = Held(monkeypatch, _open_service(), PUBLIC)
    real_update, real_set = held.update_service, held.set_policy
    updates = {"n": 0}

    def update(svc: run_v2.Service, budget: float, fields: Any = ()) -> run_v2.Service:
        updates["n"] += 1
        if updates["n"] > 1:
            raise run.OperationTimeout(f"operation did not finish within {budget:g}s")
        return real_update(svc, budget, fields)

    def reopened_meanwhile(name: str, policy: dict[str, Any], timeout: float) -> dict[str, Any]:
        held.svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
        held.svc.etag += "*"
        held.policy["etag"] += "*"
        return real_set(name, policy, timeout)

    monkeypatch.setattr("shared.actions.quarantine.update_service", update)
    monkeypatch.setattr("shared.actions.quarantine.set_policy", reopened_meanwhile)
    rec, _ = _quarantine()
    assert rec.outcome is Outcome.FAILED and rec.attempts == 2
    assert [c.field for c in rec.changes] == ["ingress", "labels.rampart-quarantine", "annotations.rampart.dev/quarantine"]
    assert "the quarantine may be half done" in rec.reason


def test_a_re_quarantine_raced_by_someone_closing_it_says_already_quarantined_and_nothing_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.model import Outcome

    held = Held(monkeypatch, _open_service(), PUBLIC)
    _, records = _quarantine()
    held.svc.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
    held.svc.etag = "s9"
    _someone_else_writes_before_each_update(
        held, monkeypatch, lambda svc: setattr(svc, "ingress", run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY))
    rec, _ = _quarantine(records=records)
    assert rec.outcome is Outcome.ALREADY_COMPLIANT
    assert rec.reason == "already quarantined by run_default_service_account at 2027-01-15T08:00:00Z (event e1)"
