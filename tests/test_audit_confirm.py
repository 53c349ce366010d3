"""Confirming an audit entry in Cloud Logging (issue 14, finding 3): google-cloud-logging's real
HTTP client against the stand-in's `entries.list`, over entries handed to it as a sink's source."""

from __future__ import annotations

import copy

import pytest

from infra.local import scenario
from infra.local.standin.logging_v2_entries import FilterError, compile_filter
from shared.audit_confirm import Unconfirmed, confirm, query
from shared.event import parse

pytestmark = pytest.mark.integration


def test_an_entry_cloud_logging_holds_is_confirmed_and_read_from_there(standin) -> None:
    entry = scenario.kms_set_iam(scenario.KEY, "roles/cloudkms.cryptoKeyEncrypterDecrypter", scenario.AGENT, "REMOVE")
    standin.admin.log_entries([entry])
    held = confirm(parse(entry))
    assert held.insert_id == entry["insertId"] and held.method == "SetIamPolicy"
    (call,) = [r for r in standin.admin.requests() if r["path"] == "/v2/entries:list"]
    assert call["method"] == "POST" and 'insertId=\\"' + entry["insertId"] in call["body"]


def test_an_entry_only_delivered_is_not_confirmed(standin) -> None:
    entry = scenario.kms_set_iam(scenario.KEY, "roles/cloudkms.cryptoKeyEncrypterDecrypter", scenario.AGENT, "REMOVE")
    with pytest.raises(Unconfirmed, match="no Admin Activity entry"):
        confirm(parse(entry))


def test_a_delivered_entry_that_differs_from_cloud_loggings_is_not_confirmed(standin) -> None:
    real = scenario.kms_set_iam(scenario.KEY, "roles/cloudkms.cryptoKeyEncrypterDecrypter", scenario.AGENT, "ADD")
    standin.admin.log_entries([real])
    forged = copy.deepcopy(real)
    forged["protoPayload"]["authenticationInfo"]["principalEmail"] = "someone-else@example.com"
    with pytest.raises(Unconfirmed, match="does not match"):
        confirm(parse(forged))
    other_log = copy.deepcopy(real)
    other_log["logName"] = other_log["logName"].replace("activity", "data_access")
    standin.admin.reset()
    standin.admin.log_entries([other_log])
    with pytest.raises(Unconfirmed):
        confirm(parse(real))


@pytest.mark.parametrize("field,value", [("insertId", 'x" OR insertId!="'), ("timestamp", "yesterday")])
def test_hostile_values_never_reach_the_filter(field: str, value: str) -> None:
    entry = scenario.kms_set_iam(scenario.KEY, "roles/cloudkms.cryptoKeyEncrypterDecrypter", scenario.AGENT, "REMOVE")
    entry[field] = value
    with pytest.raises(Unconfirmed):
        query(parse(entry))


def test_the_stand_in_refuses_filters_it_does_not_evaluate() -> None:
    with pytest.raises(FilterError):
        compile_filter('insertId="a" OR insertId="b"')
    match = compile_filter('log_id("cloudaudit.googleapis.com/activity") AND insertId="a"')
    assert match({"insertId": "a", "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity"})
    assert not match({"insertId": "a", "logName": "projects/p/logs/x-cloudaudit.googleapis.com%2Factivity"})
