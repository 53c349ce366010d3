"""shared.views.keyposture on its own: hand-written CreateCryptoKey / UpdateCryptoKey /
UpdateCryptoKeyPrimaryVersion entries, live reads and asset records in, the key's posture out
(expected values written by hand, not computed by the code under test). Field names from
cloudkms.v1.json (CryptoKey, CryptoKeyVersionTemplate, CryptoKeyVersion)."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from dataclasses import replace
from typing import Any

from google.cloud import kms_v1

from shared.event import AuditEvent
from shared.views import keyposture as kp
from shared.views.keyposture import KeyPostureView

RING = "projects/p1/locations/us/keyRings/ring"
KEY = f"{RING}/cryptoKeys/k1"
JOB = f"{RING}/importJobs/j"
PRIMARY = f"{KEY}/cryptoKeyVersions/2"
AT = "2027-01-15T08:00:00Z"
METHOD = "google.cloud.kms.v1.KeyManagementService."
ALL = frozenset({"rotation", "destroy_scheduled", "protection_level"})


def _event(method: str, request: Any = None, response: Any = None, resource_name: str = "") -> AuditEvent:
    return AuditEvent(
        service="cloudkms.googleapis.com", method=METHOD + method, resource_name=resource_name, project="p1",
        location="us", principal="alice@example.com", insert_id="i-1", timestamp=AT, log_kind="activity",
        status_code=0, status_message="", resource_type="cloudkms_cryptokey",
        request=request if request is not None else {}, response=response if response is not None else {},
    )


def _posture(*, as_of: str = AT, rotation: int | None = None, next_time: str = "", destroy: int | None = None,
             level: str = "", primary: str = "", primary_level: str = "", imported: bool = False,
             known: frozenset[str] = ALL) -> KeyPostureView:
    return KeyPostureView(name=KEY, project="p1", location="us", as_of=as_of, rotation_period_seconds=rotation,
                          next_rotation_time=next_time, destroy_scheduled_seconds=destroy, protection_level=level,
                          primary=primary, primary_protection_level=primary_level, primary_imported=imported,
                          known=known)


FULL_KEY = {
    "name": KEY, "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "7776000s", "nextRotationTime": "2027-03-01T00:00:00Z",
    "destroyScheduledDuration": "2592000s", "versionTemplate": {"protectionLevel": "HSM", "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"},
    "primary": {"name": PRIMARY, "state": "ENABLED", "protectionLevel": "HSM"},
}
FULL = _posture(rotation=7776000, next_time="2027-03-01T00:00:00Z", destroy=2592000, level="HSM", primary=PRIMARY,
                primary_level="HSM", known=ALL | {"primary"})


def _near_now(stamp: str) -> bool:
    when = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 60


# ---------------------------------------------------------------------------
# Protection levels.


def test_a_protection_level_as_a_name_or_a_number() -> None:
    assert kp._protection("EXTERNAL_VPC") == "EXTERNAL_VPC"
    assert kp._protection(2) == "HSM"
    assert kp._protection(9) == "UNKNOWN_9"


def test_what_is_not_a_protection_level_is_empty() -> None:
    assert kp._protection(None) == ""
    assert kp._protection(True) == ""
    assert kp._protection(["HSM"]) == ""


# ---------------------------------------------------------------------------
# The view.


def test_a_whole_key_states_every_field() -> None:
    assert kp._view(KEY, FULL_KEY, AT, None) == FULL


def test_a_key_without_a_primary_does_not_state_one() -> None:
    body = {"rotationPeriod": "86400s", "versionTemplate": {"protectionLevel": 1}}
    assert kp._view(KEY, body, AT, None) == _posture(rotation=86400, level="SOFTWARE")


def test_an_imported_primary_by_its_import_job_or_its_import_time() -> None:
    by_job = {"primary": {"name": PRIMARY, "protectionLevel": "HSM", "importJob": JOB}}
    by_time = {"primary": {"name": PRIMARY, "protectionLevel": 3, "importTime": "2027-01-01T00:00:00Z"}}
    generated = {"primary": {"name": PRIMARY, "protectionLevel": "SOFTWARE", "importJob": ""}}
    assert kp._view(KEY, by_job, AT, None) == _posture(primary=PRIMARY, primary_level="HSM", imported=True,
                                                       known=ALL | {"primary"})
    assert kp._view(KEY, by_time, AT, None) == _posture(primary=PRIMARY, primary_level="EXTERNAL", imported=True,
                                                        known=ALL | {"primary"})
    assert kp._view(KEY, generated, AT, None) == _posture(primary=PRIMARY, primary_level="SOFTWARE",
                                                          known=ALL | {"primary"})


def test_known_keeps_only_the_fields_named_and_the_primary_when_the_body_has_one() -> None:
    assert kp._view(KEY, FULL_KEY, AT, frozenset({"rotation"})).known == frozenset({"rotation", "primary"})
    body = {"destroyScheduledDuration": "86400s"}
    assert kp._view(KEY, body, AT, frozenset({"destroy_scheduled", "primary"})) == _posture(
        destroy=86400, known=frozenset({"destroy_scheduled"}))
    assert kp._view(KEY, body, AT, frozenset()) == _posture(destroy=86400, known=frozenset())


def test_a_name_that_is_not_a_key_has_no_posture() -> None:
    assert kp._view("projects/p1/locations/us/keyRings/ring", FULL_KEY, AT, None) is None
    assert kp._view(PRIMARY, FULL_KEY, AT, None) is None
    assert kp._view("projects/p1/topics/t", FULL_KEY, AT, None) is None


def test_now_is_utc_whatever_the_machine_time_zone() -> None:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "JST-9"  # POSIX: nine hours ahead of UTC
    time.tzset()
    try:
        stamp = kp._now()
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert _near_now(stamp)


# ---------------------------------------------------------------------------
# Entries.


def test_a_primary_version_entry_is_located_by_its_request_name_then_its_resource_name() -> None:
    assert kp.locate(_event("UpdateCryptoKeyPrimaryVersion", {"name": KEY, "cryptoKeyVersionId": "2"},
                            resource_name="x")) == KEY
    assert kp.locate(_event("UpdateCryptoKeyPrimaryVersion", {"cryptoKeyVersionId": "2"}, resource_name=KEY)) == KEY
    assert kp.locate(_event("UpdateCryptoKeyPrimaryVersion", {"cryptoKeyVersionId": "2"})) is None


def test_other_key_entries_are_located_as_keys_are() -> None:
    assert kp.locate(_event("CreateCryptoKey", {"parent": RING, "cryptoKeyId": "k1", "name": "x"})) == KEY
    assert kp.locate(_event("UpdateCryptoKey", {"cryptoKey": {"name": KEY}, "name": "x"})) == KEY


def test_a_primary_version_entry_states_only_the_primary_from_its_response() -> None:
    event = _event("UpdateCryptoKeyPrimaryVersion", {"name": KEY, "cryptoKeyVersionId": "2"}, FULL_KEY)
    assert kp.from_entry(event, KEY) == _posture(
        rotation=7776000, next_time="2027-03-01T00:00:00Z", destroy=2592000, level="HSM", primary=PRIMARY,
        primary_level="HSM", known=frozenset({"primary"}))


def test_a_primary_version_entry_without_a_response_has_no_posture() -> None:
    assert kp.from_entry(_event("UpdateCryptoKeyPrimaryVersion", {"name": KEY, "cryptoKeyVersionId": "2"}), KEY) is None


def test_a_create_entry_states_every_field_whatever_its_mask() -> None:
    event = _event("CreateCryptoKey", {"parent": RING, "cryptoKeyId": "k1", "updateMask": "labels",
                                       "cryptoKey": {"destroyScheduledDuration": "86400s",
                                                     "versionTemplate": {"protectionLevel": "HSM"}}})
    assert kp.from_entry(event, KEY) == _posture(destroy=86400, level="HSM")


def test_an_update_entry_states_the_fields_its_mask_names_in_either_case() -> None:
    body = {"cryptoKey": {"name": KEY, "rotationPeriod": "86400s", "destroyScheduledDuration": "86400s",
                          "versionTemplate": {"protectionLevel": "SOFTWARE"}}}
    camel = _event("UpdateCryptoKey", body | {"updateMask": "rotationPeriod, versionTemplate.protectionLevel,labels"})
    snake = _event("UpdateCryptoKey", body | {"updateMask": {"paths": ["destroy_scheduled_duration", "next_rotation_time"]}})
    expected = _posture(rotation=86400, destroy=86400, level="SOFTWARE")
    assert kp.from_entry(camel, KEY) == replace(expected, known=frozenset({"rotation", "protection_level"}))
    assert kp.from_entry(snake, KEY) == replace(expected, known=frozenset({"destroy_scheduled", "rotation"}))


def test_an_update_entry_whose_mask_names_no_posture_field_states_none() -> None:
    event = _event("UpdateCryptoKey", {"updateMask": "labels", "cryptoKey": {"rotationPeriod": "86400s"}})
    assert kp.from_entry(event, KEY) == _posture(rotation=86400, known=frozenset())


def test_an_update_entry_without_a_mask_states_every_field() -> None:
    event = _event("UpdateCryptoKey", {"updateMask": " , ", "cryptoKey": {"rotationPeriod": "86400s"}})
    assert kp.from_entry(event, KEY) == _posture(rotation=86400)
    assert kp.from_entry(_event("UpdateCryptoKey", {"cryptoKey": {"rotationPeriod": "86400s"}}), KEY) == _posture(
        rotation=86400)


# ---------------------------------------------------------------------------
# Live reads and asset records.


def test_a_live_key_as_rest_json_is_as_of_now() -> None:
    view = kp.from_live(FULL_KEY)
    assert view is not None and _near_now(view.as_of)
    assert view == replace(FULL, as_of=view.as_of)


def test_a_live_key_as_a_client_object() -> None:
    key = kms_v1.CryptoKey(name=KEY, destroy_scheduled_duration={"seconds": 86400},
                           version_template={"protection_level": kms_v1.ProtectionLevel.EXTERNAL},
                           primary={"name": PRIMARY, "protection_level": kms_v1.ProtectionLevel.EXTERNAL,
                                    "import_job": JOB})
    view = kp.from_live(key)
    assert view is not None and _near_now(view.as_of)
    assert view == _posture(as_of=view.as_of, destroy=86400, level="EXTERNAL", primary=PRIMARY,
                            primary_level="EXTERNAL", imported=True, known=ALL | {"primary"})


def test_a_key_asset_record_is_as_of_its_update_time() -> None:
    record = {"name": f"//cloudkms.googleapis.com/{KEY}", "assetType": "cloudkms.googleapis.com/CryptoKey",
              "updateTime": "2027-01-10T00:00:00Z", "resource": {"data": FULL_KEY}}
    assert kp.from_asset(record) == replace(FULL, as_of="2027-01-10T00:00:00Z")


def test_a_key_asset_record_without_an_update_time_is_as_of_now() -> None:
    record = {"assetType": "cloudkms.googleapis.com/CryptoKey", "resource": {"data": {"name": KEY}}}
    view = kp.from_asset(record)
    assert view is not None and _near_now(view.as_of)
    assert view == _posture(as_of=view.as_of)


def test_a_key_asset_record_without_data_or_of_another_type_has_no_posture() -> None:
    assert kp.from_asset({"name": f"//cloudkms.googleapis.com/{KEY}", "assetType": "cloudkms.googleapis.com/CryptoKey",
                          "updateTime": AT}) is None
    assert kp.from_asset({"name": f"//cloudkms.googleapis.com/{KEY}", "assetType": "cloudkms.googleapis.com/KeyRing",
                          "updateTime": AT, "resource": {"data": FULL_KEY}}) is None

