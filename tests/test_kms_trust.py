"""What a KMS restore may put back (issue 14, finding 4): pure judgements, and the version's
history read through the real google-cloud-logging client from the stand-in."""

from __future__ import annotations

import pytest

from infra.local import scenario as S
from shared.audit_confirm import history
from shared.event import parse
from shared.kms_trust import agent_project, never_grants, removed_by, restorable, state_before_destroy

ROLE = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
OTHER_STORAGE_AGENT = "serviceAccount:service-999999999999@gs-project-accounts.iam.gserviceaccount.com"


@pytest.mark.parametrize("member,number", [
    (S.AGENT, S.PNUM),
    ("serviceAccount:service-123@gs-project-accounts.iam.gserviceaccount.com", "123"),
    ("serviceAccount:service-123@attacker-project.iam.gserviceaccount.com", None),  # a name anyone can take
    ("user:service-123@gcp-sa-x.iam.gserviceaccount.com", None),
    ("serviceAccount:123-compute@developer.gserviceaccount.com", None),  # a default account, not an agent
])
def test_only_google_owned_agent_domains_are_agents(member: str, number: str | None) -> None:
    assert agent_project(member) == (str(number) if number else None)


def test_another_projects_agent_is_not_put_back() -> None:
    assert restorable(OTHER_STORAGE_AGENT, trusted_projects=[str(S.PNUM)]) == "its project 999999999999 is not in trusted_projects"
    assert restorable(S.AGENT, trusted_projects=[str(S.PNUM)]) is None
    assert restorable("user:alice@example.com", trusted_projects=[str(S.PNUM)]) == "not a Google service agent"
    assert restorable("user:alice@example.com", trusted_projects=[], required=["user:alice@example.com"]) is None


def test_a_binding_under_an_always_false_condition_counts_as_removed() -> None:
    assert never_grants({"expression": "false", "title": "x"}) and never_grants({"expression": " 1 == 2 "})
    assert not never_grants({"expression": 'request.time < timestamp("2099-01-01T00:00:00Z")'}) and not never_grants(None)
    entry = S.kms_set_iam(S.KEY, ROLE, S.AGENT, "ADD")
    entry["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"][0]["condition"] = {"expression": "false", "title": "x"}
    assert removed_by(parse(entry), ROLE) == {S.AGENT}
    assert removed_by(parse(S.kms_set_iam(S.KEY, ROLE, S.AGENT, "ADD")), ROLE) == set()


@pytest.mark.integration
def test_the_state_before_a_destroy_comes_from_cloud_loggings_history(standin) -> None:
    disabled = S.kms_update_version("DISABLED")
    destroy = S.kms_destroy("2099-01-01T00:00:00Z")
    standin.admin.log_entries([disabled, destroy])
    entries = history(S.P, S.VERSION, until=destroy["timestamp"])
    assert [e.method for e in entries] == ["DestroyCryptoKeyVersion", "UpdateCryptoKeyVersion"]
    state, why = state_before_destroy(entries, S.VERSION)
    assert state == "DISABLED" and disabled["insertId"] in why


@pytest.mark.integration
def test_no_history_means_no_evidence_of_enabled(standin) -> None:
    destroy = S.kms_destroy("2099-01-01T00:00:00Z")
    standin.admin.log_entries([destroy])
    state, why = state_before_destroy(history(S.P, S.VERSION, until=destroy["timestamp"]), S.VERSION)
    assert state is None and "no state change" in why
