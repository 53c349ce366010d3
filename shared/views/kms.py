"""Cloud KMS key rings, keys and key versions, from an audit entry, a live read (kms_v1
objects or their REST JSON) or an Asset Inventory record (whose `resource.data` is the
resource's REST JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list, pick_str
from shared.views import Kind
from shared.views.names import from_full_name, kms_name

KEY_RING_ASSET = "cloudkms.googleapis.com/KeyRing"
KEY_ASSET = "cloudkms.googleapis.com/CryptoKey"
VERSION_ASSET = "cloudkms.googleapis.com/CryptoKeyVersion"

# google.cloud.kms.v1 enums, for entries that serialize them as numbers.
VERSION_STATES = {
    0: "CRYPTO_KEY_VERSION_STATE_UNSPECIFIED", 5: "PENDING_GENERATION", 1: "ENABLED", 2: "DISABLED", 3: "DESTROYED",
    4: "DESTROY_SCHEDULED", 6: "PENDING_IMPORT", 7: "IMPORT_FAILED", 8: "GENERATION_FAILED",
    9: "PENDING_EXTERNAL_DESTRUCTION", 10: "EXTERNAL_DESTRUCTION_FAILED",
}
PURPOSES = {
    0: "CRYPTO_KEY_PURPOSE_UNSPECIFIED", 1: "ENCRYPT_DECRYPT", 5: "ASYMMETRIC_SIGN", 6: "ASYMMETRIC_DECRYPT",
    7: "RAW_ENCRYPT_DECRYPT", 9: "MAC",
}
# A protobuf Duration spans ±315,576,000,000 s (10,000 years); anything past it is not one.
MAX_DURATION_SECONDS = 315_576_000_000

# Update masks name fields in either case; the view's field names they state.
_MASK_FIELDS = {
    "rotationPeriod": "rotation_period", "rotation_period": "rotation_period",
    "rotation_schedule.rotation_period": "rotation_period",
    "nextRotationTime": "next_rotation_time", "next_rotation_time": "next_rotation_time",
    "purpose": "purpose", "state": "state",
}


@dataclass(frozen=True, slots=True)
class KeyRingView:
    name: str  # projects/P/locations/L/keyRings/R
    project: str
    location: str

    resource_type = "kms.keyRing"


@dataclass(frozen=True, slots=True)
class KeyView:
    """A CryptoKey. `known` names the fields the source stated: an UpdateCryptoKey entry states
    only those in its update mask; a live read or an asset record states them all."""

    name: str  # projects/P/locations/L/keyRings/R/cryptoKeys/K
    project: str
    location: str
    purpose: str  # ENCRYPT_DECRYPT, ASYMMETRIC_SIGN, ... ("" when not stated)
    rotation_period_seconds: int | None  # None: no automatic rotation
    next_rotation_time: str
    known: frozenset[str]

    resource_type = "kms.cryptoKey"


@dataclass(frozen=True, slots=True)
class KeyVersionView:
    """A CryptoKeyVersion. `state` is "" when the source does not say (an update whose mask
    leaves the state out)."""

    name: str  # .../cryptoKeys/K/cryptoKeyVersions/N
    project: str
    location: str
    key: str  # the key's name
    version: str  # N
    state: str  # ENABLED, DISABLED, DESTROY_SCHEDULED, DESTROYED, ...
    destroy_time: str  # RFC 3339, when scheduled or destroyed

    resource_type = "kms.cryptoKeyVersion"


# ---------------------------------------------------------------------------
# Small readers.


def mask_text(request: Any) -> str:
    """The request's updateMask as "a,b,c": a FieldMask string, or the `paths` of its JSON
    object form; "" when there is none or it is malformed."""
    mask = pick(request, "updateMask")
    if isinstance(mask, dict):
        paths = mask.get("paths")
        mask = ",".join(p for p in paths if isinstance(p, str)) if isinstance(paths, list) else ""
    return mask if isinstance(mask, str) else ""


def _mask_fields(request: Any) -> frozenset[str] | None:
    """The view fields an update mask names; None when the request has no mask (all stated)."""
    text = mask_text(request)
    if not text:
        return None
    return frozenset(_MASK_FIELDS[m.strip()] for m in text.split(",") if m.strip() in _MASK_FIELDS)


def duration_seconds(value: Any) -> int | None:
    """Seconds in a protobuf Duration as JSON ("7776000s", "1.5s") or a {seconds: N} dict;
    None when absent or not a Duration (out of range, infinite, not a number)."""
    if isinstance(value, Mapping):
        s = value.get("seconds")
        try:
            seconds = int(s) if s is not None else None
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            return None
    elif isinstance(value, str) and value.endswith("s"):
        try:
            seconds = int(float(value[:-1]))
        except (ValueError, OverflowError):  # "1e400s" is float inf
            return None
    else:
        return None
    return seconds if seconds is not None and abs(seconds) <= MAX_DURATION_SECONDS else None


def _enum(value: Any, by_int: Mapping[int, str]) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return by_int.get(value, f"UNKNOWN_{value}")
    if isinstance(value, str):
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return by_int.get(int(value), f"UNKNOWN_{value}")
        return value
    return ""


def _as_json(obj: Any) -> Mapping[str, Any]:
    """A kms_v1 message as its REST JSON; a mapping as itself."""
    if isinstance(obj, Mapping):
        return obj
    return type(obj).to_dict(obj, use_integers_for_enums=False, preserving_proto_field_name=False)


def _asset_data(record: Any, asset_type: str) -> tuple[str, Mapping[str, Any]] | None:
    """(name, data) of an Asset Inventory record of `asset_type`: a feed's `asset`
    (`resource.data`) or a SearchAllResources result (`versionedResources[].resource`)."""
    if pick_str(record, "assetType") != asset_type:
        return None
    data = pick_dict(record, "resource", "data")
    if not data:
        versions = [v for v in pick_list(record, "versionedResources") if pick_dict(v, "resource")]
        data = pick_dict(versions[0], "resource") if versions else {}
    name = from_full_name(pick_str(record, "name")) or pick_str(data, "name")
    return name, data


# ---------------------------------------------------------------------------
# Key rings.


def locate_key_ring(event: AuditEvent) -> str | None:
    if kms_name(event.resource_name):
        return event.resource_name
    parent, ring = pick_str(event.request, "parent"), pick_str(event.request, "keyRingId")
    return f"{parent}/keyRings/{ring}" if parent and ring else None


def key_ring_of(name: str) -> KeyRingView | None:
    k = kms_name(name)
    if k is None or k.key:
        return None
    return KeyRingView(name, k.project, k.location)


def key_ring_from_entry(event: AuditEvent, name: str) -> KeyRingView | None:
    return key_ring_of(name)


def key_ring_from_live(ring: Any) -> KeyRingView | None:
    return key_ring_of(pick_str(_as_json(ring), "name"))


def key_ring_from_asset(record: Any) -> KeyRingView | None:
    found = _asset_data(record, KEY_RING_ASSET)
    return key_ring_of(found[0]) if found else None


# ---------------------------------------------------------------------------
# Keys.


def locate_key(event: AuditEvent) -> str | None:
    if event.method.endswith("CreateCryptoKey"):
        return f"{pick_str(event.request, 'parent')}/cryptoKeys/{pick_str(event.request, 'cryptoKeyId')}"
    return pick_str(event.request, "cryptoKey", "name") or event.resource_name or None


def _key(name: str, body: Mapping[str, Any], known: frozenset[str] | None) -> KeyView | None:
    k = kms_name(name)
    if k is None or not k.key or k.version:
        return None
    purpose = _enum(pick(body, "purpose"), PURPOSES)
    stated = {"rotation_period", "next_rotation_time"} | ({"purpose"} if purpose else set())
    return KeyView(
        name=name, project=k.project, location=k.location, purpose=purpose,
        rotation_period_seconds=duration_seconds(pick(body, "rotationPeriod")),
        next_rotation_time=pick_str(body, "nextRotationTime"),
        known=frozenset(stated if known is None else stated & known),
    )


def key_from_entry(event: AuditEvent, name: str) -> KeyView | None:
    """The key a CreateCryptoKey request makes, or the fields an UpdateCryptoKey sets."""
    body = pick_dict(event.request, "cryptoKey")
    known = None if event.method.endswith("CreateCryptoKey") else _mask_fields(event.request)
    return _key(name, body, known)


def key_from_live(key: Any) -> KeyView | None:
    body = _as_json(key)
    return _key(pick_str(body, "name"), body, None)


def key_from_asset(record: Any) -> KeyView | None:
    found = _asset_data(record, KEY_ASSET)
    return _key(found[0], found[1], None) if found and found[1] else None


# ---------------------------------------------------------------------------
# Key versions.


def locate_version(event: AuditEvent) -> str | None:
    return (
        pick_str(event.request, "cryptoKeyVersion", "name") or pick_str(event.request, "name") or event.resource_name
    ) or None


def _version(name: str, state: str, destroy_time: str) -> KeyVersionView | None:
    k = kms_name(name)
    if k is None or not k.version:
        return None
    return KeyVersionView(name, k.project, k.location, k.key_name, k.version, state, destroy_time)


def version_from_entry(event: AuditEvent, name: str) -> KeyVersionView | None:
    """The state an UpdateCryptoKeyVersion sets (when its mask names the state), or the one a
    DestroyCryptoKeyVersion leaves (DESTROY_SCHEDULED, and its destroy time, from the response)."""
    destroy_time = pick_str(event.response, "destroyTime")
    if event.method.endswith("DestroyCryptoKeyVersion"):
        state = _enum(pick(event.response, "state"), VERSION_STATES) or "DESTROY_SCHEDULED"
        return _version(name, state, destroy_time)
    mask = _mask_fields(event.request)
    state = _enum(pick(event.request, "cryptoKeyVersion", "state"), VERSION_STATES)
    return _version(name, state if mask is None or "state" in mask else "", destroy_time)


def version_from_live(version: Any) -> KeyVersionView | None:
    body = _as_json(version)
    return _version(
        pick_str(body, "name"), _enum(pick(body, "state"), VERSION_STATES), pick_str(body, "destroyTime")
    )


def version_from_asset(record: Any) -> KeyVersionView | None:
    found = _asset_data(record, VERSION_ASSET)
    if not found or not found[1]:
        return None
    name, data = found
    return _version(name, _enum(pick(data, "state"), VERSION_STATES), pick_str(data, "destroyTime"))


KEY_RING: Kind[KeyRingView] = Kind(
    "kms.keyRing", (KEY_RING_ASSET,), locate_key_ring, key_ring_from_entry, key_ring_from_live, key_ring_from_asset
)
KEY: Kind[KeyView] = Kind("kms.cryptoKey", (KEY_ASSET,), locate_key, key_from_entry, key_from_live, key_from_asset)
KEY_VERSION: Kind[KeyVersionView] = Kind(
    "kms.cryptoKeyVersion", (VERSION_ASSET,), locate_version, version_from_entry, version_from_live, version_from_asset
)
