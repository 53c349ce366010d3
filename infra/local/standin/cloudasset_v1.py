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
  * `updateTime` is the resource's own updateTime where it has one (Run services); KMS objects have
    none, so their records carry `createTime` only.
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

from infra.local.standin import cloudkms_v1 as kms
from infra.local.standin import run_v2
from infra.local.standin.core import Api, Json, Response, Route, bad, json_response
from infra.local.standin.store import POLICIES, Store

RUN_SERVICE = "run.googleapis.com/Service"
KEY_RING = "cloudkms.googleapis.com/KeyRing"
CRYPTO_KEY = "cloudkms.googleapis.com/CryptoKey"
KEY_VERSION = "cloudkms.googleapis.com/CryptoKeyVersion"
ASSET_TYPES = (RUN_SERVICE, KEY_RING, CRYPTO_KEY, KEY_VERSION)
MAX_PAGE = 500
DEFAULT_PAGE = 100
PROJECTS, FOLDERS = "projects", "folders"  # cloudresourcemanager_v3's tables: where each project sits
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


def _in_scope(store: Store, scope: str, project: str) -> bool:
    info = project_info(store, project)
    kind, _, ident = scope.partition("/")
    if kind == "projects":
        return ident in (project, info["number"])
    if kind == "folders":
        return scope in info["folders"]
    return scope == info["organization"]


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


def _asset_types(params: dict[str, str]) -> tuple[str, ...]:
    wanted = tuple(t for t in (params.get("assetTypes") or "").split(",") if t)
    return wanted or ASSET_TYPES


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


def search_all_resources(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    scope = path["scope"]
    _no_query(params)
    types = _asset_types(params)
    mask = {f.strip() for f in (params.get("readMask") or "").split(",") if f.strip()}
    fields = DEFAULT_FIELDS | {"versionedResources"} if "*" in mask else (mask or DEFAULT_FIELDS)
    unknown = fields - DEFAULT_FIELDS - {"versionedResources"}
    if unknown:
        bad(f"readMask: unknown or unsupported field(s) {sorted(unknown)}")
    rows = sorted((name, kind, res, version) for kind, name, res, version in _resources(store, types)
                  if _in_scope(store, scope, name.split("/", 2)[1]))
    return _answer(rows, params, lambda row: _result(store, row[1], row[0], row[2], row[3], fields))


def _result(store: Store, kind: str, name: str, res: Json, version: str, fields: set[str] | frozenset[str]) -> Json:
    service = kind.split("/", 1)[0]
    info = project_info(store, name.split("/", 2)[1])
    parent, parent_type = _parent(kind, name)
    full: Json = {
        "name": f"//{service}/{name}",
        "assetType": kind,
        "project": f"projects/{info['number']}",
        "folders": info["folders"],
        "organization": info["organization"],
        "displayName": name.rsplit("/", 1)[1],
        "description": res.get("description", ""),
        "location": name.split("/")[3],
        "labels": dict(res.get("labels") or {}),
        "createTime": res.get("createTime", ""),
        "updateTime": res.get("updateTime", ""),
        "state": _state(kind, res),
        "parentFullResourceName": parent,
        "parentAssetType": parent_type,
        "versionedResources": [{"version": version, "resource": res}],
    }
    if kind == RUN_SERVICE and (res.get("template") or {}).get("encryptionKey"):
        full["kmsKeys"] = [res["template"]["encryptionKey"]]
    # Empty values are left out, as proto3 JSON does.
    return {k: v for k, v in full.items() if k in fields and v not in ("", [], {}, None)}


# -- searchAllIamPolicies -------------------------------------------------------------------------


def search_all_iam_policies(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    scope = path["scope"]
    _no_query(params)
    types = _asset_types(params)
    rows: list[tuple[str, str, Json]] = []
    for resource, policy in store.tables[POLICIES].items():
        if not policy.get("bindings"):
            continue
        kind = _kind_of(store, resource)
        if kind is None or kind not in types or not _in_scope(store, scope, resource.split("/", 2)[1]):
            continue
        rows.append((resource, kind, policy))
    rows.sort(key=lambda r: r[0])

    def render(row: tuple[str, str, Json]) -> Json:
        resource, kind, policy = row
        info = project_info(store, resource.split("/", 2)[1])
        entry: Json = {
            "resource": f"//{kind.split('/', 1)[0]}/{resource}",
            "assetType": kind,
            "project": f"projects/{info['number']}",
            "folders": info["folders"],
            "organization": info["organization"],
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
    return None


def _parent(kind: str, name: str) -> tuple[str, str]:
    if kind in (RUN_SERVICE, KEY_RING):
        return (f"//cloudresourcemanager.googleapis.com/projects/{name.split('/', 2)[1]}",
                "cloudresourcemanager.googleapis.com/Project")
    parent = name.rsplit("/", 2)[0]
    return f"//cloudkms.googleapis.com/{parent}", KEY_RING if kind == CRYPTO_KEY else CRYPTO_KEY


def _state(kind: str, res: Json) -> str:
    if kind == KEY_VERSION:
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
