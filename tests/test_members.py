"""The outsider test every IAM rule shares: who is inside is what the policy says, and nothing else."""

from __future__ import annotations

import pytest

from shared.members import Trust, outsider_reason, outsiders

TRUST = Trust(domains=("example.com",), projects=("phi-prod", "123456789012"))


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("allUsers", "public"),
        ("allAuthenticatedUsers", "public"),
        ("user:alice@example.com", None),
        ("user:Alice@Example.COM", None),
        ("group:sre@example.com", None),
        ("domain:example.com", None),
        ("user:alice@example.com?uid=123456", None),
        # Consumer accounts are outsiders even when someone lists their domain as trusted.
        ("user:collaborateur0013@gmail.com", "consumer_account"),
        ("user:someone@googlemail.com", "consumer_account"),
        ("domain:gmail.com", "consumer_account"),
        ("user:bob@evil.example", "untrusted_domain"),
        ("group:all@example.com.evil.example", "untrusted_domain"),
        ("domain:other.example", "untrusted_domain"),
        ("serviceAccount:app@phi-prod.iam.gserviceaccount.com", None),
        ("serviceAccount:phi-prod@appspot.gserviceaccount.com", None),
        ("serviceAccount:123456789012-compute@developer.gserviceaccount.com", None),
        ("serviceAccount:999999999999-compute@developer.gserviceaccount.com", "untrusted_project"),
        ("serviceAccount:app@attacker-proj.iam.gserviceaccount.com", "untrusted_project"),
        # A Google service agent is always inside; a look-alike in a customer project is not.
        ("serviceAccount:service-123@gcp-sa-cloudkms.iam.gserviceaccount.com", None),
        ("serviceAccount:service-123@gs-project-accounts.iam.gserviceaccount.com", None),
        ("serviceAccount:123@cloudservices.gserviceaccount.com", None),
        ("serviceAccount:service-123@attacker-proj.iam.gserviceaccount.com", "untrusted_project"),
        ("serviceAccount:alice@example.com", "untrusted_project"),
        ("principal://iam.googleapis.com/locations/global/workforcePools/p/subject/s", "federated_identity"),
        ("principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*", "federated_identity"),
        ("deleted:user:gone@example.com?uid=1", None),
        # Fail closed: a prefix IAM does not document, or no prefix at all.
        ("serviceAccountId:107881670363795595105", "unknown_prefix"),
        ("projectOwner:phi-prod", "unknown_prefix"),
        ("alice@example.com", "unknown_prefix"),
        ("user:", "unknown_prefix"),
        ("", "unknown_prefix"),
    ],
)
def test_outsider_reason(member: str, reason: str | None) -> None:
    assert outsider_reason(member, TRUST) == reason


def test_empty_trust_makes_every_person_an_outsider_but_not_service_agents() -> None:
    empty = Trust()
    assert outsider_reason("user:alice@example.com", empty) == "untrusted_domain"
    assert outsider_reason("serviceAccount:service-1@gcp-sa-cloudkms.iam.gserviceaccount.com", empty) is None


def test_outsiders_lists_pairs_with_reasons() -> None:
    pairs = [("roles/run.admin", "user:x@gmail.com"), ("roles/viewer", "user:a@example.com")]
    assert outsiders(pairs, TRUST) == [{"role": "roles/run.admin", "member": "user:x@gmail.com", "reason": "consumer_account"}]
