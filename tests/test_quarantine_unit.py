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
    ([1], '"v": 1'),
    ({**GOOD, "prior": "X"}, 'expected "prior" and "set" objects'),
    ({**GOOD, "set": None}, 'expected "prior" and "set" objects'),
    ({**GOOD, "rule": 7}, "expected strings for rule"),
    ({**GOOD, "at": None, "label": 1}, "expected strings for at, label"),
    ({**GOOD, "prior": {"ingress": "X", "invoker_iam_disabled": False, "label": 3}}, "prior.label a string or null"),
    ({**GOOD, "prior": {"ingress": "X", "invoker_iam_disabled": False, "annotation": {}}}, "prior.annotation a string"),
    ({**GOOD, "removed": {"role": "r"}}, 'expected "removed" to be a list, found dict'),
    ({**GOOD, "set": {}}, "missing key 'ingress'"),
])
def test_a_record_rampart_did_not_write_is_refused_with_the_reason(doc: Any, why: str) -> None:
    with pytest.raises(BadRecord) as err:
        QuarantineRecord.parse(json.dumps(doc))
    assert why in str(err.value)


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
