"""Cloud Asset Inventory results, parsed once into typed records; all raw-dict digging is here.

A `ResourceSearchResult` (searchAllResources) becomes an `AssetRecord`; an `IamPolicySearchResult`
(searchAllIamPolicies) an `IamRecord`. A result with missing or odd fields becomes a `Skipped`
with a one-line reason (counted in the sweep's summary), never an exception.
Field names as in the discovery document cloudasset.v1.json.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RUN_SERVICE = "run.googleapis.com/Service"
RUN_JOB = "run.googleapis.com/Job"
RUN_WORKER_POOL = "run.googleapis.com/WorkerPool"
FUNCTION = "cloudfunctions.googleapis.com/Function"
KEY_RING = "cloudkms.googleapis.com/KeyRing"
CRYPTO_KEY = "cloudkms.googleapis.com/CryptoKey"
KEY_VERSION = "cloudkms.googleapis.com/CryptoKeyVersion"
ORG_POLICY = "orgpolicy.googleapis.com/Policy"
PROJECT = "cloudresourcemanager.googleapis.com/Project"
FOLDER = "cloudresourcemanager.googleapis.com/Folder"
ORGANIZATION = "cloudresourcemanager.googleapis.com/Organization"
# Three shapes of name, each for its own asset types (the registry's rules say which the sweep
# lists: shared.sweep.evaluate):
# - regional resources, //SERVICE/projects/P/locations/L/... (Run, Cloud Functions, KMS);
# - org policies, //orgpolicy.googleapis.com/{projects/P|folders/N|organizations/N}/policies/C;
# - the hierarchy itself (an IAM policy on a project, folder or organization),
#   //cloudresourcemanager.googleapis.com/{projects/P|folders/N|organizations/N}: the search
#   APIs name a project by its id, export and feeds by its number (Asset Inventory's naming table,
#   https://cloud.google.com/asset-inventory/docs/naming-table); both are accepted.
_ASSET_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.googleapis\.com/[A-Z][A-Za-z]+$")
_NAME = re.compile(r"^projects/([a-z0-9][-a-z0-9.:]{0,62})/locations/([a-z0-9-]{1,40})/[A-Za-z]+/[^/]+(/[A-Za-z]+/[^/]+)*$")
_PROJECT_ID = r"[a-z][-a-z0-9]{4,28}[a-z0-9]|\d{1,20}"
_CONTAINER = rf"projects/(?:{_PROJECT_ID})|folders/\d{{1,20}}|organizations/\d{{1,20}}"
_ORG_POLICY_NAME = re.compile(rf"^({_CONTAINER})/policies/([a-zA-Z][a-zA-Z0-9.]{{0,150}})$")
_CONTAINER_NAME = re.compile(rf"^(?:{_CONTAINER})$")
_HIERARCHY = frozenset({PROJECT, FOLDER, ORGANIZATION})
MAX_NAME = 1024


def prefix_of(asset_type: str) -> str:
    """The start of a full resource name of `asset_type`: //run.googleapis.com/ for run.googleapis.com/Service."""
    return "//" + asset_type.split("/", 1)[0] + "/"


@dataclass(frozen=True, slots=True)
class AssetRecord:
    """One resource as Asset Inventory last saw it."""

    asset_type: str
    name: str  # the API name: projects/P/locations/L/...
    project: str  # project id (from the name; the record's own `project` is a number)
    location: str
    update_time: str  # RFC 3339, "" when the record has none
    version: str  # API version of `data` ("v1", "v2"), "" when there is no data
    data: Mapping[str, Any] | None  # the resource as its API returns it; None when not returned


@dataclass(frozen=True, slots=True)
class IamRecord:
    """One resource's IAM policy as Asset Inventory last saw it."""

    asset_type: str
    name: str
    project: str
    location: str
    policy: Mapping[str, Any] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        e = self.policy.get("etag")
        return e if isinstance(e, str) else ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A result the sweep cannot judge: why, in one line (no payload)."""

    reason: str
    asset_type: str = ""


def _api_name(raw: Any, asset_type: str) -> tuple[str, str, str] | Skipped:
    if not isinstance(raw, str) or not raw:
        return Skipped("missing name", asset_type)
    if len(raw) > MAX_NAME:
        return Skipped("name too long", asset_type)
    prefix = prefix_of(asset_type)
    if not raw.startswith(prefix):
        return Skipped(f"name not under {prefix}", asset_type)
    name = raw[len(prefix):]
    if asset_type == ORG_POLICY:
        o = _ORG_POLICY_NAME.match(name)
        return (name, container_project(o.group(1)), "global") if o else Skipped("name does not match its asset type", asset_type)
    if asset_type in _HIERARCHY:
        ok = _CONTAINER_NAME.match(name) and name.startswith(asset_type.rsplit("/", 1)[1].lower())
        return (name, container_project(name), "global") if ok else Skipped("name does not match its asset type", asset_type)
    m = _NAME.match(name)
    if not m:
        return Skipped("name does not match its asset type", asset_type)
    return name, m.group(1), m.group(2)


def container_project(container: str) -> str:
    """The project id of projects/P; a folder or organization is in no project, so its own name
    (as the org-policy and hierarchy views say it)."""
    return container.split("/", 1)[1] if container.startswith("projects/") else container


def _asset_type(raw: Any) -> str | Skipped:
    if not isinstance(raw, str) or not raw:
        return Skipped("missing assetType")
    if not _ASSET_TYPE.match(raw):
        return Skipped("asset type is not SERVICE.googleapis.com/Kind")
    return raw


def _head(raw: Any, name_field: str) -> tuple[str, tuple[str, str, str]] | Skipped:
    """What every search result opens with: an object, a known asset type, and the resource's
    full name in `name_field`, as (asset type, (API name, project, location))."""
    if not isinstance(raw, Mapping):
        return Skipped(f"result is not an object ({type(raw).__name__})")
    kind = _asset_type(raw.get("assetType"))
    if isinstance(kind, Skipped):
        return kind
    named = _api_name(raw.get(name_field), kind)
    if isinstance(named, Skipped):
        return named
    return kind, named


def parse_resource(raw: Any) -> AssetRecord | Skipped:
    """A searchAllResources result (camelCase JSON) as a record, or why it was skipped."""
    head = _head(raw, "name")
    if isinstance(head, Skipped):
        return head
    kind, (name, project, location) = head
    update_time = raw.get("updateTime") or ""
    if not isinstance(update_time, str) or (update_time and timestamp_seconds(update_time) is None):
        return Skipped("updateTime is not a timestamp", kind)
    data: Mapping[str, Any] | None = None
    version = ""
    versioned = raw.get("versionedResources")
    if versioned is not None:
        if not isinstance(versioned, list):
            return Skipped("versionedResources is not a list", kind)
        for v in versioned:
            res = v.get("resource") if isinstance(v, Mapping) else None
            ver = v.get("version") if isinstance(v, Mapping) else None
            if isinstance(res, Mapping) and isinstance(ver, str):
                if res.get("name") not in (None, name):
                    return Skipped("versionedResources names another resource", kind)
                data, version = res, ver
                break
        else:
            if versioned:
                return Skipped("versionedResources holds no resource", kind)
    return AssetRecord(kind, name, project, location, update_time, version, data)


def parse_iam(raw: Any) -> IamRecord | Skipped:
    """A searchAllIamPolicies result as a record, or why it was skipped."""
    head = _head(raw, "resource")
    if isinstance(head, Skipped):
        return head
    kind, (name, project, location) = head
    policy = raw.get("policy")
    if not isinstance(policy, Mapping):
        return Skipped("missing policy", kind)
    bindings = policy.get("bindings")
    if not isinstance(bindings, list) or not all(isinstance(b, Mapping) for b in bindings):
        return Skipped("policy.bindings is not a list of objects", kind)
    return IamRecord(kind, name, project, location, policy)


def timestamp_seconds(value: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp; None when it is not one."""
    if not value or len(value) > 40:
        return None
    text = value.replace("Z", "+00:00")
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d)$", text)
    if not m:
        return None
    frac = (m.group(2) or "")[:7]  # fromisoformat takes at most microseconds
    try:
        return dt.datetime.fromisoformat(m.group(1) + frac + m.group(3)).timestamp()
    except ValueError:
        return None
