"""shared/views/names.py: canonical resource names from every source, with the expected parts
written out by hand (Cloud Run v1 `namespaces/P/services/S` and v2 names, KMS names)."""

from __future__ import annotations

from shared.views import names


def test_kms_name_splits_a_version_name_into_its_parts() -> None:
    parts = names.kms_name("projects/p1/locations/us/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3")
    assert parts == names.KmsName("p1", "us", "r", "k", "3")
    assert parts.resource_type == "kms.cryptoKeyVersion"
    assert parts.key_name == "projects/p1/locations/us/keyRings/r/cryptoKeys/k"
