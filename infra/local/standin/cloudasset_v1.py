"""Cloud Asset Inventory API v1 (cloudasset.googleapis.com): `searchAllResources` and
`searchAllIamPolicies` (REST, JSON), answered from the resources the other APIs of the stand-in hold.

Checked against the discovery document `cloudasset.v1.json` (google-api-python-client's
`googleapiclient/discovery_cache/documents/`; tests/test_standin_asset.py compares every field this
module returns, and the query parameters it reads, with the document's schemas).

    GET /v1/{scope}:searchAllResources?assetTypes=...&pageSize=&pageToken=&readMask=&query=&orderBy=
    GET /v1/{scope}:searchAllIamPolicies?assetTypes=...&pageSize=&pageToken=&query=&orderBy=

`scope` is projects/P (id or number), folders/N or organizations/N. Where a project sits comes
from the Resource Manager collections (cloudresourcemanager_v3): the seed's `projects` entry's
`parent`, each of `folders`' `parent`, up to one of `organizations`; a project's number is derived
from its id. Fidelity choices:
  * Page size is capped at 500 (as documented); 0 or absent means 100. Results are ordered by
    name; the page token is an opaque offset, as stable as the state between pages.
  * `versionedResources` is returned only when `readMask` asks for it (or `*`), as documented; each
    holds the resource as the stand-in's own API returns it (Run v2 Service, KMS v1 objects), with
    `version` "v2" or "v1".
  * `updateTime` is the resource's own updateTime where it has one (Run services, functions; an org
    policy's is its spec's); KMS objects have none, so their records carry `createTime` only.
  * Beyond Run services and KMS, searchAllResources serves Cloud Run functions
    (`cloudfunctions.googleapis.com/Function`, the Cloud Functions v2 Function, version "v2") and
    org policies (`orgpolicy.googleapis.com/Policy`, the Org Policy v2 Policy, version "v2", on a
    project, folder or organization; location "global"). The stand-in has no Run jobs or worker
    pools, so it serves none. Whether Asset Inventory fills `versionedResources` for these two types
    is not documented; the sweep reads the resource live when a record carries no data.
  * searchAllIamPolicies also serves the policies of functions, and of projects, folders and
    organizations (`cloudresourcemanager.googleapis.com/Project|Folder|Organization`). The search
    APIs name a project by its id (//cloudresourcemanager.googleapis.com/projects/PROJECT_ID, the
    naming table: https://cloud.google.com/asset-inventory/docs/naming-table); `project` is set
    only for a resource in a project ("If an IAM policy is set on a folder or organization, the
    project field will be empty": IamPolicySearchResult reference). A folder or organization is in
    the scope of itself and of every folder or organization above it (assumed, not documented), and
    a folder's result lists itself first in `folders` (also assumed; Rampart reads neither field).
  * `query` and `orderBy` are accepted only empty (the sweep sends neither); anything else is 400,
    so a caller relying on a filter the stand-in ignores finds out.
  * Only resources that have an IAM policy with bindings appear in searchAllIamPolicies.
  * A 403 on one scope (part of an organization the caller cannot search) is a fault:
    POST /_standin/faults {"path": "folders/7:search", "status": 403}.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable
from typing import Any

from infra.local.standin import cloudfunctions_v2, orgpolicy_v2, run_v2
from infra.local.standin import cloudkms_v1 as kms
from infra.local.standin.core import Api, Json, Response, Route, bad, json_response
from infra.local.standin.store import POLICIES, Store

RUN_SERVICE = "run.googleapis.com/Service"
KEY_RING = "cloudkms.googleapis.com/KeyRing"
CRYPTO_KEY = "cloudkms.googleapis.com/CryptoKey"
KEY_VERSION = "cloudkms.googleapis.com/CryptoKeyVersion"
FUNCTION = "cloudfunctions.googleapis.com/Function"
ORG_POLICY = "orgpolicy.googleapis.com/Policy"
PROJECT = "cloudresourcemanager.googleapis.com/Project"
FOLDER = "cloudresourcemanager.googleapis.com/Folder"
ORGANIZATION = "cloudresourcemanager.googleapis.com/Organization"
ASSET_TYPES = (RUN_SERVICE, KEY_RING, CRYPTO_KEY, KEY_VERSION, FUNCTION, ORG_POLICY)
IAM_ASSET_TYPES = (RUN_SERVICE, KEY_RING, CRYPTO_KEY, KEY_VERSION, FUNCTION, PROJECT, FOLDER, ORGANIZATION)
CRM = "cloudresourcemanager.googleapis.com"
MAX_PAGE = 500
DEFAULT_PAGE = 100
PROJECTS, FOLDERS, ORGANIZATIONS = "projects", "folders", "organizations"  # cloudresourcemanager_v3's tables
# Fields returned when readMask is empty (the discovery document's readMask description lists them).
DEFAULT_FIELDS = frozenset({
    "name", "assetType", "project", "folders", "organization", "displayName", "description", "location",
    "labels", "tags", "effectiveTags", "networkTags", "kmsKeys", "createTime", "updateTime", "state",
    "additionalAttributes", "parentFullResourceName", "parentAssetType",
})


def project_info(store: Store, project: str) -> Json:
    """Number, folders and organization of `project`: its Resource Manager entry's `parent`, then
    each folder's, up to the organization (cloudresourcemanager_v3's tables). Its number is
    derived from its id (the stand-in names projects by id)."""
    folders: list[str] = []
    organization = ""
    entry = store.tables.get(PROJECTS, {}).get(f"projects/{project}") or {}
    parent = entry.get("parent") if isinstance(entry.get("parent"), str) else ""
    while parent.startswith("folders/") and parent not in folders:
        folders.append(parent)
        folder = store.tables.get(FOLDERS, {}).get(parent) or {}
        parent = folder.get("parent") if isinstance(folder.get("parent"), str) else ""
    if parent.startswith("organizations/"):
        organization = parent
    return {"number": str(100000000000 + zlib.crc32(project.encode()) % 900000000000), "folders": folders,
            "organization": organization}


# -- scope and paging -----------------------------------------------------------------------------


def folder_chain(store: Store, folder: str) -> tuple[list[str], str]:
    """The folders from `folder` up (itself first), and the organization at the top ("" if none)."""
    chain: list[str] = []
    parent = folder
    while parent.startswith("folders/") and parent not in chain:
        chain.append(parent)
        above = (store.tables.get(FOLDERS, {}).get(parent) or {}).get("parent")
        parent = above if isinstance(above, str) else ""
    return chain, parent if parent.startswith("organizations/") else ""


def container_of(name: str) -> str:
    """The project, folder or organization a resource name starts with."""
    return "/".join(name.split("/", 2)[:2])


def _in_scope(store: Store, scope: str, name: str) -> bool:
    """Whether the resource `name` (under a project, folder or organization) is within `scope`."""
    container = container_of(name)
    kind, _, ident = scope.partition("/")
    if container.startswith("projects/"):
        project = container.split("/", 1)[1]
        info = project_info(store, project)
        if kind == "projects":
            return ident in (project, info["number"])
        if kind == "folders":
            return scope in info["folders"]
        return scope == info["organization"]
    if container.startswith("folders/"):
        chain, org = folder_chain(store, container)
        return scope in chain or scope == org
    return scope == container


def _page(params: dict[str, str], total: int) -> tuple[int, int]:
    raw_size, raw_token = params.get("pageSize") or "0", params.get("pageToken") or ""
    try:
        size = int(raw_size)
    except ValueError:
        bad(f"pageSize: expected an integer, found {raw_size!r}")
    size = DEFAULT_PAGE if size <= 0 else min(size, MAX_PAGE)
    start = 0
    if raw_token:
        try:
            start = int(base64.urlsafe_b64decode(raw_token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            bad(f"pageToken: not a token this API returned: {raw_token[:40]!r}")
        if not 0 <= start <= total:
            bad("pageToken: out of range (the results changed since it was issued)")
    return start, size


def _token(end: int, total: int) -> str | None:
    return base64.urlsafe_b64encode(str(end).encode()).decode() if end < total else None


def _asset_types(params: dict[str, str], served: tuple[str, ...]) -> tuple[str, ...]:
    wanted = tuple(t for t in (params.get("assetTypes") or "").split(",") if t)
    return wanted or served


def _no_query(params: dict[str, str]) -> None:
    for key in ("query", "orderBy"):
        if params.get(key):
            bad(f"{key}: the stand-in supports only an empty {key}, found {params[key][:80]!r}")


def _answer(rows: list[Any], params: dict[str, str], render: Any) -> Response:
    start, size = _page(params, len(rows))
    out = [render(row) for row in rows[start:start + size]]
    resp: Json = {"results": out} if out else {}
    token = _token(start + size, len(rows))
    if token:
        resp["nextPageToken"] = token
    return json_response(200, resp)


# -- searchAllResources ---------------------------------------------------------------------------


def _resources(store: Store, types: tuple[str, ...]) -> Iterable[tuple[str, str, Json, str]]:
    """(asset type, API name, resource JSON, API version) of every resource of `types`."""
    if RUN_SERVICE in types:
        for name, svc in store.tables[run_v2.SERVICES].items():
            yield RUN_SERVICE, name, svc, "v2"
    if KEY_RING in types:
        for name, ring in kms.key_rings(store).items():
            yield KEY_RING, name, ring, "v1"
    if CRYPTO_KEY in types:
        for name in kms.crypto_keys(store):
            yield CRYPTO_KEY, name, kms.key_view(store, name), "v1"
    if KEY_VERSION in types:
        for name in kms.versions(store):
            yield KEY_VERSION, name, kms.settle(store, name), "v1"
    if FUNCTION in types:
        for name, fn in cloudfunctions_v2.functions(store).items():
            yield FUNCTION, name, fn, "v2"
    if ORG_POLICY in types:
        for name, policy in store.tables[orgpolicy_v2.POLICIES_V2].items():
            yield ORG_POLICY, name, policy, "v2"


def search_all_resources(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    scope = path["scope"]
    _no_query(params)
    types = _asset_types(params, ASSET_TYPES)
    mask = {f.strip() for f in (params.get("readMask") or "").split(",") if f.strip()}
    fields = DEFAULT_FIELDS | {"versionedResources"} if "*" in mask else (mask or DEFAULT_FIELDS)
    unknown = fields - DEFAULT_FIELDS - {"versionedResources"}
    if unknown:
        bad(f"readMask: unknown or unsupported field(s) {sorted(unknown)}")
    rows = sorted((name, kind, res, version) for kind, name, res, version in _resources(store, types)
                  if _in_scope(store, scope, name))
    return _answer(rows, params, lambda row: _result(store, row[1], row[0], row[2], row[3], fields))


def _where(store: Store, name: str) -> Json:
    """`project` (a number), `folders` and `organization` of a resource, as a search result says them."""
    container = container_of(name)
    if container.startswith("projects/"):
        info = project_info(store, container.split("/", 1)[1])
        return {"project": f"projects/{info['number']}", "folders": info["folders"], "organization": info["organization"]}
    if container.startswith("folders/"):
        chain, org = folder_chain(store, container)
        return {"folders": chain, "organization": org}
    return {"organization": container}


def _result(store: Store, kind: str, name: str, res: Json, version: str, fields: set[str] | frozenset[str]) -> Json:
    service = kind.split("/", 1)[0]
    parent, parent_type = _parent(kind, name)
    spec: Json = res["spec"] if isinstance(res.get("spec"), dict) else {}
    full: Json = {
        "name": f"//{service}/{name}",
        "assetType": kind,
        **_where(store, name),
        "displayName": name.rsplit("/", 1)[1],
        "description": res.get("description", ""),
        "location": "global" if kind == ORG_POLICY else name.split("/")[3],
        "labels": dict(res.get("labels") or {}),
        "createTime": res.get("createTime", ""),
        "updateTime": res.get("updateTime", "") or spec.get("updateTime", ""),
        "state": _state(kind, res),
        "parentFullResourceName": parent,
        "parentAssetType": parent_type,
        "versionedResources": [{"version": version, "resource": res}],
    }
    if kind == RUN_SERVICE and (res.get("template") or {}).get("encryptionKey"):
        full["kmsKeys"] = [res["template"]["encryptionKey"]]
    if kind == FUNCTION and res.get("kmsKeyName"):
        full["kmsKeys"] = [res["kmsKeyName"]]
    # Empty values are left out, as proto3 JSON does.
    return {k: v for k, v in full.items() if k in fields and v not in ("", [], {}, None)}


# -- searchAllIamPolicies -------------------------------------------------------------------------


def search_all_iam_policies(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    scope = path["scope"]
    _no_query(params)
    types = _asset_types(params, IAM_ASSET_TYPES)
    rows: list[tuple[str, str, Json]] = []
    for resource, policy in store.tables[POLICIES].items():
        if not policy.get("bindings"):
            continue
        kind = _kind_of(store, resource)
        if kind is None or kind not in types or not _in_scope(store, scope, resource):
            continue
        rows.append((resource, kind, policy))
    rows.sort(key=lambda r: r[0])

    def render(row: tuple[str, str, Json]) -> Json:
        resource, kind, policy = row
        entry: Json = {
            "resource": f"//{kind.split('/', 1)[0]}/{resource}",
            "assetType": kind,
            **_where(store, resource),
            "policy": {k: policy[k] for k in ("version", "bindings", "etag", "auditConfigs") if k in policy},
        }
        return {k: v for k, v in entry.items() if v not in ("", [], None)}

    return _answer(rows, params, render)


def _kind_of(store: Store, name: str) -> str | None:
    if name in store.tables[run_v2.SERVICES]:
        return RUN_SERVICE
    if name in kms.key_rings(store):
        return KEY_RING
    if name in kms.crypto_keys(store):
        return CRYPTO_KEY
    if name in kms.versions(store):
        return KEY_VERSION
    if name in cloudfunctions_v2.functions(store):
        return FUNCTION
    for table, kind in ((PROJECTS, PROJECT), (FOLDERS, FOLDER), (ORGANIZATIONS, ORGANIZATION)):
        if name in store.tables.get(table, {}):
            return kind
    return None


def _parent(kind: str, name: str) -> tuple[str, str]:
    if kind in (RUN_SERVICE, KEY_RING, FUNCTION, ORG_POLICY):
        container = container_of(name)
        container_type = {"projects": PROJECT, "folders": FOLDER}.get(container.split("/", 1)[0], ORGANIZATION)
        return f"//{CRM}/{container}", container_type
    parent = name.rsplit("/", 2)[0]
    return f"//cloudkms.googleapis.com/{parent}", KEY_RING if kind == CRYPTO_KEY else CRYPTO_KEY


def _state(kind: str, res: Json) -> str:
    if kind in (KEY_VERSION, FUNCTION):
        return str(res.get("state") or "")
    if kind == RUN_SERVICE:
        cond = res.get("terminalCondition") or {}
        return "ACTIVE" if cond.get("state") == "CONDITION_SUCCEEDED" else str(cond.get("state") or "")
    return ""


API = Api(
    name="cloudasset_v1",
    discovery="cloudasset.v1.json",
    routes=(
        Route("GET", "/v1/{scope=*/*}:searchAllResources", "cloudasset.searchAllResources", search_all_resources),
        Route("GET", "/v1/{scope=*/*}:searchAllIamPolicies", "cloudasset.searchAllIamPolicies", search_all_iam_policies),
    ),
)
