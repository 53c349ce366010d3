"""shared.views.kms on its own: hand-written entries, live reads and asset records in, the view's
fields out (expected values written by hand, not computed by the code under test). Field names
from cloudkms.v1.json (CryptoKey, CryptoKeyVersion, KeyRing); the audit entries' shape from the
corpus (kms/*.json)."""

from __future__ import annotations

from typing import Any

from google.cloud import kms_v1

from shared.event import AuditEvent
from shared.views import kms

RING = "projects/p1/locations/us/keyRings/ring"
KEY = f"{RING}/cryptoKeys/k1"
V3 = f"{KEY}/cryptoKeyVersions/3"
SERVICE = "cloudkms.googleapis.com"
METHOD = "google.cloud.kms.v1.KeyManagementService."


def _event(method: str, request: Any = None, response: Any = None, resource_name: str = "") -> AuditEvent:
    return AuditEvent(
        service=SERVICE, method=METHOD + method, resource_name=resource_name, project="p1", location="us",
        principal="alice@example.com", insert_id="i-1", timestamp="2027-01-15T08:00:00Z", log_kind="activity",
        status_code=0, status_message="", resource_type="cloudkms_cryptokey",
        request=request if request is not None else {}, response=response if response is not None else {},
    )


def _key(name: str = KEY, purpose: str = "ENCRYPT_DECRYPT", period: int | None = 7776000,
         next_time: str = "2027-03-01T00:00:00Z", known: frozenset[str] = frozenset(
             {"purpose", "rotation_period", "next_rotation_time"})) -> kms.KeyView:
    return kms.KeyView(name=name, project="p1", location="us", purpose=purpose, rotation_period_seconds=period,
                       next_rotation_time=next_time, known=known)


def _version(state: str, destroy_time: str = "", name: str = V3) -> kms.KeyVersionView:
    return kms.KeyVersionView(name=name, project="p1", location="us", key=KEY, version="3", state=state,
                              destroy_time=destroy_time)


# ---------------------------------------------------------------------------
# Update masks.


def test_mask_text_reads_a_fieldmask_string_as_it_is() -> None:
    assert kms.mask_text({"updateMask": "rotationPeriod,nextRotationTime"}) == "rotationPeriod,nextRotationTime"


def test_mask_text_joins_the_string_paths_of_the_json_object_form() -> None:
    assert kms.mask_text({"updateMask": {"paths": ["rotationPeriod", 7, "purpose"]}}) == "rotationPeriod,purpose"


def test_mask_text_of_a_missing_or_malformed_mask_is_empty() -> None:
    assert kms.mask_text({}) == ""
    assert kms.mask_text({"updateMask": {}}) == ""
    assert kms.mask_text({"updateMask": {"paths": "rotationPeriod"}}) == ""
    assert kms.mask_text({"updateMask": 5}) == ""


def test_mask_fields_names_the_view_fields_a_mask_states_and_none_without_a_mask() -> None:
    assert kms._mask_fields({"updateMask": "rotationPeriod, purpose ,labels"}) == frozenset({"rotation_period", "purpose"})
    assert kms._mask_fields({"updateMask": "labels"}) == frozenset()
    assert kms._mask_fields({}) is None


# ---------------------------------------------------------------------------
# Durations.


def test_duration_seconds_reads_the_json_string_form() -> None:
    assert kms.duration_seconds("7776000s") == 7776000
    assert kms.duration_seconds("1.5s") == 1
    assert kms.duration_seconds("-60s") == -60


def test_duration_seconds_reads_the_seconds_object_form() -> None:
    assert kms.duration_seconds({"seconds": "7776000"}) == 7776000
    assert kms.duration_seconds({"seconds": 86400, "nanos": 5}) == 86400


def test_duration_seconds_of_what_is_not_a_duration_is_none() -> None:
    assert kms.duration_seconds("7776000") is None  # no unit
    assert kms.duration_seconds("90S") is None  # the unit is a lower-case s
    assert kms.duration_seconds("abcs") is None
    assert kms.duration_seconds("1e400s") is None  # float inf
    assert kms.duration_seconds(7776000) is None  # a bare number is no Duration JSON
    assert kms.duration_seconds(None) is None
    assert kms.duration_seconds({}) is None
    assert kms.duration_seconds({"seconds": "many"}) is None
    assert kms.duration_seconds({"seconds": float("inf")}) is None


def test_duration_seconds_keeps_the_protobuf_range_ten_thousand_years_either_way() -> None:
    assert kms.duration_seconds("315576000000s") == 315_576_000_000
    assert kms.duration_seconds("-315576000000s") == -315_576_000_000
    assert kms.duration_seconds("315576000001s") is None
    assert kms.duration_seconds({"seconds": -315_576_000_001}) is None


# ---------------------------------------------------------------------------
# Key rings.


def test_a_create_key_ring_entry_locates_the_ring_from_parent_and_id() -> None:
    event = _event("CreateKeyRing", {"parent": "projects/p1/locations/us", "keyRingId": "ring"},
                   resource_name="projects/p1/locations/us")
    assert kms.locate_key_ring(event) == RING


def test_a_key_ring_entry_with_a_kms_resource_name_is_located_by_it() -> None:
    event = _event("CreateKeyRing", {"parent": "projects/p1/locations/us", "keyRingId": "other"}, resource_name=RING)
    assert kms.locate_key_ring(event) == RING


def test_a_key_ring_entry_without_parent_or_id_locates_nothing() -> None:
    assert kms.locate_key_ring(_event("CreateKeyRing", {"keyRingId": "ring"})) is None
    assert kms.locate_key_ring(_event("CreateKeyRing", {"parent": "projects/p1/locations/us"})) is None


def test_key_ring_of_a_ring_name_and_of_names_that_are_not_rings() -> None:
    assert kms.key_ring_of(RING) == kms.KeyRingView(RING, "p1", "us")
    assert kms.key_ring_of(KEY) is None
    assert kms.key_ring_of("projects/p1/buckets/b") is None


def test_a_key_ring_from_an_entry_a_live_read_and_an_asset_record() -> None:
    expected = kms.KeyRingView(RING, "p1", "us")
    assert kms.key_ring_from_entry(_event("CreateKeyRing"), RING) == expected
    assert kms.key_ring_from_live({"name": RING, "createTime": "2027-01-01T00:00:00Z"}) == expected
    assert kms.key_ring_from_live(kms_v1.KeyRing(name=RING)) == expected
    record = {"name": f"//cloudkms.googleapis.com/{RING}", "assetType": kms.KEY_RING_ASSET,
              "resource": {"data": {"name": RING}}}
    assert kms.key_ring_from_asset(record) == expected


def test_a_key_ring_asset_record_names_the_ring_by_its_full_name_or_its_data() -> None:
    expected = kms.KeyRingView(RING, "p1", "us")
    assert kms.key_ring_from_asset({"assetType": kms.KEY_RING_ASSET, "resource": {"data": {"name": RING}}}) == expected
    assert kms.key_ring_from_asset({"name": f"//cloudkms.googleapis.com/{RING}", "assetType": kms.KEY_RING_ASSET}) == expected


def test_a_record_of_another_asset_type_is_no_key_ring() -> None:
    assert kms.key_ring_from_asset({"name": f"//cloudkms.googleapis.com/{RING}", "assetType": kms.KEY_ASSET,
                                    "resource": {"data": {"name": RING}}}) is None


# ---------------------------------------------------------------------------
# Keys.


def test_a_create_key_entry_locates_the_key_from_parent_and_id() -> None:
    event = _event("CreateCryptoKey", {"parent": RING, "cryptoKeyId": "k1", "cryptoKey": {"name": "ignored"}},
                   resource_name=RING)
    assert kms.locate_key(event) == KEY


def test_an_update_key_entry_locates_the_key_in_its_body_then_by_its_resource_name() -> None:
    assert kms.locate_key(_event("UpdateCryptoKey", {"cryptoKey": {"name": KEY}}, resource_name="other")) == KEY
    assert kms.locate_key(_event("UpdateCryptoKey", {"cryptoKey": {}}, resource_name=KEY)) == KEY
    assert kms.locate_key(_event("UpdateCryptoKey", {"cryptoKey": {}})) is None


def test_a_create_key_entry_states_every_field_of_the_new_key() -> None:
    event = _event("CreateCryptoKey", {"parent": RING, "cryptoKeyId": "k1", "updateMask": "labels", "cryptoKey": {
        "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "7776000s", "nextRotationTime": "2027-03-01T00:00:00Z"}})
    assert kms.key_from_entry(event, KEY) == _key()


def test_a_create_key_entry_with_the_purpose_as_a_number_names_it() -> None:
    event = _event("CreateCryptoKey", {"cryptoKey": {"purpose": 5}})
    assert kms.key_from_entry(event, KEY) == _key(purpose="ASYMMETRIC_SIGN", period=None, next_time="")


def test_an_update_key_entry_states_only_the_fields_its_mask_names() -> None:
    event = _event("UpdateCryptoKey", {"updateMask": "rotationPeriod", "cryptoKey": {
        "name": KEY, "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "86400s", "nextRotationTime": "2027-03-01T00:00:00Z"}})
    assert kms.key_from_entry(event, KEY) == _key(period=86400, known=frozenset({"rotation_period"}))


def test_an_update_key_entry_without_a_mask_states_every_field_it_carries() -> None:
    event = _event("UpdateCryptoKey", {"cryptoKey": {"name": KEY, "rotationPeriod": "86400s"}})
    assert kms.key_from_entry(event, KEY) == _key(purpose="", period=86400, next_time="",
                                                  known=frozenset({"rotation_period", "next_rotation_time"}))


def test_a_key_entry_on_a_name_that_is_not_a_key_has_no_view() -> None:
    body = {"cryptoKey": {"purpose": "ENCRYPT_DECRYPT"}}
    assert kms.key_from_entry(_event("CreateCryptoKey", body), RING) is None
    assert kms.key_from_entry(_event("CreateCryptoKey", body), V3) is None
    assert kms.key_from_entry(_event("CreateCryptoKey", body), "projects/p1/topics/t") is None


def test_a_live_key_as_rest_json() -> None:
    live = {"name": KEY, "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "7776000s",
            "nextRotationTime": "2027-03-01T00:00:00Z", "primary": {"name": f"{KEY}/cryptoKeyVersions/1"}}
    assert kms.key_from_live(live) == _key()


def test_a_live_key_as_a_client_object_states_its_purpose_by_name_even_one_newer_than_the_table() -> None:
    live = kms_v1.CryptoKey(name=KEY, purpose=kms_v1.CryptoKey.CryptoKeyPurpose.KEY_ENCAPSULATION)
    assert kms.key_from_live(live) == _key(purpose="KEY_ENCAPSULATION", period=None, next_time="")


def test_a_live_key_client_object_with_rotation() -> None:
    live = kms_v1.CryptoKey(name=KEY, purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT,
                            rotation_period={"seconds": 7776000},
                            next_rotation_time={"seconds": 1_803_859_200})  # 2027-03-01T00:00:00Z
    assert kms.key_from_live(live) == _key()


def test_a_key_asset_record() -> None:
    record = {"name": f"//cloudkms.googleapis.com/{KEY}", "assetType": kms.KEY_ASSET, "resource": {"data": {
        "name": KEY, "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "7776000s", "nextRotationTime": "2027-03-01T00:00:00Z"}}}
    assert kms.key_from_asset(record) == _key()


def test_a_key_asset_record_without_data_or_of_another_type_has_no_view() -> None:
    assert kms.key_from_asset({"name": f"//cloudkms.googleapis.com/{KEY}", "assetType": kms.KEY_ASSET}) is None
    assert kms.key_from_asset({"name": f"//cloudkms.googleapis.com/{KEY}", "assetType": kms.VERSION_ASSET,
                               "resource": {"data": {"name": KEY, "purpose": "ENCRYPT_DECRYPT"}}}) is None


# ---------------------------------------------------------------------------
# Key versions.


def test_a_version_entry_locates_the_version_in_its_body_then_its_name_then_its_resource_name() -> None:
    assert kms.locate_version(_event("UpdateCryptoKeyVersion", {"cryptoKeyVersion": {"name": V3}, "name": "x"},
                                     resource_name="y")) == V3
    assert kms.locate_version(_event("DestroyCryptoKeyVersion", {"name": V3}, resource_name="y")) == V3
    assert kms.locate_version(_event("DestroyCryptoKeyVersion", {}, resource_name=V3)) == V3
    assert kms.locate_version(_event("DestroyCryptoKeyVersion", {})) is None


def test_a_destroy_entry_leaves_the_version_scheduled_with_its_destroy_time() -> None:
    event = _event("DestroyCryptoKeyVersion", {"name": V3}, {"name": V3, "destroyTime": "2027-02-14T08:00:00Z"})
    assert kms.version_from_entry(event, V3) == _version("DESTROY_SCHEDULED", "2027-02-14T08:00:00Z")


def test_a_destroy_entry_whose_response_states_the_state_reads_it_as_a_number_or_a_name() -> None:
    numbered = _event("DestroyCryptoKeyVersion", {"name": V3}, {"state": 3, "destroyTime": "2027-02-14T08:00:00Z"})
    assert kms.version_from_entry(numbered, V3) == _version("DESTROYED", "2027-02-14T08:00:00Z")
    named = _event("DestroyCryptoKeyVersion", {"name": V3}, {"state": "PENDING_EXTERNAL_DESTRUCTION"})
    assert kms.version_from_entry(named, V3) == _version("PENDING_EXTERNAL_DESTRUCTION")


def test_an_update_version_entry_without_a_mask_states_the_state_it_sets() -> None:
    event = _event("UpdateCryptoKeyVersion", {"cryptoKeyVersion": {"name": V3, "state": "DISABLED"}})
    assert kms.version_from_entry(event, V3) == _version("DISABLED")


def test_an_update_version_entry_whose_mask_names_the_state_states_it_as_a_name_or_number() -> None:
    event = _event("UpdateCryptoKeyVersion", {"updateMask": "state", "cryptoKeyVersion": {"name": V3, "state": 2}})
    assert kms.version_from_entry(event, V3) == _version("DISABLED")


def test_an_update_version_entry_whose_mask_leaves_the_state_out_states_none() -> None:
    event = _event("UpdateCryptoKeyVersion", {"updateMask": "labels", "cryptoKeyVersion": {"name": V3, "state": "DISABLED"}},
                   {"destroyTime": "2027-02-14T08:00:00Z"})
    assert kms.version_from_entry(event, V3) == _version("", "2027-02-14T08:00:00Z")


def test_a_version_entry_on_a_name_that_is_not_a_version_has_no_view() -> None:
    event = _event("DestroyCryptoKeyVersion", {"name": KEY})
    assert kms.version_from_entry(event, KEY) is None
    assert kms.version_from_entry(event, "projects/p1/topics/t") is None


def test_a_live_version_as_rest_json_and_as_a_client_object() -> None:
    json_form = {"name": V3, "state": "DESTROY_SCHEDULED", "destroyTime": "2027-02-14T08:00:00Z"}
    assert kms.version_from_live(json_form) == _version("DESTROY_SCHEDULED", "2027-02-14T08:00:00Z")
    obj = kms_v1.CryptoKeyVersion(name=V3, state=kms_v1.CryptoKeyVersion.CryptoKeyVersionState.DESTROY_SCHEDULED,
                                  destroy_time={"seconds": 1_802_592_000})  # 2027-02-14T08:00:00Z
    assert kms.version_from_live(obj) == _version("DESTROY_SCHEDULED", "2027-02-14T08:00:00Z")


def test_a_live_version_with_a_numbered_state() -> None:
    assert kms.version_from_live({"name": V3, "state": 1}) == _version("ENABLED")


def test_a_version_asset_record() -> None:
    name = f"//cloudkms.googleapis.com/{V3}"
    record = {"name": name, "assetType": kms.VERSION_ASSET,
              "resource": {"data": {"name": V3, "state": "DESTROYED", "destroyTime": "2027-02-14T08:00:00Z"}}}
    assert kms.version_from_asset(record) == _version("DESTROYED", "2027-02-14T08:00:00Z")
    numbered = {"assetType": kms.VERSION_ASSET, "resource": {"data": {"name": V3, "state": 2}}}
    assert kms.version_from_asset(numbered) == _version("DISABLED")


def test_a_version_asset_record_without_data_or_of_another_type_has_no_view() -> None:
    assert kms.version_from_asset({"name": f"//cloudkms.googleapis.com/{V3}", "assetType": kms.VERSION_ASSET}) is None
    assert kms.version_from_asset({"name": f"//cloudkms.googleapis.com/{V3}", "assetType": kms.KEY_ASSET,
                                   "resource": {"data": {"name": V3, "state": "ENABLED"}}}) is None
