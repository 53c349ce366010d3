"""Cloud Key Management Service API v1 (cloudkms.googleapis.com): key rings, keys, versions, IAM.

Checked against the discovery document `cloudkms.v1.json` (google-api-python-client's
`googleapiclient/discovery_cache/documents/`): every route names its discovery method id.

    GET|POST .../keyRings, GET .../keyRings/R, GET|POST .../cryptoKeys, GET|PATCH .../cryptoKeys/K,
    POST .../cryptoKeys/K:updatePrimaryVersion, GET|POST .../cryptoKeyVersions,
    GET|PATCH .../cryptoKeyVersions/N (updateMask=state), POST .../cryptoKeyVersions/N:destroy|:restore,
    GET :getIamPolicy and POST :setIamPolicy|:testIamPermissions on key rings and crypto keys.

updateMask is required; state moves only ENABLED<->DISABLED (else 400 FAILED_PRECONDITION); destroy
sets DESTROY_SCHEDULED and destroyTime = now + the key's destroyScheduledDuration (30 days if unset);
restore (DESTROY_SCHEDULED only) gives DISABLED; once destroyTime passes the version reads DESTROYED.
A key's `primary` is the live primary version. Keys and versions have no etag.
"""

from __future__ import annotations

import re

from infra.local.standin import iam
from infra.local.standin.core import (
    SEG,
    Api,
    ApiError,
    Collection,
    Json,
    Response,
    Route,
    as_bool,
    bad,
    clone,
    del_path,
    enum,
    get_path,
    json_response,
    mask_paths,
    merge_patch,
    normalize_enums,
    not_found,
    page,
    parse_duration,
    parse_timestamp,
    precondition,
    rfc3339,
    seq,
    set_path,
)
from infra.local.standin.store import Store

KEY_RINGS = "keyRings"
CRYPTO_KEYS = "cryptoKeys"
VERSIONS = "cryptoKeyVersions"
PRIMARY = "kms.primary"  # crypto key name -> primary version name
NEXT_VERSION = "kms.nextVersion"  # crypto key name -> next version number

KMS_DEFAULT_DESTROY_SCHEDULED = "2592000s"  # 30 days, the documented default

# Enum tables, copied from the protos (google-cloud-kms 3.18.0); keys are JSON paths.
KMS_VERSION_STATE = seq(
    "CRYPTO_KEY_VERSION_STATE_UNSPECIFIED", "ENABLED", "DISABLED", "DESTROYED", "DESTROY_SCHEDULED",
    "PENDING_GENERATION", "PENDING_IMPORT", "IMPORT_FAILED", "GENERATION_FAILED",
    "PENDING_EXTERNAL_DESTRUCTION", "EXTERNAL_DESTRUCTION_FAILED",
)
KMS_PROTECTION_LEVEL = seq(
    "PROTECTION_LEVEL_UNSPECIFIED", "SOFTWARE", "HSM", "EXTERNAL", "EXTERNAL_VPC", "HSM_SINGLE_TENANT"
)
KMS_ALGORITHM = enum(
    (0, "CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED"), (1, "GOOGLE_SYMMETRIC_ENCRYPTION"),
    (2, "RSA_SIGN_PSS_2048_SHA256"), (3, "RSA_SIGN_PSS_3072_SHA256"), (4, "RSA_SIGN_PSS_4096_SHA256"),
    (5, "RSA_SIGN_PKCS1_2048_SHA256"), (6, "RSA_SIGN_PKCS1_3072_SHA256"),
    (7, "RSA_SIGN_PKCS1_4096_SHA256"), (8, "RSA_DECRYPT_OAEP_2048_SHA256"),
    (9, "RSA_DECRYPT_OAEP_3072_SHA256"), (10, "RSA_DECRYPT_OAEP_4096_SHA256"),
    (12, "EC_SIGN_P256_SHA256"), (13, "EC_SIGN_P384_SHA384"), (15, "RSA_SIGN_PSS_4096_SHA512"),
    (16, "RSA_SIGN_PKCS1_4096_SHA512"), (17, "RSA_DECRYPT_OAEP_4096_SHA512"),
    (18, "EXTERNAL_SYMMETRIC_ENCRYPTION"), (19, "AES_256_GCM"), (28, "RSA_SIGN_RAW_PKCS1_2048"),
    (29, "RSA_SIGN_RAW_PKCS1_3072"), (30, "RSA_SIGN_RAW_PKCS1_4096"), (31, "EC_SIGN_SECP256K1_SHA256"),
    (32, "HMAC_SHA256"), (33, "HMAC_SHA1"), (34, "HMAC_SHA384"), (35, "HMAC_SHA512"),
    (36, "HMAC_SHA224"), (37, "RSA_DECRYPT_OAEP_2048_SHA1"), (38, "RSA_DECRYPT_OAEP_3072_SHA1"),
    (39, "RSA_DECRYPT_OAEP_4096_SHA1"), (40, "EC_SIGN_ED25519"), (41, "AES_128_GCM"),
    (42, "AES_128_CBC"), (43, "AES_256_CBC"), (44, "AES_128_CTR"), (45, "AES_256_CTR"),
    (47, "ML_KEM_768"), (48, "ML_KEM_1024"), (56, "PQ_SIGN_ML_DSA_65"),
    (57, "PQ_SIGN_SLH_DSA_SHA2_128S"), (60, "PQ_SIGN_HASH_SLH_DSA_SHA2_128S_SHA256"), (63, "KEM_XWING"),
    (67, "PQ_SIGN_ML_DSA_65_EXTERNAL_MU"), (68, "PQ_SIGN_ML_DSA_44"), (69, "PQ_SIGN_ML_DSA_87"),
    (70, "PQ_SIGN_ML_DSA_44_EXTERNAL_MU"), (71, "PQ_SIGN_ML_DSA_87_EXTERNAL_MU"), (73, "AES_256_KWP"),
)
KMS_ATTESTATION_FORMAT = enum(
    (0, "ATTESTATION_FORMAT_UNSPECIFIED"), (3, "CAVIUM_V1_COMPRESSED"), (4, "CAVIUM_V2_COMPRESSED")
)
KMS_PURPOSE = enum(
    (0, "CRYPTO_KEY_PURPOSE_UNSPECIFIED"), (1, "ENCRYPT_DECRYPT"), (5, "ASYMMETRIC_SIGN"),
    (6, "ASYMMETRIC_DECRYPT"), (7, "RAW_ENCRYPT_DECRYPT"), (9, "MAC"), (10, "KEY_ENCAPSULATION"),
    (11, "AES_WRAPPING"),
)
KMS_ACCESS_REASON = seq(
    "REASON_UNSPECIFIED", "CUSTOMER_INITIATED_SUPPORT", "GOOGLE_INITIATED_SERVICE",
    "THIRD_PARTY_DATA_REQUEST", "GOOGLE_INITIATED_REVIEW", "CUSTOMER_INITIATED_ACCESS",
    "GOOGLE_INITIATED_SYSTEM_OPERATION", "REASON_NOT_EXPECTED", "MODIFIED_CUSTOMER_INITIATED_ACCESS",
    "MODIFIED_GOOGLE_INITIATED_SYSTEM_OPERATION", "GOOGLE_RESPONSE_TO_PRODUCTION_ALERT",
    "CUSTOMER_AUTHORIZED_WORKFLOW_SERVICING",
)
KMS_VERSION_ENUMS: dict[str, dict[int, str]] = {
    "state": KMS_VERSION_STATE,
    "protectionLevel": KMS_PROTECTION_LEVEL,
    "algorithm": KMS_ALGORITHM,
    "attestation.format": KMS_ATTESTATION_FORMAT,
}
KMS_KEY_ENUMS: dict[str, dict[int, str]] = {
    **{f"primary.{k}": v for k, v in KMS_VERSION_ENUMS.items()},
    "purpose": KMS_PURPOSE,
    "versionTemplate.protectionLevel": KMS_PROTECTION_LEVEL,
    "versionTemplate.algorithm": KMS_ALGORITHM,
    "keyAccessJustificationsPolicy.allowedAccessReasons": KMS_ACCESS_REASON,
}
KMS_KEY_MUTABLE = frozenset({"labels", "rotationPeriod", "nextRotationTime", "versionTemplate",
                             "keyAccessJustificationsPolicy"})
KMS_VERSION_MUTABLE = frozenset({"state", "externalProtectionLevelOptions"})

KEY_RING_RE = re.compile(rf"^projects/{SEG}/locations/{SEG}/keyRings/{SEG}$")
CRYPTO_KEY_RE = re.compile(rf"^(projects/{SEG}/locations/{SEG}/keyRings/{SEG})/cryptoKeys/{SEG}$")
VERSION_RE = re.compile(
    rf"^(projects/{SEG}/locations/{SEG}/keyRings/{SEG}/cryptoKeys/{SEG})/cryptoKeyVersions/(\d+)$"
)
KMS_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

def key_rings(store: Store) -> dict[str, Json]:
    return store.tables[KEY_RINGS]


def crypto_keys(store: Store) -> dict[str, Json]:
    return store.tables[CRYPTO_KEYS]


def versions(store: Store) -> dict[str, Json]:
    return store.tables[VERSIONS]


def put_key_ring(store: Store, ring: Json) -> None:
    name = ring["name"]
    ring.setdefault("createTime", store.now())
    key_rings(store)[name] = ring
    store.index(name.rsplit("/keyRings/", 1)[0], KEY_RINGS, name)


def put_crypto_key(store: Store, key: Json) -> None:
    name = key["name"]
    primary = key.pop("primary", None)
    key.setdefault("purpose", "ENCRYPT_DECRYPT")
    key.setdefault("createTime", store.now())
    key.setdefault("versionTemplate", {})
    key["versionTemplate"].setdefault("protectionLevel", "SOFTWARE")
    key["versionTemplate"].setdefault(
        "algorithm", "GOOGLE_SYMMETRIC_ENCRYPTION" if key["purpose"] == "ENCRYPT_DECRYPT"
        else "CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED")
    key.setdefault("destroyScheduledDuration", KMS_DEFAULT_DESTROY_SCHEDULED)
    crypto_keys(store)[name] = key
    if isinstance(primary, dict) and primary.get("name"):
        store.tables[PRIMARY][name] = primary["name"]
    elif key["purpose"] == "ENCRYPT_DECRYPT":
        store.tables[PRIMARY].setdefault(name, f"{name}/cryptoKeyVersions/1")
    store.tables[NEXT_VERSION].setdefault(name, 1)
    m = CRYPTO_KEY_RE.match(name)
    assert m is not None
    store.index(m.group(1), CRYPTO_KEYS, name)


def put_version(store: Store, version: Json) -> None:
    name = version["name"]
    m = VERSION_RE.match(name)
    assert m is not None
    key_name, number = m.group(1), int(m.group(2))
    key = crypto_keys(store)[key_name]
    now = store.now()
    version.setdefault("state", "ENABLED")
    version.setdefault("protectionLevel", key["versionTemplate"]["protectionLevel"])
    version.setdefault("algorithm", key["versionTemplate"]["algorithm"])
    version.setdefault("createTime", now)
    version.setdefault("generateTime", version["createTime"])
    if version["state"] == "DESTROY_SCHEDULED" and "destroyTime" not in version:
        version["destroyTime"] = destroy_time(store, key)
    versions(store)[name] = version
    nxt = store.tables[NEXT_VERSION]
    nxt[key_name] = max(nxt.get(key_name, 1), number + 1)
    store.index(key_name, VERSIONS, name)


def destroy_time(store: Store, key: Json) -> str:
    span = parse_duration(key.get("destroyScheduledDuration", KMS_DEFAULT_DESTROY_SCHEDULED),
                          "destroyScheduledDuration")
    return rfc3339(store.clock.now() + span)


def settle(store: Store, name: str) -> Json:
    """The version as of now: a DESTROY_SCHEDULED version past its destroyTime is DESTROYED."""
    v = versions(store)[name]
    if (v.get("state") == "DESTROY_SCHEDULED" and "destroyTime" in v
            and parse_timestamp(v["destroyTime"], "destroyTime") <= store.clock.now()):
        v["state"] = "DESTROYED"
        v["destroyEventTime"] = v["destroyTime"]
    return v


def key_view(store: Store, name: str) -> Json:
    view = dict(crypto_keys(store)[name])
    primary = store.tables[PRIMARY].get(name)
    if primary and primary in versions(store):
        view["primary"] = settle(store, primary)
    return view


def check_rotation(key: Json) -> None:
    if "rotationPeriod" in key:
        seconds = parse_duration(key["rotationPeriod"], "rotationPeriod")
        if not 86400 <= seconds <= 876000 * 3600:
            bad(f"rotation_period: expected between 1 day (86400s) and 100 years, found "
                f"{key['rotationPeriod']}")
        if key.get("purpose", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
            bad(f"rotation_period: only ENCRYPT_DECRYPT keys rotate automatically, this key's "
                f"purpose is {key.get('purpose')}")
    if "nextRotationTime" in key:
        parse_timestamp(key["nextRotationTime"], "nextRotationTime")


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------

def _list(kind: str, views: list[Json], params: dict[str, str]) -> Response:
    flt = params.get("filter", "").strip()
    if flt:
        m = re.match(r'^(\w+)\s*[=:]\s*"?([\w\-/.@]+)"?$', flt)
        if not m:
            bad(f"filter: the stand-in supports only field=value filters, found {flt!r}")
        views = [v for v in views if str(v.get(m.group(1))) == m.group(2)]
    page_names, token = page([v["name"] for v in views], params)
    by_name = {v["name"]: v for v in views}
    out: Json = {kind: [by_name[n] for n in page_names]} if page_names else {}
    if token:
        out["nextPageToken"] = token
    out["totalSize"] = len(views)
    return json_response(200, out)


def _ring(store: Store, name: str) -> Json:
    ring = key_rings(store).get(name)
    if ring is None:
        not_found(name)
    return ring


def _key(store: Store, name: str) -> Json:
    if name not in crypto_keys(store):
        not_found(name)
    return crypto_keys(store)[name]


def _version(store: Store, name: str) -> Json:
    if name not in versions(store):
        not_found(name)
    return settle(store, name)


def list_key_rings(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    views = [key_rings(store)[n] for n in store.listed(path["parent"], KEY_RINGS)]
    return _list("keyRings", views, params)


def create_key_ring(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    rid = params.get("keyRingId", "")
    if not KMS_ID_RE.match(rid):
        bad(f"keyRingId: expected 1-63 letters, digits, '_' or '-', found {rid!r}")
    name = f"{path['parent']}/keyRings/{rid}"
    if name in key_rings(store):
        raise ApiError(409, f"KeyRing {name} already exists.", "ALREADY_EXISTS")
    put_key_ring(store, {"name": name})
    return json_response(200, key_rings(store)[name])


def get_key_ring(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    return json_response(200, _ring(store, path["name"]))


def list_crypto_keys(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    _ring(store, path["parent"])
    views = [key_view(store, n) for n in store.listed(path["parent"], CRYPTO_KEYS)]
    return _list("cryptoKeys", views, params)


def create_crypto_key(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    _ring(store, path["parent"])
    kid = params.get("cryptoKeyId", "")
    if not KMS_ID_RE.match(kid):
        bad(f"cryptoKeyId: expected 1-63 letters, digits, '_' or '-', found {kid!r}")
    name = f"{path['parent']}/cryptoKeys/{kid}"
    if name in crypto_keys(store):
        raise ApiError(409, f"CryptoKey {name} already exists.", "ALREADY_EXISTS")
    key = {k: v for k, v in body.items() if k not in ("name", "primary", "createTime")}
    normalize_enums(key, KMS_KEY_ENUMS)
    key["name"] = name
    check_rotation(key)
    put_crypto_key(store, key)
    if not as_bool(params.get("skipInitialVersionCreation")):
        put_version(store, {"name": f"{name}/cryptoKeyVersions/1"})
    return json_response(200, key_view(store, name))


def get_crypto_key(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    _key(store, path["name"])
    return json_response(200, key_view(store, path["name"]))


def patch_crypto_key(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["name"]
    key = _key(store, name)
    mask = mask_paths(params.get("updateMask"))
    if not mask:
        bad("update_mask: expected the list of fields to update (it is required), found none")
    normalize_enums(body, KMS_KEY_ENUMS)
    new = clone(key)
    for p in mask:
        parts = p.split(".")
        if parts[0] not in KMS_KEY_MUTABLE:
            bad(f"update_mask: {p!r} cannot be updated; updatable fields are {sorted(KMS_KEY_MUTABLE)}")
        found, value = get_path(body, parts)
        if found:
            set_path(new, parts, clone(value))
        else:
            del_path(new, parts)
    check_rotation(new)
    crypto_keys(store)[name] = new
    return json_response(200, key_view(store, name))


def update_primary_version(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["name"]
    key = _key(store, name)
    vid = str(body.get("cryptoKeyVersionId", ""))
    vname = f"{name}/cryptoKeyVersions/{vid}"
    if key.get("purpose") != "ENCRYPT_DECRYPT":
        precondition(f"{name} has purpose {key.get('purpose')}: only ENCRYPT_DECRYPT keys "
                     "have a primary version")
    state = _version(store, vname)["state"]
    if state != "ENABLED":
        precondition(f"The request cannot be fulfilled. Resource {vname} has value {state} in "
                     "field crypto_key_version.state; expected ENABLED")
    store.tables[PRIMARY][name] = vname
    return json_response(200, key_view(store, name))


def list_versions(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    _key(store, path["parent"])
    names = store.listed(path["parent"], VERSIONS)
    return _list("cryptoKeyVersions", [settle(store, n) for n in names], params)


def create_version(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    key_name = path["parent"]
    _key(store, key_name)
    number = store.tables[NEXT_VERSION].get(key_name, 1)
    vname = f"{key_name}/cryptoKeyVersions/{number}"
    put_version(store, {"name": vname})
    return json_response(200, versions(store)[vname])


def get_version(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    return json_response(200, _version(store, path["name"]))


def patch_version(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["name"]
    current = _version(store, name)
    mask = mask_paths(params.get("updateMask"))
    if not mask:
        bad("update_mask: expected the list of fields to update (it is required), found none")
    for p in mask:
        if p.split(".")[0] not in KMS_VERSION_MUTABLE:
            bad(f"update_mask: {p!r} cannot be updated; updatable fields are {sorted(KMS_VERSION_MUTABLE)}")
    normalize_enums(body, KMS_VERSION_ENUMS)
    new = dict(current)
    if "state" in mask:
        target = body.get("state", "CRYPTO_KEY_VERSION_STATE_UNSPECIFIED")
        if target not in ("ENABLED", "DISABLED"):
            bad(f"crypto_key_version.state: expected ENABLED or DISABLED, found {target}")
        if current["state"] not in ("ENABLED", "DISABLED"):
            precondition(f"The request cannot be fulfilled. Resource {name} has value "
                         f"{current['state']} in field crypto_key_version.state; only ENABLED "
                         "and DISABLED versions can change state this way")
        new["state"] = target
    for p in mask:
        if p.startswith("externalProtectionLevelOptions"):
            found, value = get_path(body, p.split("."))
            if found:
                set_path(new, p.split("."), clone(value))
            else:
                del_path(new, p.split("."))
    versions(store)[name] = new
    return json_response(200, new)


def destroy_version(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["name"]
    current = _version(store, name)
    if current["state"] not in ("ENABLED", "DISABLED"):
        precondition(f"The request cannot be fulfilled. Resource {name} has value "
                     f"{current['state']} in field crypto_key_version.state; expected ENABLED "
                     "or DISABLED")
    key = crypto_keys(store)[name.split("/cryptoKeyVersions/", 1)[0]]
    new = dict(current, state="DESTROY_SCHEDULED", destroyTime=destroy_time(store, key))
    versions(store)[name] = new
    return json_response(200, new)


def restore_version(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["name"]
    current = _version(store, name)
    if current["state"] != "DESTROY_SCHEDULED":
        precondition(f"The request cannot be fulfilled. Resource {name} has value "
                     f"{current['state']} in field crypto_key_version.state; only "
                     "DESTROY_SCHEDULED versions can be restored")
    new = {k: v for k, v in current.items() if k != "destroyTime"}
    new["state"] = "DISABLED"
    versions(store)[name] = new
    return json_response(200, new)


# ---------------------------------------------------------------------------------------------
# Seeding and the admin API's concurrent writer
# ---------------------------------------------------------------------------------------------

def _seed_ring(store: Store, index: int, ring: Json) -> None:
    put_key_ring(store, ring)


def _seed_key(store: Store, index: int, key: Json) -> None:
    parent = key["name"].split("/cryptoKeys/", 1)[0]
    if parent not in key_rings(store):
        bad(f"seed.cryptoKeys[{index}]: key ring {parent} is not in the state; add it to keyRings")
    normalize_enums(key, KMS_KEY_ENUMS)
    check_rotation(key)
    put_crypto_key(store, key)


def _seed_version(store: Store, index: int, version: Json) -> None:
    parent = version["name"].split("/cryptoKeyVersions/", 1)[0]
    if parent not in crypto_keys(store):
        bad(f"seed.cryptoKeyVersions[{index}]: crypto key {parent} is not in the state; add it "
            "to cryptoKeys")
    normalize_enums(version, KMS_VERSION_ENUMS)
    put_version(store, version)


def _patch_ring(store: Store, name: str, patch: Json, actor: str) -> None:
    key_rings(store)[name] = dict(merge_patch(clone(key_rings(store)[name]), patch), name=name)


def _patch_key(store: Store, name: str, patch: Json, actor: str) -> None:
    new = merge_patch(clone(crypto_keys(store)[name]), patch)
    normalize_enums(new, KMS_KEY_ENUMS)
    new["name"] = name
    primary = new.pop("primary", None)
    if isinstance(primary, dict) and primary.get("name"):
        store.tables[PRIMARY][name] = primary["name"]
    crypto_keys(store)[name] = new


def _patch_version(store: Store, name: str, patch: Json, actor: str) -> None:
    new = merge_patch(clone(settle(store, name)), patch)
    normalize_enums(new, KMS_VERSION_ENUMS)
    new["name"] = name
    if new.get("state") == "DESTROY_SCHEDULED" and "destroyTime" not in new:
        new["destroyTime"] = destroy_time(store, crypto_keys(store)[name.split("/cryptoKeyVersions/")[0]])
    versions(store)[name] = new


RING = "projects/*/locations/*/keyRings/*"
KEY = f"{RING}/cryptoKeys/*"
VERSION = f"{KEY}/cryptoKeyVersions/*"
_P = "cloudkms.projects.locations.keyRings"

API = Api(
    name="cloudkms_v1",
    discovery="cloudkms.v1.json",
    routes=(
        Route("GET", "/v1/{parent=projects/*/locations/*}/keyRings", f"{_P}.list", list_key_rings),
        Route("POST", "/v1/{parent=projects/*/locations/*}/keyRings", f"{_P}.create", create_key_ring),
        Route("GET", f"/v1/{{name={RING}}}", f"{_P}.get", get_key_ring),
        Route("GET", f"/v1/{{parent={RING}}}/cryptoKeys", f"{_P}.cryptoKeys.list", list_crypto_keys),
        Route("POST", f"/v1/{{parent={RING}}}/cryptoKeys", f"{_P}.cryptoKeys.create", create_crypto_key),
        Route("GET", f"/v1/{{name={KEY}}}", f"{_P}.cryptoKeys.get", get_crypto_key),
        Route("PATCH", f"/v1/{{name={KEY}}}", f"{_P}.cryptoKeys.patch", patch_crypto_key),
        Route("POST", f"/v1/{{name={KEY}}}:updatePrimaryVersion", f"{_P}.cryptoKeys.updatePrimaryVersion",
              update_primary_version),
        Route("GET", f"/v1/{{parent={KEY}}}/cryptoKeyVersions", f"{_P}.cryptoKeys.cryptoKeyVersions.list",
              list_versions),
        Route("POST", f"/v1/{{parent={KEY}}}/cryptoKeyVersions", f"{_P}.cryptoKeys.cryptoKeyVersions.create",
              create_version),
        Route("GET", f"/v1/{{name={VERSION}}}", f"{_P}.cryptoKeys.cryptoKeyVersions.get", get_version),
        Route("PATCH", f"/v1/{{name={VERSION}}}", f"{_P}.cryptoKeys.cryptoKeyVersions.patch", patch_version),
        Route("POST", f"/v1/{{name={VERSION}}}:destroy", f"{_P}.cryptoKeys.cryptoKeyVersions.destroy",
              destroy_version),
        Route("POST", f"/v1/{{name={VERSION}}}:restore", f"{_P}.cryptoKeys.cryptoKeyVersions.restore",
              restore_version),
        *iam.routes("v1", RING, _P),
        *iam.routes("v1", KEY, f"{_P}.cryptoKeys"),
    ),
    collections=(
        Collection(KEY_RINGS, KEY_RING_RE, seed=_seed_ring, view=lambda s, n: key_rings(s)[n],
                   patch=_patch_ring),
        Collection(CRYPTO_KEYS, CRYPTO_KEY_RE, seed=_seed_key, view=key_view, patch=_patch_key),
        Collection(VERSIONS, VERSION_RE, seed=_seed_version, view=settle, patch=_patch_version),
    ),
    tables=(PRIMARY, NEXT_VERSION),
)
