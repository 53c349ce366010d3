"""A local stand-in for the Cloud Run Admin API v2 and the Cloud KMS API v1 (REST, JSON), stdlib only.

There is no emulator for run.googleapis.com or cloudkms.googleapis.com, so integration tests, the
demo and the benchmarks drive this server through the real `run_v2.ServicesClient` and
`kms_v1.KeyManagementServiceClient` (REST transport, AnonymousCredentials, `api_endpoint` set to
`http://127.0.0.1:PORT`). It listens on loopback only.

    python -m infra.local.standin --port 8089 [--seed infra/local/seed.example.json] [--verbose]
    python -m infra.local.standin --port 0 --port-file /tmp/port   # the OS picks; the port is written there

In-process (unit tests): `with StandinServer(seed=...) as srv: StandinAdmin(srv.url).state()`.

API surface (paths, verbs and bodies as the google-cloud-run 0.16 / google-cloud-kms 3.18 REST
transports send them):
  Run v2   GET|PATCH|DELETE /v2/projects/P/locations/L/services/S      (PATCH: updateMask, validateOnly,
           GET|POST /v2/projects/P/locations/L/services (list, create)   allowMissing; etag checked)
           GET .../services/S:getIamPolicy  POST .../services/S:setIamPolicy|:testIamPermissions
           GET|DELETE /v2/projects/P/locations/L/operations/O, POST .../operations/O:wait
           Writes answer a done Operation whose `response` and `metadata` are the typed Service.
  KMS v1   GET|POST .../keyRings, GET .../keyRings/R, GET|POST .../cryptoKeys, GET|PATCH .../cryptoKeys/K,
           POST .../cryptoKeys/K:updatePrimaryVersion, GET|POST .../cryptoKeyVersions,
           GET|PATCH .../cryptoKeyVersions/N (updateMask=state), POST .../cryptoKeyVersions/N:destroy|:restore,
           GET :getIamPolicy and POST :setIamPolicy|:testIamPermissions on key rings and crypto keys.
  Asset v1 GET /v1/{projects/P|folders/N|organizations/N}:searchAllResources|:searchAllIamPolicies
           (infra/local/standin_asset.py, checked against cloudasset.v1.json).

Fidelity choices (each checked against the published API or the client libraries):
  * Enums are stored and returned as names; integers in request bodies (the clients send
    `$alt=json;enum-encoding=int`) are mapped through tables copied from the protos
    (tests/test_standin_run.py checks the tables against the installed protos).
  * A Service write with a stale `etag` fails 409 ABORTED: AIP-154 (google.aip.dev/154, changed from
    FAILED_PRECONDITION to ABORTED in aip-dev/google.aip.dev PR #705) and IAM's setIamPolicy both use it.
    The Python REST clients map errors by HTTP status only, so callers see `Conflict` (409) and
    `BadRequest` (400), never `Aborted`/`FailedPrecondition`; the rpc status is in the JSON body.
  * Every Service write moves etag, generation, observedGeneration, updateTime and lastModifier; a
    changed template also creates a new revision name. Without updateMask a PATCH replaces every
    writable field (output-only fields in the body are ignored); with one, only the masked paths change.
  * Labels and annotations in the run.googleapis.com, cloud.googleapis.com, serving.knative.dev and
    autoscaling.knative.dev namespaces are rejected (400) unless the resource already carries them.
  * IAM: an empty policy reads `{"version": 1, "etag": "ACAB"}`; etags are base64; the default
    setIamPolicy mask is `bindings,etag`; conditions need version 3; members must have a known prefix.
  * KMS: updateMask is required; state moves only ENABLED<->DISABLED (else 400 FAILED_PRECONDITION);
    destroy sets DESTROY_SCHEDULED and destroyTime = now + the key's destroyScheduledDuration (30 days
    if unset); restore (DESTROY_SCHEDULED only) gives DISABLED; once destroyTime passes the version
    reads DESTROYED. The clock can be advanced through the admin API. A key's `primary` is the live
    primary version.

Seed format (`--seed FILE`, `POST /_standin/seed`; same shape as `GET /_standin/state`; upserts by name):
  {
    "services":          [Service JSON with "name"; output-only fields are filled in if absent],
    "policies":          {"<resource name>": Policy JSON (etag optional)},
    "keyRings":          [KeyRing JSON with "name"],
    "cryptoKeys":        [CryptoKey JSON with "name"; "primary": {"name": VERSION} optional,
                          version 1 is the primary of an ENCRYPT_DECRYPT key otherwise],
    "cryptoKeyVersions": [CryptoKeyVersion JSON with "name"; state defaults to ENABLED],
    "projects":          [{"name": "projects/P", "number", "folders": ["folders/N"], "organization"}]
                         (optional: where a project sits, for Asset Inventory search scopes),
    "caller":            "email recorded as creator/lastModifier of API writes" (optional)
  }
Parents must exist (in the store or earlier in the same seed); a bad seed changes nothing.

Admin API (JSON; not logged, not subject to faults):
  GET  /_standin/health                 -> 200 "ok"
  POST /_standin/reset                  back to the startup state (--seed or empty); clears faults,
                                        the request log, operations and the clock offset
  POST /_standin/seed                   seed format above -> counts
  GET  /_standin/state                  everything, in seed format
  GET|DELETE /_standin/requests         ring buffer of {method, path, query, status, time, durationMs,
                                        faults, body (writes, first 4 KiB)}
  POST /_standin/faults                 {"method": "PATCH"|"*", "path": regex searched in the URL path,
                                         "count": N (null = unlimited), "skip": N, "status": 503,
                                         "rpc_status": "UNAVAILABLE", "message": str, "delay_ms": 0,
                                         "move_etag": false, "drop": false, "probability": 1.0,
                                         "pending_polls": 0, "seed": int (reseeds the fault RNG)}
                                        The next `count` matching API requests (after `skip`) are
                                        delayed, have their resource's etag moved as if someone else
                                        wrote first (Run services and IAM policies; KMS keys and
                                        versions have no etag), have the connection dropped, and/or
                                        fail with `status` in google.rpc shape. `pending_polls: N`
                                        makes a Run write answer a long-running operation that is
                                        not done: GET .../operations/O reads `done: false` N more
                                        times, then the result (the write itself applies at once).
  GET|DELETE /_standin/faults
  POST /_standin/mutate                 a concurrent writer: {"resource": name, "actor": email,
                                         "patch": JSON merge patch, "iam_add": {"role", "member",
                                         "condition"?}, "iam_remove": {"role", "member"},
                                         "delete": true (services only)}; moves etags.
  GET|POST /_standin/clock              {"advance_seconds": N} moves the stand-in's clock forward.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import ipaddress
import itertools
import json
import random
import re
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn, Self
from urllib.parse import parse_qs, unquote, urlsplit

from infra.local import standin_asset

Json = dict[str, Any]

DEFAULT_CALLER = "standin-caller@standin.invalid"
DEFAULT_ACTOR = "someone-else@example.com"
KMS_DEFAULT_DESTROY_SCHEDULED = "2592000s"  # 30 days, the documented default
MAX_BODY = 10 * 1024 * 1024
LOGGED_BODY_CHARS = 4096
MAX_OPERATIONS = 2000  # operations are kept for GET .../operations/O; bounded so load tests stay flat

RPC_BY_HTTP = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# ---------------------------------------------------------------------------------------------
# Enum tables, copied from the protos (google-cloud-run 0.16.2, google-cloud-kms 3.18.0,
# grpc-google-iam-v1 0.14.6). Keys are JSON paths; lists along the path are walked.
# ---------------------------------------------------------------------------------------------

def _enum(*pairs: tuple[int, str]) -> dict[int, str]:
    return dict(pairs)


def _seq(*names: str) -> dict[int, str]:
    return dict(enumerate(names))


INGRESS = _seq(
    "INGRESS_TRAFFIC_UNSPECIFIED", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_NONE",
)
VPC_EGRESS = _seq("VPC_EGRESS_UNSPECIFIED", "ALL_TRAFFIC", "PRIVATE_RANGES_ONLY")
LAUNCH_STAGE = _enum(
    (0, "LAUNCH_STAGE_UNSPECIFIED"), (6, "UNIMPLEMENTED"), (7, "PRELAUNCH"), (1, "EARLY_ACCESS"),
    (2, "ALPHA"), (3, "BETA"), (4, "GA"), (5, "DEPRECATED"),
)
CONDITION_STATE = _seq(
    "STATE_UNSPECIFIED", "CONDITION_PENDING", "CONDITION_RECONCILING", "CONDITION_FAILED",
    "CONDITION_SUCCEEDED",
)
CONDITION_SEVERITY = _seq("SEVERITY_UNSPECIFIED", "ERROR", "WARNING", "INFO")
CONDITION_COMMON_REASON = _enum(
    (0, "COMMON_REASON_UNDEFINED"), (1, "UNKNOWN"), (3, "REVISION_FAILED"),
    (4, "PROGRESS_DEADLINE_EXCEEDED"), (6, "CONTAINER_MISSING"), (7, "CONTAINER_PERMISSION_DENIED"),
    (8, "CONTAINER_IMAGE_UNAUTHORIZED"), (9, "CONTAINER_IMAGE_AUTHORIZATION_CHECK_FAILED"),
    (10, "ENCRYPTION_KEY_PERMISSION_DENIED"), (11, "ENCRYPTION_KEY_CHECK_FAILED"),
    (12, "SECRETS_ACCESS_CHECK_FAILED"), (13, "WAITING_FOR_OPERATION"), (14, "IMMEDIATE_RETRY"),
    (15, "POSTPONED_RETRY"), (16, "INTERNAL"), (17, "VPC_NETWORK_NOT_FOUND"),
)
CONDITION_REVISION_REASON = _seq(
    "REVISION_REASON_UNDEFINED", "PENDING", "RESERVE", "RETIRED", "RETIRING", "RECREATING",
    "HEALTH_CHECK_CONTAINER_ERROR", "CUSTOMIZED_PATH_RESPONSE_PENDING", "MIN_INSTANCES_NOT_PROVISIONED",
    "ACTIVE_REVISION_LIMIT_REACHED", "NO_DEPLOYMENT", "HEALTH_CHECK_SKIPPED", "MIN_INSTANCES_WARMING",
)
CONDITION_EXECUTION_REASON = _seq(
    "EXECUTION_REASON_UNDEFINED", "JOB_STATUS_SERVICE_POLLING_ERROR", "NON_ZERO_EXIT_CODE",
    "CANCELLED", "CANCELLING", "DELETED", "DELAYED_START_PENDING",
)
TRAFFIC_TYPE = _seq(
    "TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED", "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
    "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
)

RUN_SERVICE_ENUMS: dict[str, dict[int, str]] = {
    "ingress": INGRESS,
    "launchStage": LAUNCH_STAGE,
    "template.vpcAccess.egress": VPC_EGRESS,
    "template.volumes.emptyDir.medium": _seq("MEDIUM_UNSPECIFIED", "MEMORY"),
    "template.executionEnvironment": _seq(
        "EXECUTION_ENVIRONMENT_UNSPECIFIED", "EXECUTION_ENVIRONMENT_GEN1", "EXECUTION_ENVIRONMENT_GEN2"
    ),
    "template.encryptionKeyRevocationAction": _seq(
        "ENCRYPTION_KEY_REVOCATION_ACTION_UNSPECIFIED", "PREVENT_NEW", "SHUTDOWN"
    ),
    "traffic.type": TRAFFIC_TYPE,
    "scaling.scalingMode": _seq("SCALING_MODE_UNSPECIFIED", "AUTOMATIC", "MANUAL"),
    "terminalCondition.state": CONDITION_STATE,
    "terminalCondition.severity": CONDITION_SEVERITY,
    "terminalCondition.reason": CONDITION_COMMON_REASON,
    "terminalCondition.revisionReason": CONDITION_REVISION_REASON,
    "terminalCondition.executionReason": CONDITION_EXECUTION_REASON,
    "conditions.state": CONDITION_STATE,
    "conditions.severity": CONDITION_SEVERITY,
    "conditions.reason": CONDITION_COMMON_REASON,
    "conditions.revisionReason": CONDITION_REVISION_REASON,
    "conditions.executionReason": CONDITION_EXECUTION_REASON,
    "trafficStatuses.type": TRAFFIC_TYPE,
}

KMS_VERSION_STATE = _seq(
    "CRYPTO_KEY_VERSION_STATE_UNSPECIFIED", "ENABLED", "DISABLED", "DESTROYED", "DESTROY_SCHEDULED",
    "PENDING_GENERATION", "PENDING_IMPORT", "IMPORT_FAILED", "GENERATION_FAILED",
    "PENDING_EXTERNAL_DESTRUCTION", "EXTERNAL_DESTRUCTION_FAILED",
)
KMS_PROTECTION_LEVEL = _seq(
    "PROTECTION_LEVEL_UNSPECIFIED", "SOFTWARE", "HSM", "EXTERNAL", "EXTERNAL_VPC", "HSM_SINGLE_TENANT"
)
KMS_ALGORITHM = _enum(
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
KMS_ATTESTATION_FORMAT = _enum(
    (0, "ATTESTATION_FORMAT_UNSPECIFIED"), (3, "CAVIUM_V1_COMPRESSED"), (4, "CAVIUM_V2_COMPRESSED")
)
KMS_PURPOSE = _enum(
    (0, "CRYPTO_KEY_PURPOSE_UNSPECIFIED"), (1, "ENCRYPT_DECRYPT"), (5, "ASYMMETRIC_SIGN"),
    (6, "ASYMMETRIC_DECRYPT"), (7, "RAW_ENCRYPT_DECRYPT"), (9, "MAC"), (10, "KEY_ENCAPSULATION"),
    (11, "AES_WRAPPING"),
)
KMS_ACCESS_REASON = _seq(
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
IAM_LOG_TYPE = _seq("LOG_TYPE_UNSPECIFIED", "ADMIN_READ", "DATA_WRITE", "DATA_READ")
IAM_POLICY_ENUMS: dict[str, dict[int, str]] = {"auditConfigs.auditLogConfigs.logType": IAM_LOG_TYPE}

_ENUM_NAMES = {id(t): frozenset(t.values()) for t in (
    *RUN_SERVICE_ENUMS.values(), *KMS_KEY_ENUMS.values(), *IAM_POLICY_ENUMS.values()
)}

# Service fields marked "Output only" in google/cloud/run/v2/service.proto (plus name and etag,
# which the path and the precondition carry): a PATCH body's values for them are ignored.
SERVICE_OUTPUT_ONLY = frozenset({
    "name", "uid", "generation", "createTime", "updateTime", "deleteTime", "expireTime", "creator",
    "lastModifier", "urls", "observedGeneration", "terminalCondition", "conditions",
    "latestReadyRevision", "latestCreatedRevision", "trafficStatuses", "uri", "satisfiesPzs",
    "threatDetectionEnabled", "reconciling", "etag",
})
RESERVED_NAMESPACES = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev",
                       "autoscaling.knative.dev")
KMS_KEY_MUTABLE = frozenset({"labels", "rotationPeriod", "nextRotationTime", "versionTemplate",
                             "keyAccessJustificationsPolicy"})
KMS_VERSION_MUTABLE = frozenset({"state", "externalProtectionLevelOptions"})
MEMBER_PREFIXES = ("user:", "serviceAccount:", "group:", "domain:", "principal://", "principalSet://",
                   "deleted:", "projectOwner:", "projectEditor:", "projectViewer:")
MEMBER_EXACT = frozenset({"allUsers", "allAuthenticatedUsers"})
EMPTY_POLICY_ETAG = "ACAB"  # what IAM returns for a resource that never had a policy

# Resource name patterns; a segment never holds "/" or ":" (":" starts a custom verb).
_SEG = r"[^/:]+"
LOCATION_RE = re.compile(rf"^projects/{_SEG}/locations/{_SEG}$")
SERVICE_RE = re.compile(rf"^(projects/{_SEG}/locations/{_SEG})/services/({_SEG})$")
KEY_RING_RE = re.compile(rf"^projects/{_SEG}/locations/{_SEG}/keyRings/{_SEG}$")
CRYPTO_KEY_RE = re.compile(rf"^(projects/{_SEG}/locations/{_SEG}/keyRings/{_SEG})/cryptoKeys/{_SEG}$")
VERSION_RE = re.compile(
    rf"^(projects/{_SEG}/locations/{_SEG}/keyRings/{_SEG}/cryptoKeys/{_SEG})/cryptoKeyVersions/(\d+)$"
)
SERVICE_ID_RE = re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$")
KMS_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
DURATION_RE = re.compile(r"^(-?\d+)(\.\d{1,9})?s$")
TIMESTAMP_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


class ApiError(Exception):
    """An error answered in google.rpc JSON shape: {"error": {"code", "message", "status"}}."""

    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or RPC_BY_HTTP.get(code, "UNKNOWN")

    def payload(self) -> Json:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def _bad(message: str) -> NoReturn:
    raise ApiError(400, message, "INVALID_ARGUMENT")


def _precondition(message: str) -> NoReturn:
    raise ApiError(400, message, "FAILED_PRECONDITION")


def _not_found(name: str) -> NoReturn:
    raise ApiError(404, f"Resource '{name}' was not found", "NOT_FOUND")


# ---------------------------------------------------------------------------------------------
# Small JSON helpers
# ---------------------------------------------------------------------------------------------

def _clone(obj: Any) -> Any:
    """Deep copy of plain JSON data (a JSON round trip beats copy.deepcopy on these shapes)."""
    return json.loads(json.dumps(obj))


def _camel(path: str) -> str:
    """update_mask paths may come snake_case (hand-built requests) or camelCase (the clients)."""
    return ".".join(re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), p) for p in path.split("."))


def _mask_paths(raw: str | None) -> list[str] | None:
    if raw is None or raw.strip() == "":
        return None
    return [_camel(p.strip()) for p in raw.split(",") if p.strip()]


def _get_path(obj: Json, parts: list[str]) -> tuple[bool, Any]:
    node: Any = obj
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            return False, None
        node = node[p]
    return True, node


def _set_path(obj: Json, parts: list[str], value: Any) -> None:
    node = obj
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = node[p] = {}
        node = nxt
    node[parts[-1]] = value


def _del_path(obj: Json, parts: list[str]) -> None:
    node: Any = obj
    for p in parts[:-1]:
        node = node.get(p) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def _merge_patch(target: Json, patch: Json) -> Json:
    """RFC 7396 JSON merge patch: objects merge, null deletes, anything else replaces."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge_patch(target[k], v)
        else:
            target[k] = _clone(v)
    return target


def _normalize_enums(obj: Json, table: dict[str, dict[int, str]]) -> None:
    """Turn integer enums (enum-encoding=int) into names and reject unknown values, in place."""
    for path, names in table.items():
        _normalize_at(obj, path.split("."), names, path)


def _normalize_at(node: Any, parts: list[str], names: dict[int, str], path: str) -> None:
    if isinstance(node, list):
        for item in node:
            _normalize_at(item, parts, names, path)
        return
    if not isinstance(node, dict) or parts[0] not in node:
        return
    if len(parts) > 1:
        _normalize_at(node[parts[0]], parts[1:], names, path)
        return
    value = node[parts[0]]
    if isinstance(value, list):
        node[parts[0]] = [_enum_name(v, names, path) for v in value]
    else:
        node[parts[0]] = _enum_name(value, names, path)


def _enum_name(value: Any, names: dict[int, str], path: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value in names:
            return names[value]
    elif isinstance(value, str) and value in _ENUM_NAMES[id(names)]:
        return value
    _bad(f"Invalid value at '{path}': expected one of {sorted(names.values())} or its number, "
         f"found {value!r}")


def _parse_duration(value: Any, what: str) -> float:
    m = DURATION_RE.match(value) if isinstance(value, str) else None
    if not m:
        _bad(f"Invalid value at '{what}': expected a duration like \"86400s\", found {value!r}")
    return float(m.group(1) + (m.group(2) or ""))


def _parse_timestamp(value: Any, what: str) -> float:
    m = TIMESTAMP_RE.match(value) if isinstance(value, str) else None
    if not m:
        _bad(f"Invalid value at '{what}': expected an RFC 3339 timestamp, found {value!r}")
    frac = (m.group(2) or "")[:7]  # fromisoformat takes at most microseconds
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + zone).timestamp()


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

class Clock:
    """Wall clock plus an offset the admin API can move forward (to expire KMS destroy windows)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@dataclass
class Response:
    """What the HTTP layer writes back; `drop` closes the connection without an answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False


def _json_response(status: int, obj: Any) -> Response:
    return Response(status, json.dumps(obj, separators=(",", ":")).encode())


@dataclass
class Fault:
    """One injected fault rule (see the module docstring for the fields)."""

    id: int
    method: str = "*"
    path: str = ".*"
    count: int | None = 1
    skip: int = 0
    status: int | None = None
    rpc_status: str | None = None
    message: str | None = None
    delay_ms: int = 0
    move_etag: bool = False
    drop: bool = False
    probability: float = 1.0
    pending_polls: int = 0
    hits: int = 0
    regex: re.Pattern[str] = field(default=re.compile(".*"), repr=False)

    FIELDS = ("method", "path", "count", "skip", "status", "rpc_status", "message", "delay_ms",
              "move_etag", "drop", "probability", "pending_polls", "seed")
    SHOWN = ("id", "method", "path", "count", "skip", "status", "rpc_status", "message", "delay_ms",
             "move_etag", "drop", "probability", "pending_polls", "hits")

    def to_json(self) -> Json:
        return {k: getattr(self, k) for k in self.SHOWN}


class Store:
    """All resources, behind one lock. Each request does O(1) dictionary work (lists walk one parent)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self._seq = itertools.count(1)  # never reset, so etags stay unique across resets
        self.clear()

    def clear(self) -> None:
        self.services: dict[str, Json] = {}
        self.policies: dict[str, Json] = {}
        self.key_rings: dict[str, Json] = {}
        self.crypto_keys: dict[str, Json] = {}
        self.versions: dict[str, Json] = {}
        self.primary: dict[str, str] = {}  # crypto key name -> primary version name
        self.next_version: dict[str, int] = {}
        self.children: dict[str, dict[str, None]] = {}  # "parent|collection" -> ordered names
        self.operations: collections.OrderedDict[str, Json] = collections.OrderedDict()
        self.caller = DEFAULT_CALLER
        self.projects: dict[str, Json] = {}  # project id -> number, folders, organization (asset search scopes)

    # -- bookkeeping ---------------------------------------------------------------------------

    def now(self) -> str:
        return _rfc3339(self.clock.now())

    def seq(self) -> int:
        return next(self._seq)

    def service_etag(self) -> str:
        # Quoted, as AIP-154 asks and Cloud Run v2 returns; opaque to callers.
        token = base64.urlsafe_b64encode(self.seq().to_bytes(6, "big") + uuid.uuid4().bytes[:6])
        return '"' + token.decode().rstrip("=") + '"'

    def policy_etag(self) -> str:
        # IAM etags are bytes, base64 on the wire; these start "BwY" like real ones.
        return base64.b64encode(b"\x07\x06" + self.seq().to_bytes(6, "big")).decode()

    def _index(self, parent: str, collection: str, name: str) -> None:
        self.children.setdefault(f"{parent}|{collection}", {})[name] = None

    def _unindex(self, parent: str, collection: str, name: str) -> None:
        self.children.get(f"{parent}|{collection}", {}).pop(name, None)

    def listed(self, parent: str, collection: str) -> list[str]:
        if parent.endswith("/locations/-"):  # Run and KMS accept "-" for every location
            prefix = parent[: -len("-")]
            names = [n for key, kids in self.children.items()
                     if key.startswith(prefix) and key.endswith(f"|{collection}") for n in kids]
            return sorted(names)
        return list(self.children.get(f"{parent}|{collection}", {}))

    def record_operation(self, name: str, op: Json) -> None:
        self.operations[name] = op
        while len(self.operations) > MAX_OPERATIONS:
            self.operations.popitem(last=False)

    def resource_exists(self, name: str) -> bool:
        return (name in self.services or name in self.key_rings or name in self.crypto_keys
                or name in self.versions)

    # -- Cloud Run services --------------------------------------------------------------------

    def put_service(self, svc: Json) -> None:
        name = svc["name"]
        self.services[name] = svc
        m = SERVICE_RE.match(name)
        assert m is not None
        self._index(m.group(1), "services", name)

    def drop_service(self, name: str) -> None:
        self.services.pop(name, None)
        self.policies.pop(name, None)
        m = SERVICE_RE.match(name)
        if m:
            self._unindex(m.group(1), "services", name)

    def fill_service(self, svc: Json, actor: str) -> Json:
        """Add the output-only fields a real service carries, keeping any the caller gave."""
        m = SERVICE_RE.match(svc["name"])
        assert m is not None
        parent, sid = m.group(1), m.group(2)
        location = parent.rsplit("/", 1)[1]
        now = self.now()
        svc.setdefault("uid", str(uuid.uuid4()))
        svc.setdefault("generation", "1")
        svc.setdefault("observedGeneration", svc["generation"])
        svc.setdefault("createTime", now)
        svc.setdefault("updateTime", now)
        svc.setdefault("creator", actor)
        svc.setdefault("lastModifier", actor)
        svc.setdefault("launchStage", "GA")
        svc.setdefault("ingress", "INGRESS_TRAFFIC_ALL")  # the API's default when unset
        uri = f"https://{sid}-{zlib.crc32(parent.encode()):010d}.{location}.run.app"
        svc.setdefault("uri", uri)
        svc.setdefault("urls", [svc["uri"]])
        revision = f"{svc['name']}/revisions/{sid}-{int(svc['generation']):05d}-{self._suffix()}"
        svc.setdefault("latestCreatedRevision", revision)
        svc.setdefault("latestReadyRevision", svc["latestCreatedRevision"])
        svc.setdefault("terminalCondition", {"type": "Ready", "state": "CONDITION_SUCCEEDED",
                                             "lastTransitionTime": now})
        svc.setdefault("etag", self.service_etag())
        return svc

    def _suffix(self) -> str:
        # Revision names end in three letters; derive them from the sequence, so runs repeat.
        n = self.seq()
        return "".join("abcdefghijklmnopqrstuvwxyz"[(n // 26**i) % 26] for i in range(3))

    def bump_service(self, old: Json | None, new: Json, actor: str) -> Json:
        """Record a write: new etag, generation, times, modifier; a new revision if the template moved."""
        now = self.now()
        generation = int((old or new).get("generation", "0")) + 1
        new["generation"] = new["observedGeneration"] = str(generation)
        new["updateTime"] = now
        new["lastModifier"] = actor
        new["etag"] = self.service_etag()
        if old is not None and old.get("template") != new.get("template"):
            sid = new["name"].rsplit("/", 1)[1]
            rev = f"{new['name']}/revisions/{sid}-{generation:05d}-{self._suffix()}"
            new["latestCreatedRevision"] = new["latestReadyRevision"] = rev
        if "terminalCondition" in new:
            new["terminalCondition"]["lastTransitionTime"] = now
        return new

    # -- KMS -----------------------------------------------------------------------------------

    def put_key_ring(self, ring: Json) -> None:
        name = ring["name"]
        ring.setdefault("createTime", self.now())
        self.key_rings[name] = ring
        self._index(name.rsplit("/keyRings/", 1)[0], "keyRings", name)

    def put_crypto_key(self, key: Json) -> None:
        name = key["name"]
        primary = key.pop("primary", None)
        key.setdefault("purpose", "ENCRYPT_DECRYPT")
        key.setdefault("createTime", self.now())
        key.setdefault("versionTemplate", {})
        key["versionTemplate"].setdefault("protectionLevel", "SOFTWARE")
        key["versionTemplate"].setdefault(
            "algorithm", "GOOGLE_SYMMETRIC_ENCRYPTION" if key["purpose"] == "ENCRYPT_DECRYPT"
            else "CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED")
        key.setdefault("destroyScheduledDuration", KMS_DEFAULT_DESTROY_SCHEDULED)
        self.crypto_keys[name] = key
        if isinstance(primary, dict) and primary.get("name"):
            self.primary[name] = primary["name"]
        elif key["purpose"] == "ENCRYPT_DECRYPT":
            self.primary.setdefault(name, f"{name}/cryptoKeyVersions/1")
        self.next_version.setdefault(name, 1)
        m = CRYPTO_KEY_RE.match(name)
        assert m is not None
        self._index(m.group(1), "cryptoKeys", name)

    def put_version(self, version: Json) -> None:
        name = version["name"]
        m = VERSION_RE.match(name)
        assert m is not None
        key_name, number = m.group(1), int(m.group(2))
        key = self.crypto_keys[key_name]
        now = self.now()
        version.setdefault("state", "ENABLED")
        version.setdefault("protectionLevel", key["versionTemplate"]["protectionLevel"])
        version.setdefault("algorithm", key["versionTemplate"]["algorithm"])
        version.setdefault("createTime", now)
        version.setdefault("generateTime", version["createTime"])
        if version["state"] == "DESTROY_SCHEDULED" and "destroyTime" not in version:
            version["destroyTime"] = self.destroy_time(key)
        self.versions[name] = version
        self.next_version[key_name] = max(self.next_version.get(key_name, 1), number + 1)
        self._index(key_name, "cryptoKeyVersions", name)

    def destroy_time(self, key: Json) -> str:
        span = _parse_duration(key.get("destroyScheduledDuration", KMS_DEFAULT_DESTROY_SCHEDULED),
                               "destroyScheduledDuration")
        return _rfc3339(self.clock.now() + span)

    def settle(self, name: str) -> Json:
        """The version as of now: a DESTROY_SCHEDULED version past its destroyTime is DESTROYED."""
        v = self.versions[name]
        if (v.get("state") == "DESTROY_SCHEDULED" and "destroyTime" in v
                and _parse_timestamp(v["destroyTime"], "destroyTime") <= self.clock.now()):
            v["state"] = "DESTROYED"
            v["destroyEventTime"] = v["destroyTime"]
        return v

    def key_view(self, name: str) -> Json:
        view = dict(self.crypto_keys[name])
        primary = self.primary.get(name)
        if primary and primary in self.versions:
            view["primary"] = self.settle(primary)
        return view

    # -- IAM -----------------------------------------------------------------------------------

    def policy(self, resource: str) -> Json:
        return self.policies.get(resource) or {"version": 1, "etag": EMPTY_POLICY_ETAG}

    # -- snapshots (atomic seeding) ------------------------------------------------------------

    def snapshot(self) -> tuple[Any, ...]:
        return (dict(self.services), dict(self.policies), dict(self.key_rings),
                dict(self.crypto_keys), dict(self.versions), dict(self.primary),
                dict(self.next_version), {k: dict(v) for k, v in self.children.items()}, self.caller,
                _clone(self.projects))

    def restore(self, snap: tuple[Any, ...]) -> None:
        (self.services, self.policies, self.key_rings, self.crypto_keys, self.versions, self.primary,
         self.next_version, self.children, self.caller, self.projects) = snap


def _check_reserved(kind: str, new: Json | None, old: Json | None) -> None:
    """Cloud Run v2 rejects system-namespace labels/annotations; keys already present may stay."""
    for key, value in (new or {}).items():
        prefix = key.split("/", 1)[0] if "/" in key else ""
        if not prefix or not any(prefix == ns or prefix.endswith("." + ns) for ns in RESERVED_NAMESPACES):
            continue
        if old is not None and old.get(key) == value:
            continue
        _bad(f"{kind} '{key}' is in a system namespace: Cloud Run API v2 does not support {kind}s "
             f"with {', '.join(RESERVED_NAMESPACES)} namespaces; use the corresponding v2 field")


def _validate_service(svc: Json, old: Json | None) -> None:
    _normalize_enums(svc, RUN_SERVICE_ENUMS)
    template = svc.get("template")
    if not isinstance(template, dict):
        _bad("service.template is required: expected an object with containers, found "
             f"{type(template).__name__}")
    containers = template.get("containers")
    if not isinstance(containers, list) or not containers or not all(
        isinstance(c, dict) and c.get("image") for c in containers
    ):
        _bad("service.template.containers: expected at least one container with an image")
    for where, new_map, old_map in (
        ("label", svc.get("labels"), (old or {}).get("labels")),
        ("annotation", svc.get("annotations"), (old or {}).get("annotations")),
        ("label", template.get("labels"), ((old or {}).get("template") or {}).get("labels")),
        ("annotation", template.get("annotations"),
         ((old or {}).get("template") or {}).get("annotations")),
    ):
        if new_map is not None and not isinstance(new_map, dict):
            _bad(f"{where}s: expected a map of strings, found {type(new_map).__name__}")
        _check_reserved(where, new_map, old_map if old is not None else None)


def _normalize_policy(policy: Any) -> Json:
    """Validate a Policy the way IAM does and return it with enums as names and empty parts dropped."""
    if not isinstance(policy, dict):
        _bad(f"policy: expected an object, found {type(policy).__name__}")
    policy = _clone(policy)
    _normalize_enums(policy, IAM_POLICY_ENUMS)
    version = policy.get("version", 1)
    if version not in (0, 1, 3):
        _bad(f"policy.version: expected 1 or 3, found {version!r}")
    bindings = []
    for i, b in enumerate(policy.get("bindings") or []):
        role = b.get("role") if isinstance(b, dict) else None
        if not isinstance(role, str) or not re.match(r"^(roles/|projects/[^/]+/roles/|organizations/[^/]+/roles/)", role):
            _bad(f"policy.bindings[{i}].role: expected roles/NAME or a custom role name, found {role!r}")
        members: list[str] = []
        for m in b.get("members") or []:
            if not isinstance(m, str) or not (m in MEMBER_EXACT or m.startswith(MEMBER_PREFIXES)):
                _bad(f"policy.bindings[{i}].members: invalid member {m!r}: expected user:, "
                     "serviceAccount:, group:, domain:, principal://, allUsers or allAuthenticatedUsers")
            if m not in members:
                members.append(m)
        if not members:
            continue  # IAM drops bindings that lose their last member
        nb: Json = {"role": role, "members": members}
        if b.get("condition"):
            if version != 3:
                _bad(f"policy.bindings[{i}] has a condition: conditional role bindings need policy "
                     f"version 3, found version {version}")
            nb["condition"] = b["condition"]
        bindings.append(nb)
    out: Json = {"version": version or 1}
    if bindings:
        out["bindings"] = bindings
    if policy.get("auditConfigs"):
        out["auditConfigs"] = policy["auditConfigs"]
    if "etag" in policy:
        etag = policy["etag"]
        try:
            base64.b64decode(etag, validate=True)
        except (binascii.Error, TypeError, ValueError):
            _bad(f"policy.etag: expected base64, found {etag!r}")
        out["etag"] = etag
    return out


# ---------------------------------------------------------------------------------------------
# The application: routing and handlers, independent of sockets
# ---------------------------------------------------------------------------------------------

Handler = Callable[[dict[str, str], dict[str, str], Json], Response]


def _asset_handler(fn: Callable[[dict[str, str], dict[str, str], Json], Json]) -> Handler:
    """A Cloud Asset Inventory route (infra/local/standin_asset.py) as a stand-in handler."""

    def handler(path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        try:
            return _json_response(200, fn(path, params, body))
        except standin_asset.AssetError as e:
            raise ApiError(e.code, e.message) from None

    return handler


class App:
    """The stand-in's behaviour: `handle(method, path, query, body)` -> Response. Thread-safe."""

    def __init__(self, *, seed: Json | None = None, log_size: int = 2000, fault_seed: int = 0) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.baseline = _clone(seed) if seed else None
        self.fault_lock = threading.Lock()
        self.faults: list[Fault] = []
        self._fault_ids = itertools.count(1)
        self.fault_seed = fault_seed
        self.rng = random.Random(fault_seed)
        self.log: collections.deque[Json] = collections.deque(maxlen=log_size)
        self.log_lock = threading.Lock()  # readers copy the deque while handler threads append
        self.pending_ops: dict[str, int] = {}  # operation name -> polls left before it reads done
        self.routes = self._routes()
        if seed:
            self.seed(_clone(seed))

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, body: bytes) -> Response:
        """Answer one request: admin calls directly, API calls through faults, routing and the log."""
        if path.startswith("/_standin/") or path == "/_standin":
            try:
                return self.admin(method, path, body)
            except ApiError as e:
                return _json_response(e.code, e.payload())
        arrived, started = time.time(), time.perf_counter()
        fired: list[int] = []
        resp: Response | None = None
        pending = 0
        try:
            for fault in self._matching_faults(method, path):
                fired.append(fault.id)
                pending = max(pending, fault.pending_polls)
                if fault.delay_ms:
                    time.sleep(fault.delay_ms / 1000)
                if fault.move_etag:
                    self._move_etag(path)
                if resp is None and fault.drop:
                    resp = Response(0, drop=True)
                if resp is None and fault.status:
                    err = ApiError(fault.status, fault.message or f"injected fault {fault.id}",
                                   fault.rpc_status)
                    resp = _json_response(fault.status, err.payload())
            if resp is None:
                resp = self.api(method, path, query, body)
                if pending and resp.status == 200:
                    resp = self._pend(resp, pending)
        except ApiError as e:
            resp = _json_response(e.code, e.payload())
        entry: Json = {
            "method": method, "path": path, "query": unquote(query), "status": resp.status,
            "time": arrived, "durationMs": round((time.perf_counter() - started) * 1000, 3),
        }
        if fired:
            entry["faults"] = fired
        if method != "GET" and body:
            entry["body"] = body[:LOGGED_BODY_CHARS].decode("utf-8", "replace")
        with self.log_lock:
            self.log.append(entry)
        return resp

    def api(self, method: str, path: str, query: str, raw: bytes) -> Response:
        # A repeated parameter (Asset Inventory's assetTypes) arrives as its values joined by commas.
        params = {k: ",".join(v) for k, v in parse_qs(query, keep_blank_values=True).items()}
        for verb, regex, handler in self.routes:
            if verb == method and (m := regex.match(path)):
                body = self._body(raw)
                with self.store.lock:
                    return handler(m.groupdict(), params, body)
        raise ApiError(501, f"The stand-in does not implement {method} {path}", "UNIMPLEMENTED")

    @staticmethod
    def _body(raw: bytes) -> Json:
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as e:
            _bad(f"Invalid JSON payload received: {e}")
        if not isinstance(body, dict):
            _bad(f"Invalid JSON payload received: expected an object, found {type(body).__name__}")
        return body

    def _routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        loc = rf"(?P<parent>projects/{_SEG}/locations/{_SEG})"
        svc = rf"projects/{_SEG}/locations/{_SEG}/services/{_SEG}"
        op = rf"(?P<name>projects/{_SEG}/locations/{_SEG}/operations/{_SEG})"
        ring = rf"projects/{_SEG}/locations/{_SEG}/keyRings/{_SEG}"
        key = rf"{ring}/cryptoKeys/{_SEG}"
        ver = rf"{key}/cryptoKeyVersions/{_SEG}"
        table: list[tuple[str, str, Handler]] = [
            ("GET", rf"/v2/{loc}/services", self.run_list),
            ("POST", rf"/v2/{loc}/services", self.run_create),
            ("GET", rf"/v2/(?P<name>{svc})", self.run_get),
            ("PATCH", rf"/v2/(?P<name>{svc})", self.run_patch),
            ("DELETE", rf"/v2/(?P<name>{svc})", self.run_delete),
            ("GET", rf"/v2/(?P<resource>{svc}):getIamPolicy", self.iam_get),
            ("POST", rf"/v2/(?P<resource>{svc}):setIamPolicy", self.iam_set),
            ("POST", rf"/v2/(?P<resource>{svc}):testIamPermissions", self.iam_test),
            ("GET", rf"/v2/{op}", self.op_get),
            ("DELETE", rf"/v2/{op}", self.op_delete),
            ("POST", rf"/v2/{op}:wait", self.op_get),
            ("GET", rf"/v1/{loc}/keyRings", self.kms_list_rings),
            ("POST", rf"/v1/{loc}/keyRings", self.kms_create_ring),
            ("GET", rf"/v1/(?P<name>{ring})", self.kms_get_ring),
            ("GET", rf"/v1/(?P<parent>{ring})/cryptoKeys", self.kms_list_keys),
            ("POST", rf"/v1/(?P<parent>{ring})/cryptoKeys", self.kms_create_key),
            ("GET", rf"/v1/(?P<name>{key})", self.kms_get_key),
            ("PATCH", rf"/v1/(?P<name>{key})", self.kms_patch_key),
            ("POST", rf"/v1/(?P<name>{key}):updatePrimaryVersion", self.kms_update_primary),
            ("GET", rf"/v1/(?P<parent>{key})/cryptoKeyVersions", self.kms_list_versions),
            ("POST", rf"/v1/(?P<parent>{key})/cryptoKeyVersions", self.kms_create_version),
            ("GET", rf"/v1/(?P<name>{ver})", self.kms_get_version),
            ("PATCH", rf"/v1/(?P<name>{ver})", self.kms_patch_version),
            ("POST", rf"/v1/(?P<name>{ver}):destroy", self.kms_destroy),
            ("POST", rf"/v1/(?P<name>{ver}):restore", self.kms_restore),
        ]
        table += [(verb, pattern, _asset_handler(fn)) for verb, pattern, fn in standin_asset.routes(self)]
        for res in (ring, key):
            table += [
                ("GET", rf"/v1/(?P<resource>{res}):getIamPolicy", self.iam_get),
                ("POST", rf"/v1/(?P<resource>{res}):setIamPolicy", self.iam_set),
                ("POST", rf"/v1/(?P<resource>{res}):testIamPermissions", self.iam_test),
            ]
        return [(verb, re.compile(f"^{pattern}$"), fn) for verb, pattern, fn in table]

    # -- Cloud Run -----------------------------------------------------------------------------

    def _service(self, name: str) -> Json:
        svc = self.store.services.get(name)
        if svc is None:
            _not_found(name)
        return svc

    def _operation(self, name: str, svc: Json, record: bool = True) -> Response:
        parent = name.split("/services/", 1)[0]
        op_name = f"{parent}/operations/{uuid.uuid4()}"
        typed = {"@type": "type.googleapis.com/google.cloud.run.v2.Service", **svc}
        op = {"name": op_name, "metadata": typed, "done": True, "response": typed}
        if record:
            self.store.record_operation(op_name, op)
        return _json_response(200, op)

    def run_get(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        return _json_response(200, self._service(path["name"]))

    def run_list(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        names = self.store.listed(path["parent"], "services")
        page, token = self._page(names, params)
        out: Json = {"services": [self.store.services[n] for n in page]} if page else {}
        if token:
            out["nextPageToken"] = token
        return _json_response(200, out)

    def run_create(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        sid = params.get("serviceId", "")
        if not SERVICE_ID_RE.match(sid):
            _bad(f"serviceId: expected lowercase letters, digits and hyphens (1-49, starting with a "
                 f"letter), found {sid!r}")
        name = f"{path['parent']}/services/{sid}"
        if name in self.store.services:
            raise ApiError(409, f"Resource '{name}' already exists", "ALREADY_EXISTS")
        return self._create_service(name, body, _as_bool(params.get("validateOnly")))

    def _create_service(self, name: str, body: Json, validate_only: bool) -> Response:
        svc = {k: v for k, v in body.items() if k not in SERVICE_OUTPUT_ONLY}
        svc["name"] = name
        _validate_service(svc, None)
        self.store.fill_service(svc, self.store.caller)
        if not validate_only:
            self.store.put_service(svc)
        return self._operation(name, svc, record=not validate_only)

    def run_patch(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        name = path["name"]
        if body.get("name") not in (None, "", name):
            _bad(f"service.name: expected {name} (the URL's name) or nothing, found {body['name']!r}")
        old = self.store.services.get(name)
        validate_only = _as_bool(params.get("validateOnly"))
        if old is None:
            if _as_bool(params.get("allowMissing")):
                return self._create_service(name, body, validate_only)
            _not_found(name)
        etag = body.get("etag")
        if etag and etag != old["etag"]:
            raise ApiError(409, f"Etag mismatch for '{name}': the service changed since it was read "
                                f"(request etag {etag}, current etag {old['etag']}); read it again",
                           "ABORTED")
        mask = _mask_paths(params.get("updateMask"))
        new = _clone(old)
        if mask is None or mask == ["*"]:
            for k in [k for k in new if k not in SERVICE_OUTPUT_ONLY]:
                del new[k]
            new.update({k: _clone(v) for k, v in body.items() if k not in SERVICE_OUTPUT_ONLY})
        else:
            for p in mask:
                parts = p.split(".")
                if parts[0] in SERVICE_OUTPUT_ONLY:
                    continue
                found, value = _get_path(body, parts)
                if found:
                    _set_path(new, parts, _clone(value))
                else:
                    _del_path(new, parts)
        new.setdefault("ingress", "INGRESS_TRAFFIC_ALL")  # unset ingress means ALL on Cloud Run
        _validate_service(new, old)
        self.store.bump_service(old, new, self.store.caller)
        if not validate_only:
            self.store.put_service(new)
        return self._operation(name, new, record=not validate_only)

    def run_delete(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        name = path["name"]
        svc = self._service(name)
        etag = params.get("etag")
        if etag and etag != svc["etag"]:
            raise ApiError(409, f"Etag mismatch for '{name}' (request etag {etag}, current etag "
                                f"{svc['etag']})", "ABORTED")
        if _as_bool(params.get("validateOnly")):
            return self._operation(name, svc, record=False)
        gone = dict(svc, deleteTime=self.store.now())
        self.store.drop_service(name)
        return self._operation(name, gone)

    def op_get(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        op = self.store.operations.get(path["name"])
        if op is None:
            _not_found(path["name"])
        left = self.pending_ops.get(path["name"], 0)
        if left > 0:
            self.pending_ops[path["name"]] = left - 1
            return _json_response(200, {"name": op["name"], "metadata": op["metadata"], "done": False})
        return _json_response(200, op)

    def _pend(self, resp: Response, polls: int) -> Response:
        """A `pending_polls` fault: answer a Run write's operation as not done yet."""
        op = json.loads(resp.body)
        name = op.get("name", "") if isinstance(op, dict) else ""
        with self.store.lock:
            if "/operations/" not in name or name not in self.store.operations:
                return resp  # not a recorded long-running operation (validateOnly, KMS): unchanged
            self.pending_ops[name] = polls
        return _json_response(200, {"name": name, "metadata": op["metadata"], "done": False})

    def op_delete(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        if self.store.operations.pop(path["name"], None) is None:
            _not_found(path["name"])
        return _json_response(200, {})

    # -- IAM (Run services, KMS key rings and keys) --------------------------------------------

    def _require(self, resource: str) -> None:
        if not self.store.resource_exists(resource):
            _not_found(resource)

    def iam_get(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        resource = path["resource"]
        self._require(resource)
        requested = params.get("options.requestedPolicyVersion", "0") or "0"
        if requested not in ("0", "1", "3"):
            _bad(f"options.requestedPolicyVersion: expected 0, 1 or 3, found {requested!r}")
        return _json_response(200, self.store.policy(resource))

    def iam_set(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        resource = path["resource"]
        self._require(resource)
        unknown = set(body) - {"policy", "updateMask"}
        if unknown:
            _bad(f"Invalid JSON payload received. Unknown name(s) {sorted(unknown)}")
        policy = _normalize_policy(body.get("policy"))
        current = self.store.policy(resource)
        if policy.get("etag") and policy["etag"] != current["etag"]:
            raise ApiError(409, "There were concurrent policy changes. Please retry the whole "
                                "read-modify-write with exponential backoff.", "ABORTED")
        mask = _mask_paths(body.get("updateMask")) or ["bindings", "etag"]
        new = {k: v for k, v in current.items() if k != "etag"}
        for field_name in mask:
            if field_name == "etag":
                continue
            if field_name not in ("bindings", "auditConfigs", "version"):
                _bad(f"updateMask: expected paths among bindings, etag, auditConfigs, version; "
                     f"found {field_name!r}")
            if field_name in policy:
                new[field_name] = policy[field_name]
            else:
                new.pop(field_name, None)
        if "bindings" in mask:
            new["version"] = policy.get("version", 1)
        new["etag"] = self.store.policy_etag()
        self.store.policies[resource] = new
        return _json_response(200, new)

    def iam_test(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        self._require(path["resource"])
        perms = body.get("permissions") or []
        return _json_response(200, {"permissions": perms} if perms else {})

    # -- KMS -----------------------------------------------------------------------------------

    def _page(self, names: list[str], params: dict[str, str]) -> tuple[list[str], str | None]:
        try:
            start = int(params.get("pageToken") or 0)
            size = int(params.get("pageSize") or 0)
        except ValueError:
            _bad(f"pageToken/pageSize: expected integers, found {params.get('pageToken')!r}/"
                 f"{params.get('pageSize')!r}")
        end = start + size if size > 0 else len(names)
        return names[start:end], (str(end) if end < len(names) else None)

    def _kms_list(self, kind: str, views: list[Json], params: dict[str, str]) -> Response:
        flt = params.get("filter", "").strip()
        if flt:
            m = re.match(r'^(\w+)\s*[=:]\s*"?([\w\-/.@]+)"?$', flt)
            if not m:
                _bad(f"filter: the stand-in supports only field=value filters, found {flt!r}")
            views = [v for v in views if str(v.get(m.group(1))) == m.group(2)]
        page, token = self._page([v["name"] for v in views], params)
        by_name = {v["name"]: v for v in views}
        out: Json = {kind: [by_name[n] for n in page]} if page else {}
        if token:
            out["nextPageToken"] = token
        out["totalSize"] = len(views)
        return _json_response(200, out)

    def _ring(self, name: str) -> Json:
        ring = self.store.key_rings.get(name)
        if ring is None:
            _not_found(name)
        return ring

    def _key(self, name: str) -> Json:
        if name not in self.store.crypto_keys:
            _not_found(name)
        return self.store.crypto_keys[name]

    def _version(self, name: str) -> Json:
        if name not in self.store.versions:
            _not_found(name)
        return self.store.settle(name)

    def kms_list_rings(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        views = [self.store.key_rings[n] for n in self.store.listed(path["parent"], "keyRings")]
        return self._kms_list("keyRings", views, params)

    def kms_create_ring(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        rid = params.get("keyRingId", "")
        if not KMS_ID_RE.match(rid):
            _bad(f"keyRingId: expected 1-63 letters, digits, '_' or '-', found {rid!r}")
        name = f"{path['parent']}/keyRings/{rid}"
        if name in self.store.key_rings:
            raise ApiError(409, f"KeyRing {name} already exists.", "ALREADY_EXISTS")
        self.store.put_key_ring({"name": name})
        return _json_response(200, self.store.key_rings[name])

    def kms_get_ring(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        return _json_response(200, self._ring(path["name"]))

    def kms_list_keys(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        self._ring(path["parent"])
        views = [self.store.key_view(n) for n in self.store.listed(path["parent"], "cryptoKeys")]
        return self._kms_list("cryptoKeys", views, params)

    def kms_create_key(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        self._ring(path["parent"])
        kid = params.get("cryptoKeyId", "")
        if not KMS_ID_RE.match(kid):
            _bad(f"cryptoKeyId: expected 1-63 letters, digits, '_' or '-', found {kid!r}")
        name = f"{path['parent']}/cryptoKeys/{kid}"
        if name in self.store.crypto_keys:
            raise ApiError(409, f"CryptoKey {name} already exists.", "ALREADY_EXISTS")
        key = {k: v for k, v in body.items() if k not in ("name", "primary", "createTime")}
        _normalize_enums(key, KMS_KEY_ENUMS)
        key["name"] = name
        self._check_rotation(key)
        self.store.put_crypto_key(key)
        if not _as_bool(params.get("skipInitialVersionCreation")):
            self.store.put_version({"name": f"{name}/cryptoKeyVersions/1"})
        return _json_response(200, self.store.key_view(name))

    def kms_get_key(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        self._key(path["name"])
        return _json_response(200, self.store.key_view(path["name"]))

    @staticmethod
    def _check_rotation(key: Json) -> None:
        if "rotationPeriod" in key:
            seconds = _parse_duration(key["rotationPeriod"], "rotationPeriod")
            if not 86400 <= seconds <= 876000 * 3600:
                _bad(f"rotation_period: expected between 1 day (86400s) and 100 years, found "
                     f"{key['rotationPeriod']}")
            if key.get("purpose", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
                _bad(f"rotation_period: only ENCRYPT_DECRYPT keys rotate automatically, this key's "
                     f"purpose is {key.get('purpose')}")
        if "nextRotationTime" in key:
            _parse_timestamp(key["nextRotationTime"], "nextRotationTime")

    def kms_patch_key(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        name = path["name"]
        key = self._key(name)
        mask = _mask_paths(params.get("updateMask"))
        if not mask:
            _bad("update_mask: expected the list of fields to update (it is required), found none")
        _normalize_enums(body, KMS_KEY_ENUMS)
        new = _clone(key)
        for p in mask:
            parts = p.split(".")
            if parts[0] not in KMS_KEY_MUTABLE:
                _bad(f"update_mask: {p!r} cannot be updated; updatable fields are "
                     f"{sorted(KMS_KEY_MUTABLE)}")
            found, value = _get_path(body, parts)
            if found:
                _set_path(new, parts, _clone(value))
            else:
                _del_path(new, parts)
        self._check_rotation(new)
        self.store.crypto_keys[name] = new
        return _json_response(200, self.store.key_view(name))

    def kms_update_primary(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        name = path["name"]
        key = self._key(name)
        vid = str(body.get("cryptoKeyVersionId", ""))
        vname = f"{name}/cryptoKeyVersions/{vid}"
        if key.get("purpose") != "ENCRYPT_DECRYPT":
            _precondition(f"{name} has purpose {key.get('purpose')}: only ENCRYPT_DECRYPT keys "
                          "have a primary version")
        state = self._version(vname)["state"]
        if state != "ENABLED":
            _precondition(f"The request cannot be fulfilled. Resource {vname} has value {state} in "
                          "field crypto_key_version.state; expected ENABLED")
        self.store.primary[name] = vname
        return _json_response(200, self.store.key_view(name))

    def kms_list_versions(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        self._key(path["parent"])
        names = self.store.listed(path["parent"], "cryptoKeyVersions")
        return self._kms_list("cryptoKeyVersions", [self.store.settle(n) for n in names], params)

    def kms_create_version(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        key_name = path["parent"]
        self._key(key_name)
        number = self.store.next_version.get(key_name, 1)
        vname = f"{key_name}/cryptoKeyVersions/{number}"
        self.store.put_version({"name": vname})
        return _json_response(200, self.store.versions[vname])

    def kms_get_version(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        return _json_response(200, self._version(path["name"]))

    def kms_patch_version(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        name = path["name"]
        current = self._version(name)
        mask = _mask_paths(params.get("updateMask"))
        if not mask:
            _bad("update_mask: expected the list of fields to update (it is required), found none")
        for p in mask:
            if p.split(".")[0] not in KMS_VERSION_MUTABLE:
                _bad(f"update_mask: {p!r} cannot be updated; updatable fields are "
                     f"{sorted(KMS_VERSION_MUTABLE)}")
        _normalize_enums(body, KMS_VERSION_ENUMS)
        new = dict(current)
        if "state" in mask:
            target = body.get("state", "CRYPTO_KEY_VERSION_STATE_UNSPECIFIED")
            if target not in ("ENABLED", "DISABLED"):
                _bad(f"crypto_key_version.state: expected ENABLED or DISABLED, found {target}")
            if current["state"] not in ("ENABLED", "DISABLED"):
                _precondition(f"The request cannot be fulfilled. Resource {name} has value "
                              f"{current['state']} in field crypto_key_version.state; only ENABLED "
                              "and DISABLED versions can change state this way")
            new["state"] = target
        for p in mask:
            if p.startswith("externalProtectionLevelOptions"):
                found, value = _get_path(body, p.split("."))
                if found:
                    _set_path(new, p.split("."), _clone(value))
                else:
                    _del_path(new, p.split("."))
        self.store.versions[name] = new
        return _json_response(200, new)

    def kms_destroy(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        name = path["name"]
        current = self._version(name)
        if current["state"] not in ("ENABLED", "DISABLED"):
            _precondition(f"The request cannot be fulfilled. Resource {name} has value "
                          f"{current['state']} in field crypto_key_version.state; expected ENABLED "
                          "or DISABLED")
        key = self.store.crypto_keys[name.split("/cryptoKeyVersions/", 1)[0]]
        new = dict(current, state="DESTROY_SCHEDULED", destroyTime=self.store.destroy_time(key))
        self.store.versions[name] = new
        return _json_response(200, new)

    def kms_restore(self, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        name = path["name"]
        current = self._version(name)
        if current["state"] != "DESTROY_SCHEDULED":
            _precondition(f"The request cannot be fulfilled. Resource {name} has value "
                          f"{current['state']} in field crypto_key_version.state; only "
                          "DESTROY_SCHEDULED versions can be restored")
        new = {k: v for k, v in current.items() if k != "destroyTime"}
        new["state"] = "DISABLED"
        self.store.versions[name] = new
        return _json_response(200, new)

    # -- faults --------------------------------------------------------------------------------

    def _matching_faults(self, method: str, path: str) -> list[Fault]:
        if not self.faults:  # the common case, no lock needed to read an empty list
            return []
        fired: list[Fault] = []
        with self.fault_lock:
            for f in self.faults:
                if f.count is not None and f.count <= 0:
                    continue
                if f.method not in ("*", method) or not f.regex.search(path):
                    continue
                if f.skip > 0:
                    f.skip -= 1
                    continue
                if f.probability < 1.0 and self.rng.random() >= f.probability:
                    continue
                if f.count is not None:
                    f.count -= 1
                f.hits += 1
                fired.append(f)
        return fired

    def _move_etag(self, path: str) -> None:
        """Simulate another writer just before this request: the target's etag moves."""
        name = re.sub(r"^/v[12]/", "", path)
        name, _, verb = name.partition(":")
        with self.store.lock:
            if verb in ("getIamPolicy", "setIamPolicy"):
                if self.store.resource_exists(name):
                    policy = dict(self.store.policy(name))
                    policy["etag"] = self.store.policy_etag()
                    self.store.policies[name] = policy
            elif name in self.store.services:
                old = self.store.services[name]
                self.store.put_service(self.store.bump_service(old, _clone(old), DEFAULT_ACTOR))

    def add_fault(self, spec: Json) -> Fault:
        unknown = set(spec) - set(Fault.FIELDS)
        if unknown:
            _bad(f"fault: unknown field(s) {sorted(unknown)}; expected some of {list(Fault.FIELDS)}")
        expected: dict[str, tuple[type, ...]] = {
            "method": (str,), "path": (str,), "count": (int, type(None)), "skip": (int,),
            "status": (int, type(None)), "rpc_status": (str, type(None)), "message": (str, type(None)),
            "delay_ms": (int, float), "move_etag": (bool,), "drop": (bool,), "probability": (int, float),
            "pending_polls": (int,), "seed": (int,),
        }
        for k, v in spec.items():
            if not isinstance(v, expected[k]) or (isinstance(v, bool) and bool not in expected[k]):
                _bad(f"fault.{k}: expected {' or '.join(t.__name__ for t in expected[k])}, found {v!r}")
        fault = Fault(id=next(self._fault_ids), **{k: v for k, v in spec.items() if k != "seed"})
        try:
            fault.regex = re.compile(fault.path)
        except re.error as e:
            _bad(f"fault.path: expected a regular expression, found {fault.path!r} ({e})")
        fault.method = fault.method.upper()
        if fault.status is not None and not 400 <= fault.status <= 599:
            _bad(f"fault.status: expected an HTTP error status 400-599, found {fault.status!r}")
        if not 0.0 <= fault.probability <= 1.0:
            _bad(f"fault.probability: expected 0..1, found {fault.probability!r}")
        if (fault.skip < 0 or fault.delay_ms < 0 or fault.pending_polls < 0
                or (fault.count is not None and fault.count < 1)):
            _bad("fault: expected skip >= 0, delay_ms >= 0, pending_polls >= 0 and count >= 1 "
                 "(or null for unlimited)")
        if not (fault.status or fault.delay_ms or fault.move_etag or fault.drop or fault.pending_polls):
            _bad("fault: expected at least one effect: status, delay_ms, move_etag, drop or pending_polls")
        with self.fault_lock:
            if "seed" in spec:
                self.rng.seed(spec["seed"])
            self.faults.append(fault)
        return fault

    # -- admin ---------------------------------------------------------------------------------

    def admin(self, method: str, path: str, raw: bytes) -> Response:
        route = (method, path.rstrip("/"))
        if route == ("GET", "/_standin/health"):
            return Response(200, b"ok", "text/plain")
        if route == ("POST", "/_standin/reset"):
            self.reset()
            return _json_response(200, {"ok": True})
        if route == ("POST", "/_standin/seed"):
            return _json_response(200, self.seed(self._body(raw)))
        if route == ("GET", "/_standin/state"):
            return _json_response(200, self.state())
        if route == ("GET", "/_standin/requests"):
            with self.log_lock:
                entries = list(self.log)
            return _json_response(200, {"requests": entries})
        if route == ("DELETE", "/_standin/requests"):
            with self.log_lock:
                self.log.clear()
            return _json_response(200, {"ok": True})
        if route == ("POST", "/_standin/faults"):
            return _json_response(200, self.add_fault(self._body(raw)).to_json())
        if route == ("GET", "/_standin/faults"):
            with self.fault_lock:
                return _json_response(200, {"faults": [f.to_json() for f in self.faults]})
        if route == ("DELETE", "/_standin/faults"):
            with self.fault_lock:
                self.faults = []
            return _json_response(200, {"ok": True})
        if route == ("POST", "/_standin/mutate"):
            return _json_response(200, self.mutate(self._body(raw)))
        if route in (("GET", "/_standin/clock"), ("POST", "/_standin/clock")):
            body = self._body(raw) if method == "POST" else {}
            unknown = set(body) - {"advance_seconds"}
            if unknown:
                _bad(f"clock: unknown field(s) {sorted(unknown)}; expected advance_seconds")
            step = body.get("advance_seconds", 0)
            if not isinstance(step, int | float) or step < 0:
                _bad(f"clock.advance_seconds: expected a number >= 0 (the clock only moves forward), "
                     f"found {step!r}")
            with self.store.lock:
                self.clock.offset += step
                return _json_response(200, {"now": self.store.now(), "offsetSeconds": self.clock.offset})
        raise ApiError(404, f"No admin endpoint {method} {path}; see infra/local/standin.py", "NOT_FOUND")

    def reset(self) -> None:
        with self.fault_lock:
            self.faults = []
            self.rng.seed(self.fault_seed)
        with self.store.lock:
            self.store.clear()
            self.clock.offset = 0.0
            if self.baseline:
                self.seed(_clone(self.baseline))
        with self.log_lock:
            self.log.clear()
        with self.store.lock:
            self.pending_ops.clear()

    def state(self) -> Json:
        s = self.store
        with s.lock:
            return _clone({
                "services": list(s.services.values()),
                "policies": s.policies,
                "keyRings": list(s.key_rings.values()),
                "cryptoKeys": [s.key_view(n) for n in s.crypto_keys],
                "cryptoKeyVersions": [s.settle(n) for n in s.versions],
                "projects": [{"name": f"projects/{p}", **info} for p, info in s.projects.items()],
                "caller": s.caller,
            })

    def seed(self, data: Json) -> Json:
        """Upsert resources from the seed format; all or nothing."""
        allowed = {"services", "policies", "keyRings", "cryptoKeys", "cryptoKeyVersions", "projects", "caller"}
        unknown = set(data) - allowed
        if unknown:
            _bad(f"seed: unknown key(s) {sorted(unknown)}; expected some of {sorted(allowed)}")
        s = self.store
        with s.lock:
            snap = s.snapshot()
            try:
                return self._seed(data)
            except ApiError:
                s.restore(snap)
                raise
            except (KeyError, TypeError, AttributeError, ValueError) as e:
                s.restore(snap)
                _bad(f"seed: malformed entry ({type(e).__name__}: {e})")

    def _seed(self, data: Json) -> Json:
        s = self.store
        if "caller" in data:
            s.caller = str(data["caller"])
        standin_asset.seed_projects(s.projects, data.get("projects"))

        def entries(kind: str, regex: re.Pattern[str]) -> Iterable[tuple[int, Json]]:
            items = data.get(kind) or []
            if not isinstance(items, list):
                _bad(f"seed.{kind}: expected a list, found {type(items).__name__}")
            for i, item in enumerate(items):
                if not isinstance(item, dict) or not regex.match(str(item.get("name", ""))):
                    _bad(f"seed.{kind}[{i}].name: expected a name matching {regex.pattern}, found "
                         f"{item.get('name') if isinstance(item, dict) else item!r}")
                yield i, _clone(item)

        for _, svc in entries("services", SERVICE_RE):
            _normalize_enums(svc, RUN_SERVICE_ENUMS)
            svc.setdefault("template", {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]})
            s.put_service(s.fill_service(svc, s.caller))
        for _, ring in entries("keyRings", KEY_RING_RE):
            s.put_key_ring(ring)
        for i, key in entries("cryptoKeys", CRYPTO_KEY_RE):
            parent = key["name"].split("/cryptoKeys/", 1)[0]
            if parent not in s.key_rings:
                _bad(f"seed.cryptoKeys[{i}]: key ring {parent} is not in the state; add it to keyRings")
            _normalize_enums(key, KMS_KEY_ENUMS)
            self._check_rotation(key)
            s.put_crypto_key(key)
        for i, version in entries("cryptoKeyVersions", VERSION_RE):
            parent = version["name"].split("/cryptoKeyVersions/", 1)[0]
            if parent not in s.crypto_keys:
                _bad(f"seed.cryptoKeyVersions[{i}]: crypto key {parent} is not in the state; add it "
                     "to cryptoKeys")
            _normalize_enums(version, KMS_VERSION_ENUMS)
            s.put_version(version)
        policies = data.get("policies") or {}
        if not isinstance(policies, dict):
            _bad(f"seed.policies: expected an object keyed by resource name, found {type(policies).__name__}")
        for resource, policy in policies.items():
            if not s.resource_exists(resource):
                _bad(f"seed.policies[{resource!r}]: no such resource in the state; seed it first")
            p = _normalize_policy(policy)
            p.setdefault("etag", s.policy_etag())
            s.policies[resource] = p
        return {k: len(data.get(k) or []) for k in ("services", "policies", "keyRings", "cryptoKeys",
                                                   "cryptoKeyVersions")}

    def mutate(self, spec: Json) -> Json:
        """A concurrent writer (someone else): change a resource or its policy and move the etag."""
        allowed = {"resource", "actor", "patch", "iam_add", "iam_remove", "delete"}
        unknown = set(spec) - allowed
        if unknown:
            _bad(f"mutate: unknown field(s) {sorted(unknown)}; expected some of {sorted(allowed)}")
        name = spec.get("resource")
        actor = str(spec.get("actor") or DEFAULT_ACTOR)
        if not ({"patch", "iam_add", "iam_remove", "delete"} & set(spec)):
            _bad("mutate: expected at least one of patch, iam_add, iam_remove, delete")
        s = self.store
        with s.lock:
            if not isinstance(name, str) or not s.resource_exists(name):
                _not_found(str(name))
            if spec.get("delete"):
                if name not in s.services:
                    _bad("mutate.delete: only Cloud Run services can be deleted (KMS keeps keys forever)")
                s.drop_service(name)
                return {"resource": None, "policy": None}
            if "patch" in spec:
                self._mutate_patch(name, spec["patch"], actor)
            for op in ("iam_add", "iam_remove"):
                if op in spec:
                    self._mutate_iam(name, op, spec[op])
            if name in s.services:
                resource = s.services[name]
            elif name in s.crypto_keys:
                resource = s.key_view(name)
            elif name in s.versions:
                resource = s.settle(name)
            else:
                resource = s.key_rings[name]
            return _clone({"resource": resource, "policy": s.policy(name)})

    def _mutate_patch(self, name: str, patch: Any, actor: str) -> None:
        s = self.store
        if not isinstance(patch, dict):
            _bad(f"mutate.patch: expected a JSON merge patch object, found {type(patch).__name__}")
        if name in s.services:
            old = s.services[name]
            new = _merge_patch(_clone(old), patch)
            new["name"] = name
            _normalize_enums(new, RUN_SERVICE_ENUMS)
            s.put_service(s.bump_service(old, new, actor))
        elif name in s.crypto_keys:
            new = _merge_patch(_clone(s.crypto_keys[name]), patch)
            _normalize_enums(new, KMS_KEY_ENUMS)
            new["name"] = name
            primary = new.pop("primary", None)
            if isinstance(primary, dict) and primary.get("name"):
                s.primary[name] = primary["name"]
            s.crypto_keys[name] = new
        elif name in s.versions:
            new = _merge_patch(_clone(s.settle(name)), patch)
            _normalize_enums(new, KMS_VERSION_ENUMS)
            new["name"] = name
            if new.get("state") == "DESTROY_SCHEDULED" and "destroyTime" not in new:
                new["destroyTime"] = s.destroy_time(s.crypto_keys[name.split("/cryptoKeyVersions/")[0]])
            s.versions[name] = new
        else:
            s.key_rings[name] = dict(_merge_patch(_clone(s.key_rings[name]), patch), name=name)

    def _mutate_iam(self, name: str, op: str, spec: Any) -> None:
        s = self.store
        if not isinstance(spec, dict) or not spec.get("role") or not spec.get("member"):
            _bad(f"mutate.{op}: expected {{\"role\": ..., \"member\": ...}}, found {spec!r}")
        policy = _clone(s.policy(name))
        policy.pop("etag", None)
        bindings = policy.setdefault("bindings", [])
        cond = spec.get("condition")
        target = next((b for b in bindings if b["role"] == spec["role"] and b.get("condition") == cond), None)
        if op == "iam_add":
            if target is None:
                target = {"role": spec["role"], "members": []}
                if cond:
                    target["condition"] = cond
                    policy["version"] = 3
                bindings.append(target)
            if spec["member"] not in target["members"]:
                target["members"].append(spec["member"])
        elif target is not None and spec["member"] in target["members"]:
            target["members"].remove(spec["member"])
        new = _normalize_policy(policy)
        new["etag"] = s.policy_etag()
        s.policies[name] = new


# ---------------------------------------------------------------------------------------------
# HTTP layer
# ---------------------------------------------------------------------------------------------

class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # benchmarks open many connections at once
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], app: App, verbose: bool) -> None:
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.verbose = verbose
        super().__init__(addr, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client libraries reuse connections
    server_version = "rampart-standin/1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid 40 ms stalls
    timeout = 120  # idle keep-alive connections end eventually, so threads do not pile up
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"standin: {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _serve logs one line per request itself, and only with --verbose

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError(f"Content-Length {length} out of range 0..{MAX_BODY}")
        return self.rfile.read(length) if length else b""

    def _serve(self, method: str) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        path = unquote(split.path)
        try:
            body = self._read_body()
        except ValueError as e:
            self.close_connection = True  # the stream position is unknown now
            resp = _json_response(400, ApiError(400, f"Bad request body: {e}").payload())
        else:
            try:
                resp = self.server.app.handle(method, path, split.query, body)
            except Exception as e:  # noqa: BLE001 (a stand-in bug answers 500 with its traceback on stderr)
                traceback.print_exc(file=sys.stderr)
                resp = _json_response(500, ApiError(500, f"stand-in bug: {type(e).__name__}: {e}").payload())
        if resp.drop:
            self.close_connection = True
            return
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if self.server.verbose:
            ms = (time.perf_counter() - started) * 1000
            sys.stderr.write(f"standin: {method} {self.path} -> {resp.status} {ms:.1f}ms\n")


def check_loopback(host: str) -> None:
    """Refuse anything but a loopback address: the stand-in has no authentication."""
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"expected a loopback address such as 127.0.0.1, found {host!r}: "
                         "the stand-in has no authentication and must not be reachable from elsewhere")


def load_seed(path: str | Path) -> Json:
    """Read a seed file, saying which file is wrong when it is not a JSON object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"seed {path}: expected a readable JSON file, found error {e}") from e
    if not isinstance(data, dict):
        raise TypeError(f"seed {path}: expected a JSON object, found {type(data).__name__}")
    return data


class StandinServer:
    """The stand-in bound to a loopback port; `start()` serves from a daemon thread (in-process tests)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: Json | None = None,
                 verbose: bool = False, log_size: int = 2000, fault_seed: int = 0) -> None:
        check_loopback(host)
        self.app = App(seed=seed, log_size=log_size, fault_seed=fault_seed)
        self.httpd = _HTTPServer((host, port), self.app, verbose)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def start(self) -> StandinServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="standin", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.25)

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Admin client (urllib, for tests and the demo)
# ---------------------------------------------------------------------------------------------

class StandinError(RuntimeError):
    """An admin call failed; carries the HTTP status and the stand-in's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"stand-in answered {status}: {message}")
        self.status = status
        self.message = message


class StandinAdmin:
    """Drive the stand-in's /_standin/ API: seed, reset, inspect state and requests, inject faults."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not re.match(r"^http://(127\.\d+\.\d+\.\d+|\[::1\]):\d+/?$", url):
            raise ValueError(f"expected the stand-in's loopback URL http://127.0.0.1:PORT, found {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        # No proxies: an HTTP(S)_PROXY in the environment must not capture loopback admin calls.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            payload = e.read().decode("utf-8", "replace")
            try:
                message = json.loads(payload)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = payload
            raise StandinError(e.code, message) from None
        if not ctype.startswith("application/json"):
            return raw.decode()
        return json.loads(raw) if raw else None

    def health(self) -> bool:
        try:
            return self._call("GET", "/_standin/health") == "ok"
        except (OSError, StandinError):
            return False

    def reset(self) -> None:
        self._call("POST", "/_standin/reset")

    def seed(self, data: Json) -> Json:
        return self._call("POST", "/_standin/seed", data)

    def seed_file(self, path: str | Path) -> Json:
        return self.seed(load_seed(path))

    def state(self) -> Json:
        return self._call("GET", "/_standin/state")

    def requests(self, method: str | None = None, path: str | None = None) -> list[Json]:
        """The request log, optionally only one method and paths matching a regex."""
        log = self._call("GET", "/_standin/requests")["requests"]
        rx = re.compile(path) if path else None
        return [r for r in log if (method is None or r["method"] == method)
                and (rx is None or rx.search(r["path"]))]

    def clear_requests(self) -> None:
        self._call("DELETE", "/_standin/requests")

    def fault(self, method: str = "*", path: str = ".*", *, count: int | None = 1, skip: int = 0,
              status: int | None = None, rpc_status: str | None = None, message: str | None = None,
              delay_ms: int = 0, move_etag: bool = False, drop: bool = False,
              probability: float = 1.0, seed: int | None = None, pending_polls: int = 0) -> Json:
        spec: Json = {"method": method, "path": path, "count": count, "skip": skip, "status": status,
                      "delay_ms": delay_ms, "move_etag": move_etag, "drop": drop,
                      "probability": probability}
        if pending_polls:
            spec["pending_polls"] = pending_polls
        if rpc_status is not None:
            spec["rpc_status"] = rpc_status
        if message is not None:
            spec["message"] = message
        if seed is not None:
            spec["seed"] = seed
        return self._call("POST", "/_standin/faults", spec)

    def faults(self) -> list[Json]:
        return self._call("GET", "/_standin/faults")["faults"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/_standin/faults")

    def mutate(self, resource: str, *, patch: Json | None = None, iam_add: Json | None = None,
               iam_remove: Json | None = None, delete: bool = False, actor: str | None = None) -> Json:
        spec: Json = {"resource": resource}
        for key, value in (("patch", patch), ("iam_add", iam_add), ("iam_remove", iam_remove),
                           ("actor", actor)):
            if value is not None:
                spec[key] = value
        if delete:
            spec["delete"] = True
        return self._call("POST", "/_standin/mutate", spec)

    def advance_clock(self, seconds: float) -> Json:
        return self._call("POST", "/_standin/clock", {"advance_seconds": seconds})


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.standin",
                                     description="Local stand-in for Cloud Run Admin v2 and Cloud KMS v1.")
    parser.add_argument("--port", type=int, default=8089, help="0 lets the OS pick (see --port-file)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address; nothing else is accepted")
    parser.add_argument("--seed", help="seed file (JSON, format in the module docstring)")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--log-size", type=int, default=2000, help="request log ring buffer size")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault-probability RNG")
    parser.add_argument("--verbose", action="store_true", help="one stderr line per request")
    args = parser.parse_args(argv)
    try:
        check_loopback(args.host)
        seed = load_seed(args.seed) if args.seed else None
        server = StandinServer(args.host, args.port, seed=seed, verbose=args.verbose,
                               log_size=args.log_size, fault_seed=args.fault_seed)
    except (ValueError, TypeError, ApiError, OSError) as e:
        print(f"standin: {e}", file=sys.stderr)
        return 2

    def _stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(server.port))
        tmp.replace(args.port_file)  # atomic: a reader never sees a half-written port
    print(f"standin: listening on {server.url}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
